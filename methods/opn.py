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
  position slightly); channel splitting (one random channel copied to all three, per frame) is kept as
  ``channel_split``;
- the optimiser and schedule come from the run's ``optim`` section.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.samplers import OPN_ORDERS
from benchmark.method import DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

TUPLE_SIZE = 4
PAIRS = list(itertools.combinations(range(TUPLE_SIZE), 2))  # the 6 frame pairs, in a fixed order


@dataclass
class OPNConfig(MethodConfig):
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
    backbone_kind = "2d"

    def __init__(self, cfg: OPNConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        f = backbone.num_features
        self.pair_fc = nn.Sequential(nn.Linear(2 * f, cfg.pair_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(len(PAIRS) * cfg.pair_dim, len(OPN_ORDERS)))
        self.register_buffer("pair_index", torch.tensor(PAIRS), persistent=False)

    @classmethod
    def sampler_options(cls, cfg: OPNConfig, info: DataInfo) -> dict:
        return {"window": cfg.window, "motion_candidates": cfg.motion_candidates, "channel_split": cfg.channel_split}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        features = self.backbone(batch["frames"])  # [B, 4, F]
        pairs = features.index_select(1, self.pair_index.flatten())  # [B, 12, F]: frames of pair 0, pair 1, ...
        pair_out = self.pair_fc(pairs.reshape(len(features), len(PAIRS), -1))  # [B, 6, 2F] -> [B, 6, pair_dim]
        logits = self.classifier(pair_out.flatten(1)).float()
        target = batch["order_label"]
        loss = F.cross_entropy(logits, target)
        with torch.no_grad():
            accuracy = (logits.argmax(1) == target).float().mean().item()
        return StepOutput(loss, {"loss": loss.item(), "accuracy": accuracy})
