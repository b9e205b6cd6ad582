"""Control row: random initialisation whose BatchNorm running statistics were re-estimated on the
pre-training videos -- forward passes only, no gradient step, no weight changed.

Why: a random-init row evaluates BatchNorm with its initial running statistics (mean 0, variance 1),
which do not match real activations; any pre-training run, whatever its objective, replaces them with
statistics of the data. Part of "method minus random init" can therefore come from the statistics
alone. This row measures that part: read a method's gain against it as well as against random init.
It starts from exactly the initialisation of random init and of every pre-training run of the same seed.

Single-process only (no parameter receives a gradient, which DDP refuses).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.config import MethodConfig
from benchmark.method import Method, Pretraining, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class BNStatsConfig(MethodConfig):
    name: str = "random_init_bn"
    clip_len: int = 4  # frames per video per step (2D: each frame is an image for BatchNorm)
    stride: int = 2


@register_method("random_init_bn")
class BNStats(Method):
    """Control: random init + BatchNorm statistics of the pre-training data (no gradient step)."""

    Config = BNStatsConfig
    sampler = "clip"
    sampler_fields = ("clip_len", "stride")
    backbone_kind = "either"
    pretraining = Pretraining.STATISTICS  # forward passes only: no weight changes

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        with torch.no_grad():  # train mode: BatchNorm layers update their running mean/var from this batch
            features = self.backbone(batch["clip"])
        # a loss without a graph to any parameter: backward is a no-op and the optimiser skips every weight
        loss = torch.zeros((), device=features.device, requires_grad=True)
        return StepOutput(loss, {"loss": 0.0, "feature_std": features.float().std()})
