"""The release's binary NCE with a constant normaliser: equal to a direct computation of its formula."""

from __future__ import annotations

import doctest
import importlib
import math

import torch

from benchmark.losses import binary_nce, estimate_normaliser


def test_docstring_examples_run():
    result = doctest.testmod(importlib.import_module("benchmark.losses.nce"))  # the module, not the function
    assert result.attempted > 0 and result.failed == 0


def _direct(logits: list[list[float]], z: float, n: int, eps: float = 1e-7) -> float:
    """-mean_b [ log(s0 / (s0 + K Pn + eps)) + sum_k log(K Pn / (s_k + K Pn + eps)) ],  s = exp(l) / Z, Pn = 1/N."""
    total = 0.0
    for row in logits:
        k = len(row) - 1
        kpn = k * (1.0 / n)
        s = [math.exp(v) / z for v in row]
        total += math.log(s[0] / (s[0] + kpn + eps)) + sum(math.log(kpn / (sk + kpn + eps)) for sk in s[1:])
    return -total / len(logits)


def test_normaliser_is_mean_exp_times_bank_size():
    logits = torch.randn(5, 9, generator=torch.Generator().manual_seed(0)) * 3
    z = estimate_normaliser(logits, num_data=1000)
    assert math.isclose(z.item(), logits.double().exp().mean().item() * 1000, rel_tol=1e-5)


def test_nce_equals_the_direct_formula():
    g = torch.Generator().manual_seed(1)
    logits = (torch.rand(6, 17, generator=g) * 2 - 1) / 0.07  # cosines / tau
    n = 500
    z = estimate_normaliser(logits, n)
    got = binary_nce(logits, z, n).item()
    assert math.isclose(got, _direct(logits.double().tolist(), z.item(), n), rel_tol=1e-5)
    # a different, fixed normaliser (a resumed run keeps its first estimate): still the formula
    assert math.isclose(binary_nce(logits, 123.0, n).item(), _direct(logits.double().tolist(), 123.0, n), rel_tol=1e-5)


def test_nce_gradient_flows_to_logits_but_not_through_the_normaliser():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(2)).requires_grad_()
    z = estimate_normaliser(logits, 50)
    assert not z.requires_grad
    binary_nce(logits, z, 50).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[:, 0].lt(0).all()  # raising the positive lowers the loss
