"""The contract every SSL objective honours (in-tree or plugin).

A method is an ``nn.Module`` that owns the shared backbone and its own heads
(and any state such as a memory bank, as buffers so checkpoints carry it).
It declares:

- ``Config``: a dataclass subclassing :class:`benchmark.config.MethodConfig`;
- ``sampler``: the registered sampler name that turns one video into one
  training sample (``sampler_options`` passes config values to it);
- ``backbone_kind``: "2d", "3d" or "either";
- ``training_step(batch, progress)`` -> :class:`StepOutput` (a loss and named
  scalars to log).

Minimal example (a plugin would do the same from its own package)::

    @dataclass
    class MyConfig(MethodConfig):
        name: str = "mine"
        temperature: float = 0.1

    @register_method("mine")
    class Mine(Method):
        Config = MyConfig
        sampler = "frame_pair"
        backbone_kind = "2d"

        def __init__(self, cfg, backbone, info):
            super().__init__(cfg, backbone, info)
            self.head = nn.Linear(backbone.num_features, 64)

        def training_step(self, batch, progress):
            z = self.head(self.backbone(batch["anchor"]))
            loss = z.pow(2).mean()
            return StepOutput(loss, {"loss": loss.item()})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from benchmark.config import MethodConfig


@dataclass(frozen=True)
class DataInfo:
    """What a method may know about its pre-training data when it is built."""

    num_videos: int  # e.g. memory-bank size
    num_classes: int = 0  # > 0 only where labels exist (the supervised reference row)
    resolution: int = 64
    clip_len: int = 8  # frames per clip for clip samplers (3D)


@dataclass(frozen=True)
class Progress:
    """Where training is: methods with schedules (TCE's hard-negative threshold) read it."""

    step: int
    total_steps: int
    epoch: int = 0

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total_steps)


@dataclass
class StepOutput:
    loss: torch.Tensor
    scalars: dict[str, float] = field(default_factory=dict)


class Method(nn.Module):
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    sampler: ClassVar[str | None] = None
    backbone_kind: ClassVar[Literal["2d", "3d", "either"]] = "either"
    needs_labels: ClassVar[bool] = False  # True: pre-training reads the labelled split (supervised row)
    trains: ClassVar[bool] = True  # False: no pre-training stage (random-init row)
    learns: ClassVar[bool] = True  # False: a pre-training stage that changes no weight (BN-statistics control row)
    registry_name: ClassVar[str | None] = None

    def __init__(self, cfg: MethodConfig, backbone: nn.Module, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.info = info

    @classmethod
    def sampler_options(cls, cfg: MethodConfig, info: DataInfo) -> dict[str, Any]:
        """Keyword arguments for this method's sampler, taken from the method config."""
        return {}

    def training_step(self, batch: dict[str, Any], progress: Progress) -> StepOutput:
        raise NotImplementedError

    def extra_checkpoint_state(self) -> dict[str, Any]:
        """State that is not a parameter or buffer but must survive a resume (e.g. a normaliser estimate)."""
        return {}

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        pass
