"""VCOP — Video Clip Order Prediction (Xu, Xiao, Zhao, Shao, Xie, Zhuang, "Self-Supervised
Spatiotemporal Learning via Video Clip Order Prediction", CVPR 2019).

From each video, ``num_clips`` clips separated by ``gap`` frames are taken in temporal order
(the ``multi_clip`` sampler) and shown in one of the n! orders; the network predicts which.
Head: the 3D backbone's pooled feature of each clip; every pair (i < j, in presentation
order) concatenated -> fc(2F -> 512) -> ReLU; the pair outputs concatenated -> dropout 0.5 ->
fc -> n! classes (6 for three clips). Class c shows the clips in the order
``permutations(range(n))[c]`` (itertools order): position i holds clip ``order[i]``.

Deviations from the paper:
- clips of 8 frames with 4-frame gaps by default (the paper: 16 and 8) so that a sample fits
  the 32-frame synthetic videos and a CPU step stays affordable; ``clip_len``/``gap`` restore
  the original;
- the permutation is drawn in the training step (torch's generator, uniform over the n!
  orders), not in the data loader, so the sampler stays order-agnostic;
- the backbone is any registered 3D backbone (r3d_18, inflated timm ResNets); augmentation is
  the harness's shared clip augmentation, one draw for all clips of a sample, its strength set by
  ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``, ``jitter_p``, ``gray_p``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.errors import UserError
from benchmark.heads import PairwiseOrderHead
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class VCOPConfig(AugmentFields, MethodConfig):
    name: str = "vcop"
    num_clips: int = 3  # n clips -> n! order classes
    clip_len: int = 8  # frames per clip (paper: 16)
    stride: int = 1  # between frames of a clip
    gap: int = 4  # frames between consecutive clips (paper: 8)
    pair_dim: int = 512  # width of the pairwise fc
    dropout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()  # AugmentFields' checks
        if not 2 <= self.num_clips <= 5:
            raise UserError(f"method.num_clips = {self.num_clips}; use 2..5 (n! order classes)")
        if min(self.clip_len, self.stride) < 1 or self.gap < 0:
            raise UserError(
                "method.clip_len and method.stride must be >= 1 and method.gap >= 0, "
                f"got {self.clip_len}, {self.stride}, {self.gap}"
            )


def clip_orders(num_clips: int) -> torch.Tensor:
    """[n!, n]: row c is the presentation order of class c (position i shows clip row[i])."""
    return torch.tensor(list(itertools.permutations(range(num_clips))), dtype=torch.long)


def shuffle_clips(
    clips: torch.Tensor, orders: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """clips [B, n, ...] in temporal order -> (shuffled [B, n, ...], labels [B]); shuffled[b, i] = clips[b, orders[labels[b], i]]."""
    labels = torch.randint(len(orders), (len(clips),), generator=generator).to(clips.device)
    perm = orders.to(clips.device)[labels]  # [B, n]
    rows = torch.arange(len(clips), device=clips.device)[:, None]
    if clips.dim() >= 5 and clips.movedim(-3, -1).is_contiguous():  # channels-last frames: gather in that layout
        return clips.movedim(-3, -1)[rows, perm].movedim(-1, -3), labels
    return clips[rows, perm], labels


@register_method("vcop")
class VCOP(Method):
    """VCOP: shuffle n clips of a video, predict their order (n! classes) from pairwise clip features."""

    Config = VCOPConfig
    sampler = "multi_clip"
    sampler_fields = ("num_clips", "clip_len", "stride", "gap")
    backbone_kind = "3d"

    def __init__(self, cfg: VCOPConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.register_buffer("orders", clip_orders(cfg.num_clips), persistent=False)
        num_orders = math.factorial(cfg.num_clips)
        self.head = PairwiseOrderHead(backbone.num_features, cfg.num_clips, cfg.pair_dim, num_orders, cfg.dropout)

    def chance(self, batch_size: int) -> Chance:
        n = math.factorial(self.cfg.num_clips)  # orders drawn uniformly
        return Chance(math.log(n), 1 / n)

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        clips, labels = shuffle_clips(batch["clips"], self.orders)
        return StepOutput(*cross_entropy_accuracy(self.head(self.backbone(clips)), labels))
