"""The training step's optimiser and schedule (benchmark/train.py): what every pre-training row runs."""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import pytest
import torch

from benchmark.config import load_config
from benchmark.method import Progress
from benchmark.train import Trainer, lr_factor, make_optimizer
from tests.methods.overfit import tiny_method


def optim(*overrides: str):
    return load_config(None, list(overrides)).optim


def test_warmup_then_cosine_to_zero():
    """10 warm-up steps rise linearly to the full rate; the cosine then spans the remaining 100 steps to 0."""
    cfg = optim("optim.steps=110", "optim.warmup_steps=10", "optim.schedule=cosine")
    table = {0: 0.1, 4: 0.5, 9: 1.0, 10: 1.0, 35: 0.5 * (1 + math.cos(math.pi / 4)), 60: 0.5, 110: 0.0}
    assert {s: lr_factor(s, cfg) for s in table} == pytest.approx(table)


def test_step_schedule_divides_by_ten_at_each_milestone():
    cfg = optim("optim.steps=100", "optim.warmup_steps=0", "optim.schedule=step", "optim.step_milestones=[0.5, 0.75]")
    table = {0: 1.0, 49: 1.0, 50: 0.1, 74: 0.1, 75: 0.01, 99: 0.01}
    assert {s: lr_factor(s, cfg) for s in table} == pytest.approx(table)
    assert lr_factor(77, optim("optim.schedule=constant", "optim.warmup_steps=0")) == 1.0


def test_sgd_carries_its_momentum_and_weight_decay():
    """sweeps/table1.yaml's rows run SGD: both settings must reach torch's optimiser."""
    param = [torch.nn.Parameter(torch.zeros(1))]
    sgd = make_optimizer(
        param, optim("optim.name=sgd", "optim.lr=0.05", "optim.momentum=0.8", "optim.weight_decay=0.002")
    )
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.defaults["lr"], sgd.defaults["momentum"], sgd.defaults["weight_decay"]) == (0.05, 0.8, 0.002)
    adamw = make_optimizer(param, optim("optim.name=adamw", "optim.weight_decay=0.003"))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.003


def _trainer(*overrides: str) -> tuple[Trainer, dict]:
    method, batch = tiny_method("tce", ("method.negatives=3", *overrides))
    method.train()
    ctx = SimpleNamespace(autocast=contextlib.nullcontext)
    return Trainer(method, load_config(None, ["method.name=tce", "method.negatives=3", *overrides]), ctx), batch


def test_each_step_moves_the_schedule_once():
    trainer, batch = _trainer("optim.steps=20", "optim.warmup_steps=4", "optim.lr=0.01", "optim.schedule=cosine")
    for step in range(3):
        trainer.train_step(batch, Progress(step, 20))
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * lr_factor(step + 1, trainer.cfg.optim))


def test_gradients_are_clipped_to_grad_clip(monkeypatch):
    seen = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        torch.nn.utils, "clip_grad_norm_", lambda params, max_norm: seen.append(max_norm) or real(params, max_norm)
    )
    trainer, batch = _trainer("optim.grad_clip=0.5")
    trainer.train_step(batch, Progress(0, 10))
    assert seen == [0.5]
    unclipped, batch = _trainer()
    unclipped.train_step(batch, Progress(0, 10))
    assert seen == [0.5]  # grad_clip 0 (the default) clips nothing
