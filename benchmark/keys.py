"""The two small grammars every layer shares: a stage spec and a metrics key.

Stage spec (``run.stages``, a sweep's ``stages``)::

    pretrain | PROTOCOL[:DATASET[:SPLIT]]       e.g. linear, finetune:hmdb51, knn:ucf101:2

A bare protocol evaluates on the config's ``eval.dataset`` / ``eval.split``; naming a set (and split) lets
one pre-training serve several columns of a table.

Metrics key (the entries of metrics.json)::

    pretrain | PROTOCOL/DATASET/splitN[@step_M]  e.g. linear/synthetic/split1, knn/ucf101/split3@step_200

``@step_M`` marks an evaluation of the intermediate checkpoint ``checkpoints/step_M.pt``; without it the
entry is of ``checkpoints/last.pt``.

>>> Stage.parse("finetune:hmdb51:2")
Stage(protocol='finetune', dataset='hmdb51', split=2)
>>> str(Stage.parse("linear").key("synthetic", 1).at("step_200.pt"))
'linear/synthetic/split1@step_200'
>>> MetricsKey.parse("knn/ucf101/split3@step_50")
MetricsKey(protocol='knn', dataset='ucf101', split=3, step=50)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from benchmark.errors import UserError

PRETRAIN = "pretrain"
LAST = "last.pt"
_KEY = re.compile(r"^(?P<protocol>[^/@:]+)/(?P<dataset>[^/@:]+)/split(?P<split>\d+)(?:@step_(?P<step>\d+))?$")
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_step(name: str) -> int | None:
    """'last.pt' -> None, 'step_200.pt' -> 200; anything else is a one-line UserError."""
    if name == LAST:
        return None
    m = _STEP_FILE.match(name)
    if not m:
        raise UserError(f"checkpoint '{name}' should be {LAST} or step_N.pt")
    return int(m.group(1))


def checkpoint_name(step: int | None) -> str:
    """None -> 'last.pt', 200 -> 'step_200.pt'."""
    return LAST if step is None else f"step_{step}.pt"


@dataclass(frozen=True)
class MetricsKey:
    protocol: str
    dataset: str | None = None
    split: int | None = None
    step: int | None = None  # None: the run's final checkpoint (last.pt)

    @classmethod
    def parse(cls, text: str) -> MetricsKey | None:
        """A metrics.json key; None for keys that are neither 'pretrain' nor an evaluation."""
        if text == PRETRAIN:
            return cls(PRETRAIN)
        m = _KEY.match(text)
        if not m:
            return None
        step = int(m["step"]) if m["step"] is not None else None
        return cls(m["protocol"], m["dataset"], int(m["split"]), step)

    @property
    def is_evaluation(self) -> bool:
        return self.protocol != PRETRAIN

    @property
    def checkpoint(self) -> str:
        """The checkpoint file this entry evaluated: 'last.pt' or 'step_N.pt'."""
        return checkpoint_name(self.step)

    @property
    def final(self) -> MetricsKey:
        """The same evaluation of the run's final checkpoint."""
        return replace(self, step=None)

    def at(self, checkpoint: str) -> MetricsKey:
        """The same evaluation of another checkpoint file ('last.pt' or 'step_N.pt')."""
        return replace(self, step=checkpoint_step(checkpoint))

    def __str__(self) -> str:
        if not self.is_evaluation:
            return PRETRAIN
        suffix = "" if self.step is None else f"@step_{self.step}"
        return f"{self.protocol}/{self.dataset}/split{self.split}{suffix}"


@dataclass(frozen=True)
class Stage:
    protocol: str
    dataset: str | None = None
    split: int | None = None

    @classmethod
    def parse(cls, text: str, where: str = "run.stages") -> Stage:
        """'linear', 'finetune:hmdb51', 'knn:ucf101:2', 'pretrain'; the syntax only (protocols are checked by
        the config against the protocol registry)."""
        protocol, *rest = str(text).split(":")
        bad = UserError(f"stage '{text}' in {where} should look like 'linear', 'finetune:hmdb51' or 'knn:ucf101:2'")
        if not protocol or len(rest) > 2 or (protocol == PRETRAIN and rest) or (len(rest) == 1 and not rest[0]):
            raise bad
        if len(rest) == 2 and not rest[1].isdigit():
            raise bad  # 'knn::2' (the config's set, split 2) is allowed
        return cls(protocol, (rest[0] or None) if rest else None, int(rest[1]) if len(rest) == 2 else None)

    @property
    def is_pretrain(self) -> bool:
        return self.protocol == PRETRAIN

    def resolve(self, dataset: str | None, split: int | None) -> Stage:
        """The stage with the config's downstream set and split filled in where it names none."""
        if self.is_pretrain:
            return self
        return Stage(self.protocol, self.dataset or dataset, self.split if self.split is not None else split)

    def key(self, dataset: str | None = None, split: int | None = None) -> MetricsKey:
        """Its metrics key (final checkpoint), with the config's defaults for a bare protocol."""
        s = self.resolve(dataset, split)
        return MetricsKey(s.protocol, s.dataset, s.split) if not self.is_pretrain else MetricsKey(PRETRAIN)

    def __str__(self) -> str:
        if self.split is not None:
            return f"{self.protocol}:{self.dataset or ''}:{self.split}"
        return f"{self.protocol}:{self.dataset}" if self.dataset else self.protocol


def required_keys(stages: list[str], dataset: str | None, split: int | None, checkpoint_steps=()) -> list[str]:
    """metrics.json keys that make a run complete: one per stage, plus '<key>@step_N' per evaluated checkpoint."""
    keys = []
    for text in stages:
        key = Stage.parse(text).key(dataset, split)
        keys.append(str(key))
        if key.is_evaluation:
            keys += [str(key.at(checkpoint_name(n))) for n in checkpoint_steps]
    return keys


def evaluated_steps(run: dict, optim: dict) -> list[int]:
    """Steps N whose step_N.pt every evaluation stage also reads (run.evaluate_epoch_checkpoints), from config
    dicts (status readers work on the YAML without building a config)."""
    if not run.get("evaluate_epoch_checkpoints"):
        return []
    steps = int(optim.get("steps", 0) or 0)
    return sorted({int(n) for n in run.get("epoch_checkpoints", []) if 0 < int(n) <= steps})
