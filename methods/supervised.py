"""Reference row: supervised pre-training (the upper bound every SSL row is read against).

The backbone is trained with class labels on the pre-training set (``needs_labels``: the pre-training
split is read with its labels; the synthetic pool has class folders, UCF101/HMDB51/Kinetics train lists
carry them), then evaluated exactly like every SSL method. Cross-entropy on one clip per video:
a 3D backbone classifies the clip feature; a 2D backbone averages its per-frame features over the clip
before the linear classifier (TSN-style consensus, which equals averaging per-frame logits).
Deviations from common supervised recipes: no mixup/label smoothing by default, the run's ``optim``
section sets the schedule, and augmentation is the shared per-clip augmentation (one draw per clip), its
strength set by ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``, ``jitter_p``, ``gray_p``
(defaults: the harness's shared augmentation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.errors import UserError
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class SupervisedConfig(AugmentFields, MethodConfig):
    name: str = "supervised"
    clip_len: int = 8  # frames per clip (2D: frames whose features are averaged)
    stride: int = 2
    label_smoothing: float = 0.0
    dropout: float = 0.0  # before the classifier


@register_method("supervised")
class Supervised(Method):
    """Supervised reference row: cross-entropy on the pre-training set's class labels (upper bound)."""

    Config = SupervisedConfig
    sampler = "clip"
    sampler_fields = ("clip_len", "stride")
    backbone_kind = "either"
    needs_labels = True

    @classmethod
    def check(cls, cfg: SupervisedConfig, info: DataInfo) -> None:
        if info.num_classes < 2:
            raise UserError(
                "method 'supervised' needs a labelled pre-training set with at least 2 classes "
                f"(got {info.num_classes}); set data.dataset to one with class labels"
            )

    def __init__(self, cfg: SupervisedConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(backbone.num_features, info.num_classes))

    def chance(self, batch_size: int) -> Chance:
        """Uniform over the classes; the held-out check raises the accuracy to the held-out majority class
        (``pretext_eval``'s class counts): a held-out subset of a balanced set is itself rarely balanced."""
        c = self.info.num_classes
        return Chance(math.log(c), 1 / c)

    def pretext_eval(self, batch: dict, progress: Progress) -> dict[str, torch.Tensor]:
        out = super().pretext_eval(batch, progress)
        return {**out, "class_counts": torch.bincount(batch["label"].flatten(), minlength=self.info.num_classes)}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        features = self.backbone(batch["clip"])  # 3D: [B, F]; 2D: [B, T, F]
        if features.dim() == 3:
            features = features.mean(1)
        loss, scalars = cross_entropy_accuracy(self.classifier(features), batch["label"], self.cfg.label_smoothing)
        return StepOutput(loss, scalars)
