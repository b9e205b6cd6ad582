"""Shuffle and Learn (Misra, Zitnick, Hebert, "Shuffle and Learn: Unsupervised Learning using Temporal
Order Verification", ECCV 2016, arXiv 1603.08561).

Verify temporal order: three frames of a video are shown either in their natural order (forwards or
backwards) or with the middle one replaced by a frame from outside the span, and a binary classifier on
the concatenated per-frame features says which. The three "towers" of the paper are one backbone applied
to each frame (weights shared by construction); the sampler ("tuple") builds the tuples.

Deviations from the paper / authors' Caffe release:
- the backbone is any timm 2D model (paper: AlexNet / CaffeNet) at our resolution (paper: 227 px crops);
- the head is Linear(3F -> 2) by default (paper: fc layers of 4096 on concatenated fc7 features); ``head: mlp``
  adds one hidden layer;
- high-motion windows are chosen by a frame-difference score among ``motion_candidates`` random windows,
  a cheap stand-in for the optical-flow magnitude the paper used (``motion_candidates: 1`` turns it off);
- each negative tuple is also shown reversed with probability 0.5 (the paper lists (b,a,d) and (b,e,d)),
  so that playing direction alone cannot tell positives (which come in both directions) from negatives;
- the optimiser, schedule and batch come from the run's ``optim`` section (paper: SGD lr 1e-3, momentum 0.9,
  wd 5e-4, 128 tuples per batch, 100k iterations);
- one augmentation (crop, flip, colour) is shared by the three frames of a tuple, so only order carries the label;
  its strength is set by ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``, ``jitter_p``, ``gray_p``
  (defaults: the harness's shared augmentation, crops of scale 0.5-1, colour jitter 0.5 / hue 0.25 with p 0.8,
  grey with p 0.5).

On the built-in synthetic set the defaults (25% positives, linear head) stay at the majority class in every CPU
budget tried; the CPU sweeps run ``positive_fraction: 0.5`` (one of the paper's ablation settings) with
``head: mlp``, which learns the pretext on held-out videos (results/table1-cpu/calibration.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.heads import MLPHead
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

TUPLE_SIZE = 3


@dataclass
class ShuffleLearnConfig(AugmentFields, MethodConfig):
    name: str = "shuffle_learn"
    positive_fraction: float = 0.25  # share of in-order tuples (the paper's best: 25%)
    window: int = 16  # frames the five ordered frames a<b<c<d<e are drawn from
    motion_candidates: int = 4  # random windows scored by frame difference; the most moving one is used
    head: Literal["linear", "mlp"] = "linear"
    hidden_dim: int = 512  # width of the mlp head's hidden layer


@register_method("shuffle_learn")
class ShuffleLearn(Method):
    """Shuffle and Learn: is this frame triplet in temporal order? (binary, weight-shared per-frame towers)."""

    Config = ShuffleLearnConfig
    sampler = "tuple"
    sampler_fields = ("positive_fraction", "window", "motion_candidates")
    backbone_kind = "2d"

    def __init__(self, cfg: ShuffleLearnConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        hidden = (cfg.hidden_dim,) if cfg.head == "mlp" else ()
        self.head = MLPHead(TUPLE_SIZE * backbone.num_features, 2, hidden=hidden)

    def chance(self, batch_size: int) -> Chance:
        """The labels are skewed (positive_fraction in order): chance is the majority class and its entropy."""
        p = self.cfg.positive_fraction
        entropy = -sum(q * math.log(q) for q in (p, 1 - p) if q > 0)
        return Chance(entropy, max(p, 1 - p))

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        features = self.backbone(batch["frames"])  # [B, 3, F]: one tower per frame, shared weights
        logits = self.head(features.flatten(1))  # concatenated in tuple order
        return StepOutput(*cross_entropy_accuracy(logits, batch["order_label"]))
