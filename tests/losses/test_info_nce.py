"""InfoNCE: exactly the cross-entropy over [positive, K negatives] logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmark.losses import contrastive_logits, info_nce, info_nce_from_logits


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_logits_put_the_positive_first_and_divide_by_temperature():
    a, p, n = _unit(3, 5, seed=0), _unit(3, 5, seed=1), _unit(3, 4, 5, seed=2)
    logits = contrastive_logits(a, p, n, temperature=0.1)
    assert logits.shape == (3, 5)
    for b in range(3):
        assert math.isclose(logits[b, 0].item(), float(a[b] @ p[b]) / 0.1, rel_tol=1e-5)
        for k in range(4):
            assert math.isclose(logits[b, 1 + k].item(), float(a[b] @ n[b, k]) / 0.1, rel_tol=1e-5, abs_tol=1e-6)


def test_info_nce_equals_cross_entropy_and_minus_log_softmax_of_the_positive():
    a, p, n = _unit(4, 8, seed=3), _unit(4, 8, seed=4), _unit(4, 6, 8, seed=5)
    logits = contrastive_logits(a, p, n, 0.07)
    expected = F.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    by_hand = sum(-math.log(math.exp(row[0]) / sum(math.exp(v) for v in row)) for row in logits.double().tolist()) / 4
    assert torch.allclose(info_nce(a, p, n, 0.07), expected)
    assert torch.allclose(info_nce_from_logits(logits), expected)
    assert math.isclose(info_nce(a, p, n, 0.07).item(), by_hand, rel_tol=1e-5)


def test_gradient_reaches_anchor_and_positive():
    a, p = _unit(2, 4, seed=6).requires_grad_(), _unit(2, 4, seed=7).requires_grad_()
    info_nce(a, p, _unit(2, 3, 4, seed=8), 0.5).backward()
    assert a.grad.abs().sum() > 0 and p.grad.abs().sum() > 0
