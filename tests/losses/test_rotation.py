"""Rotation auxiliary task: per-sample quarter turns and a 4-way cross-entropy."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
import torch.nn.functional as F

from benchmark.losses import rotate_quarter_turns, rotation_loss


def test_docstring_examples_run():
    result = doctest.testmod(importlib.import_module("benchmark.losses.rotation"))  # the module, not the function
    assert result.attempted > 0 and result.failed == 0


def test_each_frame_turned_by_its_own_count():
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    turns = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    out = rotate_quarter_turns(x, turns)
    for b in range(8):
        assert torch.equal(out[b], torch.rot90(x[b], int(turns[b]), dims=(-2, -1)))
    assert torch.equal(rotate_quarter_turns(out, (4 - turns) % 4), x)  # turning back restores every frame


def test_rejects_non_square_frames():
    with pytest.raises(ValueError, match="square"):
        rotate_quarter_turns(torch.zeros(1, 3, 4, 5), torch.tensor([1]))


def test_loss_is_cross_entropy():
    logits, turns = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 1, 2])
    assert torch.allclose(rotation_loss(logits, turns), F.cross_entropy(logits, turns))
