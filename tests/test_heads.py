"""The shared heads (benchmark/heads.py)."""

from __future__ import annotations

import itertools

import torch

from benchmark.heads import ConvGRUCell, MLPHead, PairwiseOrderHead, TemporalConvHead


def test_pairwise_head_concatenates_every_pair_in_order():
    torch.manual_seed(0)
    head = PairwiseOrderHead(num_features=5, num_items=4, pair_dim=7, num_classes=12, dropout=0.0).eval()
    feats = torch.randn(3, 4, 5)
    pairs = list(itertools.combinations(range(4), 2))
    explicit = torch.cat([head.pair(torch.cat([feats[:, i], feats[:, j]], 1)) for i, j in pairs], 1)
    assert torch.allclose(head(feats), head.classifier(explicit), atol=1e-6)
    swapped = feats[:, [1, 0, 2, 3]]  # a different order gives different logits: the order is read
    assert not torch.allclose(head(swapped), head(feats))


def test_mlp_head_shapes_and_layers():
    assert isinstance(MLPHead(4, 2)[0], torch.nn.Linear) and len(MLPHead(4, 2)) == 1
    mlp = MLPHead(4, 2, hidden=(8, 8), batch_norm=True)
    assert [type(m).__name__ for m in mlp] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert mlp(torch.randn(3, 4)).shape == (3, 2)


def test_temporal_conv_head_and_conv_gru_shapes():
    assert TemporalConvHead(6, 5, 2)(torch.randn(3, 4, 6)).shape == (3, 2)
    cell = ConvGRUCell(4, 4)
    h = cell(torch.randn(2, 4, 3, 3), torch.zeros(2, 4, 3, 3))
    assert h.shape == (2, 4, 3, 3) and torch.isfinite(h).all()
