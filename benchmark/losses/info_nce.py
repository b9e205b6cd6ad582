"""Softmax InfoNCE over one positive and K negatives (van den Oord et al., 2018; the TCE default here).

For anchor ``a``, positive ``p`` and negatives ``n_k`` (all unit norm) the logits are
``[a.p, a.n_1, ..., a.n_K] / tau`` and the loss is the cross-entropy with the positive
(column 0) as the target, averaged over the batch.

>>> import torch
>>> a = torch.tensor([[1.0, 0.0]]); p = torch.tensor([[1.0, 0.0]])
>>> negs = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])          # [B=1, K=2, D=2]
>>> contrastive_logits(a, p, negs, temperature=0.5)
tensor([[ 2.,  0., -2.]])
>>> round(info_nce(a, p, negs, temperature=0.5).item(), 4)      # -log(e^2 / (e^2 + e^0 + e^-2))
0.1429
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_logits(
    anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """anchor, positive [B, D]; negatives [B, K, D] -> logits [B, 1 + K], the positive in column 0."""
    pos = (anchor * positive).sum(-1, keepdim=True)
    neg = torch.einsum("bd,bkd->bk", anchor, negatives)
    return torch.cat([pos, neg], dim=1) / temperature


def info_nce_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of [B, 1 + K] logits with target 0 (the positive), mean over the batch."""
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE for unit-norm anchor/positive [B, D] and negatives [B, K, D]."""
    return info_nce_from_logits(contrastive_logits(anchor, positive, negatives, temperature))
