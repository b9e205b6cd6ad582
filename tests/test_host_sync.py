"""No host synchronisation on a non-logging training step (architecture step, part 6).

On a GPU, turning a device tensor into a Python value (``.item()``, ``float()``, ``bool()``, ``int()``,
``.tolist()``) stalls the queue until the device catches up. The training step of every method therefore keeps
its loss and scalars as tensors; the loop turns them into numbers on logging and checkpoint steps only. This test
counts, during one optimiser step that is not a logging step, every such call made from code in benchmark/ or
methods/ (torch's own calls, e.g. AdamW's step counter on CPU, are not counted) and asserts there are none.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from benchmark.config import load_config
from benchmark.device import one_thread, resolve_runtime
from benchmark.method import Pretraining, Progress
from benchmark.registry import METHODS
from benchmark.train import Trainer, build_method
from tests.methods.test_contract import SMALL, tiny_batch

REPO = Path(__file__).resolve().parents[1]
OURS = (str(REPO / "benchmark"), str(REPO / "methods"))
CONVERSIONS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist")
STEPPING = [e.name for e in METHODS.entries() if e.obj.pretraining is not Pretraining.NONE]


class SyncCounter:
    """Wraps Tensor conversions; counts the calls whose caller's file lies in benchmark/ or methods/."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: Counter[str] = Counter()
        for name in CONVERSIONS:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(getattr(torch.Tensor, name), name))

    def _wrap(self, real, name: str):
        counter = self

        def wrapped(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(OURS):
                counter.calls[f"{name} in {caller}:{sys._getframe(1).f_lineno}"] += 1
            return real(tensor, *args, **kwargs)

        return wrapped


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.mark.slow
@pytest.mark.parametrize("name", STEPPING)
def test_a_non_logging_step_never_waits_for_the_device(name, monkeypatch):
    method_cls = METHODS.get(name)
    cfg = load_config(
        None,
        [f"method.name={name}", "backbone.name=resnet10t", f"backbone.inflate={method_cls.backbone_kind == '3d'}",
         "data.resolution=32",
         "run.precision=fp32", "optim.steps=10", "run.log_every=5", *SMALL.get(name, [])],
    )  # fmt: skip
    method = build_method(cfg, num_videos=16, num_classes=3 if method_cls.needs_labels else 0)
    batch = tiny_batch(method_cls, cfg, method.info)
    trainer = Trainer(method, cfg, resolve_runtime("cpu", "fp32", False))
    trainer.train_step(batch, Progress(step=0, total_steps=10))  # the first step may read a buffer once
    counter = SyncCounter(monkeypatch)
    out = trainer.train_step(batch, Progress(step=1, total_steps=10))  # step 2 of 10, log_every 5: not logged
    monkeypatch.undo()
    assert not counter.calls, f"host syncs in a non-logging step: {dict(counter.calls)}"
    assert torch.is_tensor(out.loss) and all(torch.is_tensor(v) or isinstance(v, float) for v in out.scalars.values())


def test_the_counter_sees_a_sync_in_our_code(monkeypatch):
    """The check can fail: a conversion made from benchmark/ code is counted."""
    from benchmark.train import log_values

    counter = SyncCounter(monkeypatch)
    log_values({"loss": torch.tensor(1.0)})  # float() from benchmark/train.py
    monkeypatch.undo()
    assert sum(counter.calls.values()) == 1 and "train.py" in next(iter(counter.calls))
