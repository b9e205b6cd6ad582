"""Embedding smoothness (logged every step by TCE)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.smoothness import embedding_smoothness


def test_smoothness_same_video_pairs_against_different_video_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    p = torch.tensor([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    video = torch.tensor([0, 1, 0])  # rows 0 and 2 are the same video: not a "different videos" pair
    out = embedding_smoothness(a, p, video)
    assert out["smooth_same"] == pytest.approx((0.6 + 1 + 1) / 3)
    z, v = torch.cat([a, p]), torch.cat([video, video])
    pairs = [(i, j) for i in range(6) for j in range(6) if v[i] != v[j]]
    assert out["smooth_diff"] == pytest.approx(sum(float(z[i] @ z[j]) for i, j in pairs) / len(pairs))


def test_smoothness_normalises_and_skips_diff_for_one_video():
    out = embedding_smoothness(torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([4]))
    assert float(out["smooth_same"]) == 0.0 and math.isnan(float(out["smooth_diff"]))  # NaN: left out of the log
