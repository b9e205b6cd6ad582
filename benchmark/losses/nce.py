"""Binary NCE with a constant normaliser, as in the TCE release (after CMC, Tian et al. 2019, and
instance discrimination, Wu et al. 2018): kept for fidelity, an ablation row beside InfoNCE.

With logits ``l = v . f / tau`` over (positive, K negatives), ``s = exp(l) / Z``, the noise
probability ``Pn = 1 / N`` (N = memory-bank size) and ``eps = 1e-7``::

    L = -mean_b [ log(s_0 / (s_0 + K Pn + eps)) + sum_k log(K Pn / (s_k + K Pn + eps)) ]

``Z`` is estimated ONCE, from the first batch, as ``mean(exp(l)) * N``, and then held
constant (a method stores it, e.g. as a buffer, so a resumed run keeps it).

>>> import torch
>>> logits = torch.tensor([[2.0, 0.0, -1.0]])                 # [B=1, 1 + K=2]
>>> z = estimate_normaliser(logits, num_data=10)
>>> round(z.item(), 4)                                        # mean(e^2, e^0, e^-1) * 10
29.1898
>>> round(binary_nce(logits, z, num_data=10).item(), 4)
0.8015
"""

from __future__ import annotations

import math

import torch


def estimate_normaliser(logits: torch.Tensor, num_data: int) -> torch.Tensor:
    """Z = mean(exp(logits)) * N over every entry of the batch's [B, 1 + K] logits (no gradient)."""
    logits = logits.detach().double()
    log_z = torch.logsumexp(logits.flatten(), 0) - math.log(logits.numel()) + math.log(num_data)
    return log_z.exp().float()


def binary_nce(
    logits: torch.Tensor, normaliser: torch.Tensor | float, num_data: int, eps: float = 1e-7
) -> torch.Tensor:
    """The release's NCE loss for [B, 1 + K] logits (positive in column 0) and a constant normaliser Z."""
    k = logits.shape[1] - 1
    noise = k / num_data  # K * Pn
    s = torch.exp(logits - math.log(float(normaliser)))  # exp(l) / Z without overflowing exp(l)
    log_pos = torch.log(s[:, 0] / (s[:, 0] + noise + eps))
    log_neg = torch.log(noise / (s[:, 1:] + noise + eps)).sum(1)
    return -(log_pos + log_neg).mean()
