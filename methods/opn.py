"""OPN — Order Prediction Network (Lee, Huang, Singh, Yang, "Unsupervised Representation Learning by
Sorting Sequences", ICCV 2017, arXiv 1708.01246).

Four frames of a video are shown in one of 4! orders; the network predicts the order up to reversal
(4!/2 = 12 classes, since a sequence and its reverse are equally natural). Per-frame features from the
shared backbone are concatenated for each of the 6 frame pairs, each pair goes through one fc layer,
and the 6 pair outputs are concatenated and classified into the 12 orders. The sampler ("opn_tuple")
builds the tuples and labels (benchmark.data.samplers.OPN_ORDERS lists the classes).

Deviations from the paper:
- the backbone is any timm 2D model (paper: CaffeNet / VGG-M-2048) at our resolution (paper: 80x80 patches,
  unverified);
- the pair fc layer is one layer whose weights all 6 pairs share (Siamese-style), width ``pair_dim``;
- high-motion tuples are chosen by a frame-difference score among ``motion_candidates`` random windows (the
  paper used optical flow magnitude);
- spatial augmentation is one crop/flip/colour for all four frames (the paper jittered each frame's patch
  position slightly), set by ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``, ``jitter_p``, ``gray_p``
  (defaults: the harness's shared augmentation); channel splitting (one random channel copied to all three, per
  frame) is kept as ``channel_split``;
- the optimiser and schedule come from the run's ``optim`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.samplers import OPN_ORDERS
from benchmark.data.transforms import AugmentFields
from benchmark.heads import PairwiseOrderHead
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

TUPLE_SIZE = 4


@dataclass
class OPNConfig(AugmentFields, MethodConfig):
    name: str = "opn"
    window: int = 16  # frames the four ordered frames are drawn from
    motion_candidates: int = 4  # random windows scored by frame difference; the most moving one is used
    channel_split: bool = True
    pair_dim: int = 512  # width of the shared pair fc layer
    dropout: float = 0.5  # before the final classifier


@register_method("opn")
class OPN(Method):
    """Order Prediction Network: which of the 12 orders (up to reversal) are these 4 frames in?"""

    Config = OPNConfig
    sampler = "opn_tuple"
    sampler_fields = ("window", "motion_candidates", "channel_split")
    backbone_kind = "2d"

    def __init__(self, cfg: OPNConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.head = PairwiseOrderHead(backbone.num_features, TUPLE_SIZE, cfg.pair_dim, len(OPN_ORDERS), cfg.dropout)

    def chance(self, batch_size: int) -> Chance:
        return Chance(math.log(len(OPN_ORDERS)), 1 / len(OPN_ORDERS))  # 12 orders, balanced by the sampler

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        logits = self.head(self.backbone(batch["frames"]))  # per-frame features [B, 4, F] -> the 6 pairs -> 12
        return StepOutput(*cross_entropy_accuracy(logits, batch["order_label"]))
