"""The contract every SSL objective honours (in-tree or plugin).

A method is an ``nn.Module`` that owns the shared backbone and its own heads
(and any state such as a memory bank, as buffers so checkpoints carry it).
It declares:

- ``Config``: a dataclass subclassing :class:`benchmark.config.MethodConfig`; static checks of its
  values live in its ``__post_init__`` (they run when a config or sweep file is loaded);
- ``sampler``: the registered sampler name that turns one video into one training sample, and
  ``sampler_fields``: the config fields passed on to it (a tuple of names, or a mapping
  {sampler option: config field}); override ``sampler_options`` only when a value must be computed;
- ``backbone_kind``: "2d", "3d" or "either";
- ``pretraining``: :class:`Pretraining` -- WEIGHTS (an objective; the default), STATISTICS (forward
  passes that change no weight: the BatchNorm-statistics control) or NONE (no pre-training stage:
  random init);
- ``check(cfg, info)``: checks that need the data (number of videos, classes); the one validation
  hook, run when a run or sweep is loaded (``vssl pretrain``, ``--dry-run``, submissions) and again
  when the method is built; ``resolve(cfg, info)`` turns data-dependent values ('auto') into numbers;
- ``training_step(batch, progress)`` -> :class:`StepOutput`: a loss and named scalars to log. Scalars
  may be 0-d tensors: the loop turns them into numbers on logging steps only, so a step never waits
  for the device.

A second encoder (CMC's other view, a GAN's generator) is a submodule like any head: checkpoints
carry the whole method's state_dict, and evaluation reads ``backbone`` (the shared encoder) unless a
method says otherwise.

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
            return StepOutput(loss, {"loss": loss.detach()})
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
    scalars: dict[str, torch.Tensor | float] = field(default_factory=dict)  # 0-d tensors or numbers


class Pretraining(enum.Enum):
    """What a method's pre-training stage does to the backbone."""

    WEIGHTS = "weights"  # an objective: gradient steps on the backbone (every SSL method, supervised)
    STATISTICS = "statistics"  # forward passes only: BatchNorm running statistics change, no weight does
    NONE = "none"  # no pre-training stage: the seeded initialisation is saved and evaluated (random init)


class Method(nn.Module):
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    sampler: ClassVar[str | None] = None
    sampler_fields: ClassVar[tuple[str, ...] | Mapping[str, str]] = ()
    backbone_kind: ClassVar[Literal["2d", "3d", "either"]] = "either"
    needs_labels: ClassVar[bool] = False  # True: pre-training reads the labelled split (supervised row)
    pretraining: ClassVar[Pretraining] = Pretraining.WEIGHTS
    registry_name: ClassVar[str | None] = None

    def __init__(self, cfg: MethodConfig, backbone: nn.Module, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.info = info

    @classmethod
    def check(cls, cfg: MethodConfig, info: DataInfo) -> None:
        """Raise a one-line UserError when this config cannot run on this data (the default accepts all)."""

    @classmethod
    def resolve(cls, cfg: MethodConfig, info: DataInfo) -> MethodConfig:
        """The config with data-dependent values made concrete (TCE's ``negatives: auto``); the run's
        config.yaml records the resolved one. The default returns ``cfg`` unchanged."""
        return cfg

    @classmethod
    def sampler_options(cls, cfg: MethodConfig, info: DataInfo) -> dict[str, Any]:
        """Keyword arguments for this method's sampler: the ``sampler_fields`` of the method config."""
        fields = cls.sampler_fields
        pairs = fields.items() if isinstance(fields, Mapping) else ((f, f) for f in fields)
        return {option: getattr(cfg, name) for option, name in pairs}

    def training_step(self, batch: dict[str, Any], progress: Progress) -> StepOutput:
        raise NotImplementedError

    def extra_checkpoint_state(self) -> dict[str, Any]:
        """State that is not a parameter or buffer but must survive a resume (e.g. a normaliser estimate)."""
        return {}

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        pass
