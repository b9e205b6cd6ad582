"""Cross-entropy with its accuracy (every classification pretext and the supervised reference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.losses.classification import cross_entropy_accuracy


def test_label_smoothing_reaches_the_loss():
    """method.label_smoothing of the supervised reference must change its loss, exactly as torch defines it."""
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    smoothed, _ = cross_entropy_accuracy(logits, target, label_smoothing=0.1)
    plain, _ = cross_entropy_accuracy(logits, target)
    assert smoothed.item() == pytest.approx(F.cross_entropy(logits, target, label_smoothing=0.1).item())
    assert plain.item() == pytest.approx(F.cross_entropy(logits, target).item()) and smoothed.item() != plain.item()


def test_accuracy_counts_the_highest_logit():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 1.0, 5.0], [2.0, 4.0, 0.0], [1.0, 0.0, 0.5]])
    _, scalars = cross_entropy_accuracy(logits, torch.tensor([0, 2, 0, 1]))
    assert scalars["accuracy"].item() == pytest.approx(0.5)  # rows 0 and 1 right; the lowest logit would score 0.25
