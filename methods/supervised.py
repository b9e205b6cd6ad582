"""Reference row: supervised pre-training (the upper bound every SSL row is read against).

The backbone is trained with class labels on the pre-training set (``needs_labels``: the pre-training
split is read with its labels; the synthetic pool has class folders, UCF101/HMDB51/Kinetics train lists
carry them), then evaluated exactly like every SSL method. Cross-entropy on one clip per video:
a 3D backbone classifies the clip feature; a 2D backbone averages its per-frame features over the clip
before the linear classifier (TSN-style consensus, which equals averaging per-frame logits).
Deviations from common supervised recipes: no mixup/label smoothing by default, the run's ``optim``
section sets the schedule, and augmentation is the shared per-clip augmentation every method uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.errors import UserError
from benchmark.method import DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class SupervisedConfig(MethodConfig):
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
    backbone_kind = "either"
    needs_labels = True

    def __init__(self, cfg: SupervisedConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        if info.num_classes < 2:
            raise UserError(
                "method 'supervised' needs a labelled pre-training set with at least 2 classes "
                f"(got {info.num_classes}); set data.dataset to one with class labels"
            )
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(backbone.num_features, info.num_classes))

    @classmethod
    def sampler_options(cls, cfg: SupervisedConfig, info: DataInfo) -> dict:
        return {"clip_len": cfg.clip_len, "stride": cfg.stride}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        features = self.backbone(batch["clip"])  # 3D: [B, F]; 2D: [B, T, F]
        if features.dim() == 3:
            features = features.mean(1)
        logits = self.classifier(features).float()
        target = batch["label"]
        loss = F.cross_entropy(logits, target, label_smoothing=self.cfg.label_smoothing)
        with torch.no_grad():
            accuracy = (logits.argmax(1) == target).float().mean().item()
        return StepOutput(loss, {"loss": loss.item(), "accuracy": accuracy})
