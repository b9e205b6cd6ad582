"""Skip-Clip -- future clip order ranking (El-Nouby, Zhai, Taylor, Susskind, "Skip-Clip: Self-Supervised
Spatiotemporal Representation Learning by Future Clip Order Ranking", arXiv 1910.12770, 2019; NeurIPS 2019
workshop).

Pretext: from one video, a context clip c and M target clips x_1 .. x_M that follow it at increasing temporal
distances (x_i starts i x (clip span + gap) frames after c: the ``multi_clip`` sampler, context first). A shared 3D
encoder maps every clip to a feature map averaged over time, [F, h, w]; a context head g (1x1 conv -> ReLU -> 1x1
conv) turns the context's map into a prediction of where the video is going. The score of target i is the mean over
the h x w cells of the cosine similarity between g(context) and the target's map at that cell,
Gamma_i = mean_cells cos(g(m_c), m_i), and a pairwise hinge ranking loss makes every nearer target score higher than
every farther one: L = mean over i < j of max(0, delta - Gamma_i + Gamma_j). It is future prediction by ranking: no
pixels are reconstructed and no other video is a negative. Measures: ``accuracy`` = the fraction of ordered pairs
ranked correctly (Gamma_i > Gamma_j for i < j, a tie counts half; chance 0.5, what the held-out pretext check reads),
``rank_accuracy`` = the fraction of samples whose whole order is right (chance 1/M!) and ``spread`` = the nearest
minus the farthest target's score. A guess scores all targets alike: loss delta (the chance loss).

No public code of the paper exists (to our knowledge); the spatial cell-wise cosine score and the pairwise hinge
follow the paper's description as summarised secondarily, the rest is a reconstruction. Deviations:
- lite scale by default: M = 3 targets (``num_targets``), clips of 6 frames at stride 1 with 2-frame gaps, so a
  sample (4 x 6 + 3 x 2 = 30 frames) fits the CPU set's 32-frame videos; the full-scale row (sweeps/table1.yaml)
  uses 16-frame clips at 112 px (the paper's clip length and its M and skips are not known here: a reconstruction);
- targets sit at fixed skips (1, 2, 3 clip strides after the context) rather than randomly drawn increasing ones;
- the context head g (two 1x1 convolutions, F -> F -> F) is a reconstruction (CPC/DPC-style); targets use the
  encoder's maps directly;
- the margin delta = 0.1 (``margin``) is not known from the paper; the loss is the MEAN over the M(M-1)/2 pairs and
  the batch (the paper's double sum differs by the constant M(M-1)/2);
- the paper's optional rotation auxiliary task is not implemented;
- one shared augmentation for all clips of a sample (the cell-wise score compares the same positions), the
  harness's clip augmentation (random resized crop, flip, colour jitter, random gray), set by
  ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``, ``jitter_p``, ``gray_p``;
- videos shorter than the sample are loop-padded by the sampler (``data.short_video: loop``), which puts a wrapped
  target out of its place in time: set ``data.short_video: skip`` on sets with short videos;
- the backbone is any registered 3D backbone (the paper: 3D ResNet-18, i.e. r3d_18).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.errors import UserError
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class SkipClipConfig(AugmentFields, MethodConfig):
    name: str = "skip_clip"
    num_targets: int = 3  # M future target clips after the context clip
    clip_len: int = 6  # frames per clip (full scale: 16)
    stride: int = 1  # between frames of a clip
    gap: int = 2  # frames between consecutive clips (>= 1 keeps frame-to-frame continuity from solving nearest-first)
    margin: float = 0.1  # delta of the hinge, on cosine scores in [-1, 1]
    context_head: Literal["mlp", "none"] = "mlp"  # g: 1x1 conv -> ReLU -> 1x1 conv on the context map, or identity

    def __post_init__(self) -> None:
        super().__post_init__()  # AugmentFields' checks
        if not 2 <= self.num_targets <= 8:
            raise UserError(f"method.num_targets = {self.num_targets}: use 2..8 (a ranking needs at least two targets)")
        if min(self.clip_len, self.stride) < 1 or self.gap < 0:
            raise UserError(
                "method.clip_len and method.stride must be >= 1 and method.gap >= 0, "
                f"got {self.clip_len}, {self.stride}, {self.gap}"
            )
        if not 0 < self.margin <= 2:
            raise UserError(f"method.margin = {self.margin}: the hinge margin on cosine scores, in (0, 2]")


def cellwise_scores(context: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """context [B, F, h, w], targets [B, M, F, h, w] -> Gamma [B, M]: the cosine similarity of context and target at each
    spatial cell, averaged over the cells (fp32)."""
    c = F.normalize(context.float(), dim=1)
    t = F.normalize(targets.float(), dim=2)
    return (c.unsqueeze(1) * t).sum(2).mean((-2, -1))


def ranking_hinge(scores: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scores [B, M], target i nearer in time than target j for i < j -> (loss, pair accuracy, full-order accuracy).

    loss = mean over samples and pairs i < j of max(0, margin - s_i + s_j); a pair is right when s_i > s_j (a tie
    counts half, so equal scores sit exactly at chance, 0.5)."""
    m = scores.shape[1]
    first, second = torch.triu_indices(m, m, offset=1, device=scores.device)
    diff = scores[:, first] - scores[:, second]  # [B, P]: positive when the nearer target scores higher
    loss = F.relu(margin - diff).mean()
    with torch.no_grad():
        pair_accuracy = ((diff > 0).float() + 0.5 * (diff == 0).float()).mean()
        rank_accuracy = (diff > 0).all(1).float().mean()  # every pair right <=> the whole order right
    return loss, pair_accuracy, rank_accuracy


@register_method("skip_clip")
class SkipClip(Method):
    """Skip-Clip: rank future clips by temporal distance from a context clip (cell-wise cosine, pairwise hinge)."""

    Config = SkipClipConfig
    sampler = "multi_clip"  # context first, then the targets in temporal order
    backbone_kind = "3d"

    def __init__(self, cfg: SkipClipConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        dim = backbone.map_features
        if cfg.context_head == "mlp":
            self.context_head = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 1))
        else:
            self.context_head = nn.Identity()

    @classmethod
    def sampler_options(cls, cfg: SkipClipConfig, info: DataInfo) -> dict:
        options = {"num_clips": 1 + cfg.num_targets, "clip_len": cfg.clip_len, "stride": cfg.stride, "gap": cfg.gap}
        return {**super().sampler_options(cfg, info), **options}  # the base adds the augmentation (aug)

    def chance(self, batch_size: int) -> Chance:
        return Chance(self.cfg.margin, 0.5)  # equal scores: every pair costs the margin, half the pairs right

    def scores(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B, 1 + M, T, C, H, W] (context first, targets in temporal order) -> Gamma [B, M]."""
        maps = self.backbone.forward_features(clips).mean(dim=3)  # [B, 1+M, F, t, h, w] -> [B, 1+M, F, h, w]
        return cellwise_scores(self.context_head(maps[:, 0]), maps[:, 1:])

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        scores = self.scores(batch["clips"])
        loss, pair_accuracy, rank_accuracy = ranking_hinge(scores, self.cfg.margin)
        with torch.no_grad():
            spread = (scores[:, 0] - scores[:, -1]).mean()  # nearest minus farthest target's score
        scalars = {"loss": loss.detach(), "accuracy": pair_accuracy, "rank_accuracy": rank_accuracy, "spread": spread}
        return StepOutput(loss, scalars)
