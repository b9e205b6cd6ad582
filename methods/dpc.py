"""DPC-lite — Dense Predictive Coding (Han, Xie, Zisserman, "Video Representation Learning by
Dense Predictive Coding", ICCV Workshops 2019, arXiv 1909.04656).

A video is cut into N contiguous, non-overlapping blocks of L frames. A 3D encoder maps each
block to a feature map, averaged over time to F x h x w. A one-layer ConvGRU (1x1 kernels)
aggregates ReLU(features) of the first N-K blocks; a predictor phi (1x1 conv -> ReLU -> 1x1
conv) reads the hidden state and predicts the next block's map; each prediction is fed back
(through a ReLU) into the GRU to predict the step after it, K steps in all. The loss is dense
and contrastive: the dot product of every predicted vector (each video, step and spatial
position) with every target vector (the encoder maps of the last K blocks, of all videos),
cross-entropy against the single positive — same video, same step, same position. So the
negatives are other videos (easy), other positions of the same step (spatial), the same
position at other steps (temporal) and other positions at other steps (both); see
:func:`negative_kinds`.

What is kept from the paper: dense spatial targets, recurrent aggregation with a sequential
multi-step rollout, all negative kinds, unnormalised dot-product scores, per-frame colour
jitter and random gray over strided non-overlapping blocks sharing one crop/flip (the
``blocks`` sampler; its strength set by ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``,
``jitter_p``, ``gray_p``).

Deviations ("lite"):
- N=6 blocks, K=2 predicted steps by default (the paper: N=8, K=3), frame stride 1 (the paper:
  3 on UCF101) so that 6 x 5 frames fit the 32-frame synthetic videos; videos shorter than
  N*L*stride are loop-padded or skipped as ``data.short_video`` says;
- the encoder is any registered 3D backbone (r3d_18, or an inflated timm ResNet whose width
  and depth shrink the model) instead of the paper's R18 "2d3d"; the map size follows the
  backbone's stride (r3d_18: 7x7 at 112 px, 2x2 at 32 px; inflated resnet10t: 2x2 at 64 px);
- BatchNorm tracks running statistics as usual (the release pre-trained with
  ``track_running_stats=False``, which its author called a mistake);
- under DDP the targets of every rank are gathered (the release's DataParallel limited the
  negatives to each GPU's share); gradients flow through the local targets only;
- the release's dropout before the predictor and its orthogonal initialisation are not used
  (PyTorch default init).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark import distributed
from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.errors import UserError
from benchmark.heads import ConvGRUCell
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

# codes of negative_kinds(): what each (prediction, target) pair is to the contrastive loss
OTHER_VIDEO, POSITIVE, SPATIAL, TEMPORAL, SPATIOTEMPORAL = 0, 1, 2, 3, 4
KIND_NAMES = {
    OTHER_VIDEO: "other_video",
    POSITIVE: "positive",
    SPATIAL: "spatial",
    TEMPORAL: "temporal",
    SPATIOTEMPORAL: "spatiotemporal",
}


@dataclass
class DPCConfig(AugmentFields, MethodConfig):
    name: str = "dpc"
    num_blocks: int = 6  # N blocks per sample (paper: 8)
    pred_steps: int = 2  # K future blocks predicted, sequentially (paper: 3)
    block_len: int = 5  # L frames per block (paper: 5)
    frame_stride: int = 1  # between frames of a block (paper: 3 on UCF101)

    def __post_init__(self) -> None:
        super().__post_init__()  # AugmentFields' checks
        if min(self.block_len, self.frame_stride) < 1:
            raise UserError(
                f"method.block_len and method.frame_stride must be >= 1, got {self.block_len} and {self.frame_stride}"
            )
        if not 1 <= self.pred_steps < self.num_blocks:
            raise UserError(
                f"method.pred_steps = {self.pred_steps} must be at least 1 and below method.num_blocks = {self.num_blocks}"
            )


def negative_kinds(batch: int, steps: int, positions: int, device: torch.device | None = None) -> torch.Tensor:
    """[M, M] codes (M = batch * steps * positions, flattened in (video, step, position) order) saying
    what target j is to prediction i: POSITIVE, SPATIAL, TEMPORAL, SPATIOTEMPORAL or OTHER_VIDEO."""
    idx = torch.arange(batch * steps * positions, device=device)
    video, step, pos = idx // (steps * positions), (idx // positions) % steps, idx % positions
    same_video = video[:, None] == video[None, :]
    same_step = step[:, None] == step[None, :]
    same_pos = pos[:, None] == pos[None, :]
    kinds = torch.full((len(idx), len(idx)), OTHER_VIDEO, dtype=torch.long, device=device)
    kinds[same_video & same_step & same_pos] = POSITIVE
    kinds[same_video & same_step & ~same_pos] = SPATIAL
    kinds[same_video & ~same_step & same_pos] = TEMPORAL
    kinds[same_video & ~same_step & ~same_pos] = SPATIOTEMPORAL
    return kinds


def flatten_dense(maps: torch.Tensor) -> torch.Tensor:
    """[B, K, F, h, w] -> [B*K*h*w, F], rows in (video, step, position) order (negative_kinds' order)."""
    b, k, f, h, w = maps.shape
    return maps.permute(0, 1, 3, 4, 2).reshape(b * k * h * w, f)


def dense_scores(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Unnormalised dot products of every predicted vector with every target vector: [M, M'] (fp32)."""
    return flatten_dense(pred).float() @ flatten_dense(target).float().t()


def dense_contrastive_loss(
    pred: torch.Tensor, target: torch.Tensor, positive_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each prediction against its one positive target; returns (loss, scores).

    ``target`` may hold more videos than ``pred`` (targets gathered from other ranks); the
    positives of ``pred``'s rows start at row ``positive_offset`` of the flattened targets.
    """
    scores = dense_scores(pred, target)
    positives = torch.arange(len(scores), device=scores.device) + positive_offset
    return F.cross_entropy(scores, positives), scores


def gather_targets(target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Targets of every rank (the local ones keep their gradient) and where the local ones start."""
    d = distributed.info()
    if not d.enabled:
        return target, 0
    everyone = distributed.all_gather_cat(target.detach())
    n = len(target)
    start = d.rank * n
    rows_per_video = target.shape[1] * target.shape[3] * target.shape[4]  # K * h * w
    return torch.cat([everyone[:start], target, everyone[start + n :]]), start * rows_per_video


@register_method("dpc")
class DPC(Method):
    """DPC-lite: predict future blocks' feature maps with a ConvGRU; dense contrastive loss."""

    Config = DPCConfig
    sampler = "blocks"
    sampler_fields = {"num_blocks": "num_blocks", "block_len": "block_len", "stride": "frame_stride"}
    backbone_kind = "3d"

    def __init__(self, cfg: DPCConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        dim = backbone.map_features
        self.aggregator = ConvGRUCell(dim, dim)
        self.predictor = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 1))
        self.targets_per_sample = 0  # K x positions of one sample's dense targets, set by the first batch

    def encode(self, blocks: torch.Tensor) -> torch.Tensor:
        """[B, N, L, C, H, W] -> [B, N, F, h, w]: per-block maps averaged over time."""
        return self.backbone.forward_features(blocks).mean(dim=3)

    def predict(self, context: torch.Tensor, steps: int) -> torch.Tensor:
        """context [B, N-K, F, h, w] -> predictions [B, K, F, h, w], each fed back for the next."""
        h = context.new_zeros(context[:, 0].shape)
        for t in range(context.shape[1]):
            h = self.aggregator(F.relu(context[:, t]), h)
        preds = []
        for _ in range(steps):
            p = self.predictor(h)
            preds.append(p)
            h = self.aggregator(F.relu(p), h)
        return torch.stack(preds, dim=1)

    def chance(self, batch_size: int) -> Chance:
        """Each predicted vector picks its one positive among every target of the batch (M = batch x K steps x
        positions): chance 1/M, loss ln M. The map size is known once a batch has gone through."""
        m = batch_size * self.targets_per_sample
        return Chance(math.log(m), 1 / m) if m else Chance(None, None)

    def pretext_eval(self, batch: dict, progress: Progress) -> dict[str, torch.Tensor]:
        out = self.training_step(batch, progress)  # no state written: the step only reads its batch
        m = len(batch["blocks"]) * self.targets_per_sample
        return {"loss": out.loss.detach(), "accuracy": out.scalars["accuracy"], "chance_accuracy": torch.tensor(1 / m)}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        k = self.cfg.pred_steps
        maps = self.encode(batch["blocks"])
        self.targets_per_sample = k * maps.shape[-2] * maps.shape[-1]  # shapes are Python ints: no host sync
        pred = self.predict(maps[:, :-k], k)
        target, offset = gather_targets(maps[:, -k:])
        loss, scores = dense_contrastive_loss(pred, target, offset)
        with torch.no_grad():
            positives = torch.arange(len(scores), device=scores.device) + offset
            accuracy = (scores.argmax(1) == positives).float().mean()
            pos_score = scores.gather(1, positives[:, None]).mean()
            mean_score = scores.mean()
        scalars = {"loss": loss.detach(), "accuracy": accuracy, "pos_score": pos_score, "mean_score": mean_score}
        return StepOutput(loss, scalars)
