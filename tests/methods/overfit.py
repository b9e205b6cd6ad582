"""Shared by the per-method tests: build a method on resnet10t at 32 px and over-fit one tiny fixed batch."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.config import load_config
from benchmark.device import one_thread  # noqa: F401  (re-exported for the per-method tests)
from benchmark.method import Method, Progress
from benchmark.registry import METHODS
from benchmark.train import build_method
from tests.methods.test_contract import RES, tiny_batch


def tiny_method(
    name: str, overrides: tuple[str, ...] = (), backbone: str = "resnet10t", num_classes: int = 0
) -> tuple[Method, dict]:
    """The method (seeded) and a batch of 8 samples drawn by its own sampler from random in-memory videos."""
    cfg = load_config(None, [f"method.name={name}", f"backbone.name={backbone}", f"data.resolution={RES}", *overrides])
    method = build_method(cfg, num_videos=16, num_classes=num_classes)
    batch = tiny_batch(METHODS.get(name), cfg, method.info, batch_size=8)
    return method, batch


def overfit_losses(
    method: Method, batch: dict, steps: int = 30, lr: float = 1e-3, fixed_step: int | None = None
) -> list[float]:
    """Train on the same batch for ``steps`` Adam steps (on one thread); the losses. ``fixed_step`` pins Progress.step."""
    torch.manual_seed(0)
    method.train()
    optimizer = torch.optim.Adam(method.parameters(), lr=lr)
    losses = []
    with one_thread():
        for i in range(steps):
            out = method.training_step(batch, Progress(step=i if fixed_step is None else fixed_step, total_steps=steps))
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            losses.append(out.loss.item())
    return losses


def fell_clearly(losses: list[float], factor: float = 0.5) -> bool:
    """The mean of the last 3 losses is below ``factor`` times the mean of the first 3."""
    return float(np.mean(losses[-3:])) < factor * float(np.mean(losses[:3]))


def record_head(method: Method) -> dict:
    """Replace ``method.head.forward`` by one that records its input ("features") and output ("logits") in the
    returned dict (filled on each call), so a test can check what the method fed its head."""
    seen: dict = {}
    real_head = method.head.forward

    def recording_head(features):
        seen["features"], seen["logits"] = features, real_head(features)
        return seen["logits"]

    method.head.forward = recording_head
    return seen
