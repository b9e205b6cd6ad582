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
  the harness's shared clip augmentation, one draw for all clips of a sample.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.errors import UserError
from benchmark.method import DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class VCOPConfig(MethodConfig):
    name: str = "vcop"
    num_clips: int = 3  # n clips -> n! order classes
    clip_len: int = 8  # frames per clip (paper: 16)
    stride: int = 1  # between frames of a clip
    gap: int = 4  # frames between consecutive clips (paper: 8)
    pair_dim: int = 512  # width of the pairwise fc
    dropout: float = 0.5


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


class PairwiseOrderHead(nn.Module):
    """Per-clip features [B, n, F] -> order logits [B, n!] through every pair's fc (VCOP's head)."""

    def __init__(self, num_features: int, num_clips: int, pair_dim: int, dropout: float):
        super().__init__()
        pairs = list(itertools.combinations(range(num_clips), 2))
        self.register_buffer("first", torch.tensor([i for i, _ in pairs]), persistent=False)
        self.register_buffer("second", torch.tensor([j for _, j in pairs]), persistent=False)
        self.pair = nn.Sequential(nn.Linear(2 * num_features, pair_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(len(pairs) * pair_dim, math.factorial(num_clips))
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        pairs = torch.cat([feats[:, self.first], feats[:, self.second]], dim=-1)  # [B, P, 2F]
        return self.classifier(self.pair(pairs).flatten(1))


@register_method("vcop")
class VCOP(Method):
    """VCOP: shuffle n clips of a video, predict their order (n! classes) from pairwise clip features."""

    Config = VCOPConfig
    sampler = "multi_clip"
    backbone_kind = "3d"

    def __init__(self, cfg: VCOPConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        if not 2 <= cfg.num_clips <= 5:
            raise UserError(f"method.num_clips = {cfg.num_clips}; use 2..5 (n! order classes)")
        if min(cfg.clip_len, cfg.stride) < 1 or cfg.gap < 0:
            raise UserError(
                f"method.clip_len and method.stride must be >= 1 and method.gap >= 0, got {cfg.clip_len}, {cfg.stride}, {cfg.gap}"
            )
        self.register_buffer("orders", clip_orders(cfg.num_clips), persistent=False)
        self.head = PairwiseOrderHead(backbone.num_features, cfg.num_clips, cfg.pair_dim, cfg.dropout)

    @classmethod
    def sampler_options(cls, cfg: VCOPConfig, info: DataInfo) -> dict:
        return {"num_clips": cfg.num_clips, "clip_len": cfg.clip_len, "stride": cfg.stride, "gap": cfg.gap}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        clips, labels = shuffle_clips(batch["clips"], self.orders)
        logits = self.head(self.backbone(clips)).float()
        loss = F.cross_entropy(logits, labels)
        acc = (logits.detach().argmax(1) == labels).float().mean().item()
        return StepOutput(loss, {"loss": loss.item(), "acc": acc})
