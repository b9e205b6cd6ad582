"""Heads shared by the methods, lightly-style: small blocks with one job each.

- :class:`MLPHead`: a linear layer, or an MLP (Linear [+ BatchNorm] + ReLU per hidden layer) -- TCE's
  projection and rotation heads, Shuffle and Learn's order classifier, Arrow of Time's concat head;
- :class:`PairwiseOrderHead`: per-item features -> every pair (i < j) through one shared fc -> the pair
  outputs concatenated -> dropout -> fc (VCOP's clip-order head, OPN's frame-order head);
- :class:`TemporalConvHead`: one temporal convolution over per-frame features, mean over time -> fc;
- :class:`ConvGRUCell`: a GRU over feature maps whose gates are 1x1 convolutions (DPC's aggregator).

>>> import torch
>>> MLPHead(8, 2)(torch.randn(4, 8)).shape
torch.Size([4, 2])
>>> [type(m).__name__ for m in MLPHead(8, 3, hidden=(16,), batch_norm=True)]
['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
>>> PairwiseOrderHead(num_features=8, num_items=3, pair_dim=16, num_classes=6)(torch.randn(2, 3, 8)).shape
torch.Size([2, 6])
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MLPHead(nn.Sequential):
    """``in_dim`` -> (hidden layers) -> ``out_dim``; no hidden layer is a plain linear layer."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (), batch_norm: bool = False):
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)


class PairwiseOrderHead(nn.Module):
    """Per-item features [B, n, F] -> order logits [B, num_classes] through every pair's shared fc.

    Pairs are ``itertools.combinations(range(n), 2)`` in order; each pair's two features are concatenated
    (first, second), mapped by one shared Linear(2F -> pair_dim) + ReLU, and the pair outputs concatenated.
    """

    def __init__(self, num_features: int, num_items: int, pair_dim: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        pairs = list(itertools.combinations(range(num_items), 2))
        self.register_buffer("first", torch.tensor([i for i, _ in pairs]), persistent=False)
        self.register_buffer("second", torch.tensor([j for _, j in pairs]), persistent=False)
        self.pair = nn.Sequential(nn.Linear(2 * num_features, pair_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(len(pairs) * pair_dim, num_classes))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        pairs = torch.cat([feats[:, self.first], feats[:, self.second]], dim=-1)  # [B, P, 2F]
        return self.classifier(self.pair(pairs).flatten(1))


class TemporalConvHead(nn.Module):
    """Per-frame features [B, T, F] -> one temporal convolution (kernel 3), ReLU, mean over time -> Linear."""

    def __init__(self, num_features: int, hidden_dim: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv1d(num_features, hidden_dim, kernel_size=3, padding=1)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(features.transpose(1, 2))).mean(-1))


class ConvGRUCell(nn.Module):
    """A GRU over feature maps whose gates are 1x1 convolutions (one cell per position, shared weights)."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.gates = nn.Conv2d(input_dim + hidden_dim, 2 * hidden_dim, kernel_size=1)
        self.candidate = nn.Conv2d(input_dim + hidden_dim, hidden_dim, kernel_size=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        proposal = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * proposal
