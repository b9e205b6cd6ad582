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
  for the device. The default ``pretext_eval`` reads its ``accuracy`` scalar on held-out videos;
- ``chance(batch_size)`` -> :class:`Chance`: the pretext's chance level, against which every run checks
  that the objective learned (``training_step`` and ``chance`` are required; a trainable method without
  either fails at load).

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

        def chance(self, batch_size):
            return Chance(math.log(batch_size), 1 / batch_size)  # each anchor finds its positive in the batch

        def training_step(self, batch, progress):
            a = F.normalize(self.head(self.backbone(batch["anchor"])), dim=-1)
            p = F.normalize(self.head(self.backbone(batch["positive"])), dim=-1)
            logits = (a @ p.t() / 0.1).float()
            target = torch.arange(len(a), device=a.device)
            loss = F.cross_entropy(logits, target)
            accuracy = (logits.argmax(1) == target).float().mean()
            return StepOutput(loss, {"loss": loss.detach(), "accuracy": accuracy})
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from benchmark.config import MethodConfig
from benchmark.errors import UserError


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


@dataclass(frozen=True)
class Chance:
    """A pretext task's chance level: the training loss a guess gets (None: no closed form, e.g. the release's
    NCE) and the pretext measure a guess scores (accuracy; a regression pretext uses R^2 against the training
    mean, whose chance is 0)."""

    loss: float | None
    accuracy: float | None
    measure: str = "accuracy"  # "accuracy", or "r2" for a regression pretext, or a method's own


def binary_standard_error(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / max(1, n))


def pretext_verdict(step0: dict, final: dict, chance: Chance, r2_threshold: float = 0.1) -> dict:
    """Did a run learn its pretext task? Accuracy: the end score >= chance + m and >= the step-0 score + m, with
    m = 3 binomial standard errors of the held-out sample; R^2: the end R^2 >= 0.1 (predicting the training mean
    scores 0). ``step0`` / ``final``: {"value", "samples", ...} from the held-out evaluation."""
    if chance.measure == "r2":
        learned = final["value"] >= r2_threshold
        return {"learned": bool(learned), "rule": f"held-out R^2 >= {r2_threshold}", "margin": r2_threshold}
    p = chance.accuracy if chance.accuracy is not None else 0.0
    if p >= 1 - 1e-9:  # e.g. in-batch retrieval among a single held-out video: no wrong answer to avoid
        return {"learned": None, "rule": "not measurable: chance accuracy is 1 on this held-out sample", "margin": 0.0}
    # no chance level given (a plugin's Chance(None, None)): the spread of the step-0 score, not a margin of 0
    n = max(1, final["samples"])
    spread = p if chance.accuracy is not None else min(max(step0["value"], 1 / n), 1 - 1 / n)  # never a zero margin
    m = 3 * binary_standard_error(spread, n)
    learned = final["value"] >= p + m and final["value"] >= step0["value"] + m
    rule = "held-out accuracy >= chance + m and >= step-0 accuracy + m, m = 3 binomial SE"
    return {"learned": bool(learned), "rule": rule, "margin": round(m, 5)}


def check_step_output(out: Any, method: nn.Module) -> StepOutput:
    """``out`` when it is what ``training_step`` must return, else one line naming the method (a plugin's bare
    tensor or dict once failed deep in the harness)."""
    if not isinstance(out, StepOutput) or not torch.is_tensor(out.loss) or out.loss.numel() != 1:
        got = type(out).__name__ if not isinstance(out, StepOutput) else f"a loss of {out.loss!r:.40}"
        raise UserError(f"{method_label(method)}: training_step returned {got}; it must return "
                        "StepOutput(loss=<a one-element tensor>, scalars={...}) (docs/adding-a-method.md)")  # fmt: skip
    return out


def check_loss_has_gradient(out: StepOutput, method: nn.Module) -> None:
    """One line, not autograd's "element 0 of tensors does not require grad" from deep in the loop, when a
    training step's loss reaches no trainable parameter (read from the tensor: no device sync)."""
    if torch.is_grad_enabled() and not out.loss.requires_grad:
        raise UserError(f"{method_label(method)}: training_step's loss reaches no trainable parameter (detached, "
                        "built from .item() or .numpy(), or computed under torch.no_grad()): no step could change "
                        "the model")  # fmt: skip


def method_label(method: nn.Module) -> str:
    """ "method 'NAME' (MODULE)": which method, and where its code lives (a plugin's module)."""
    name = getattr(getattr(method, "cfg", None), "name", type(method).__name__)
    return f"method '{name}' ({type(method).__module__})"


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
    # dotted config overrides under which the registry-wide learning test (tests/methods/test_learning.py)
    # pre-trains this method: the smallest budget that passes it, with a margin; empty: the test's default budget
    learning_test_budget: ClassVar[tuple[str, ...]] = ()
    # method fields that change only how a trained run is evaluated (CMC's eval_features): `vssl evaluate` may
    # override these; every other method.* value is what the checkpoint was trained with
    eval_only_fields: ClassVar[tuple[str, ...]] = ()

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
        """Keyword arguments for this method's sampler: the ``sampler_fields`` of the method config, and ``aug``
        (``cfg.augment()``) when the config mixes in :class:`~benchmark.data.transforms.AugmentFields`."""
        fields = cls.sampler_fields
        pairs = fields.items() if isinstance(fields, Mapping) else ((f, f) for f in fields)
        options = {option: getattr(cfg, name) for option, name in pairs}
        if callable(getattr(cfg, "augment", None)):  # AugmentFields (benchmark.data sits above this layer)
            options["aug"] = cfg.augment()
        return options

    @classmethod
    def smoke_overrides(cls, cfg: MethodConfig) -> dict[str, Any]:
        """Dotted ``method.*`` values a ``--smoke`` run needs on its stand-in (a few 32-px videos) where this
        config's paper-scale values cannot run there (a bank-sized K, a 64-px generator). Default: none."""
        return {}

    @classmethod
    def eval_encoder(cls, cfg: MethodConfig, backbone: nn.Module, model_state: Mapping[str, Any]) -> nn.Module:
        """The module the frozen-feature protocols (linear probe, kNN) read features from, given the pre-trained
        ``backbone`` and the checkpoint's whole method state (``model``). The default is the backbone; a method
        whose paper evaluates more (CMC's two encoders, concatenated) builds that here. It takes what the
        backbone takes and has its ``kind``; fine-tuning always trains the backbone alone."""
        return backbone

    def training_step(self, batch: dict[str, Any], progress: Progress) -> StepOutput:
        raise NotImplementedError(f"{type(self).__name__} does not implement training_step (Method.training_step)")

    def perf_parts(self, batch: dict[str, Any]) -> dict[str, Callable[[], None]]:
        """Optional, for ``vssl bench methods``: named pieces of the step that the benchmark times on their own,
        each a callable running that piece's forward and backward as the step would (VideoGAN: its generator).
        The default is none."""
        return {}

    # ------------------------------------------------------------------ did it learn its pretext task?
    def chance(self, batch_size: int) -> Chance:
        """The chance level of this method's pretext at this batch size (every objective states its own)."""
        raise NotImplementedError(f"{type(self).__name__} does not state its pretext's chance level (Method.chance)")

    def pretext_eval(self, batch: dict[str, Any], progress: Progress) -> dict[str, torch.Tensor]:
        """The pretext measured on a held-out batch: {"loss", "accuracy"} (or {"loss", "sse", "sst"} for a
        regression pretext; optionally "chance_accuracy" when chance depends on the batch, e.g. in-batch
        retrieval, or "class_counts", a [C] tensor of the batch's labels per class, when the pretext is to name
        a class: chance is then the best constant guess, the most frequent class of all held-out samples). The
        harness calls it under no_grad in eval mode with its own RNG, and it must leave the
        method's state untouched: the default runs ``training_step``, so a method whose step writes state (a
        memory bank, a normaliser) overrides it."""
        out = check_step_output(self.training_step(batch, progress), self)
        if "accuracy" not in out.scalars:
            raise UserError(
                f"{type(self).__name__}.training_step logs no 'accuracy' scalar, which the default pretext_eval reads: "
                "log the pretext's accuracy there, or override pretext_eval (docs/adding-a-method.md)"
            )
        return {"loss": out.loss.detach(), "accuracy": torch.as_tensor(out.scalars["accuracy"])}

    def extra_checkpoint_state(self) -> dict[str, Any]:
        """State that is not a parameter or buffer but must survive a resume (e.g. a normaliser estimate)."""
        return {}

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        pass
