"""Linear probe: separable features are learnt, shuffled labels are not, selection stays on train."""

from __future__ import annotations

import torch

from benchmark.data.index import VideoRecord
from benchmark.evaluation.linear import LinearProbeConfig, linear_probe, select_weight_decay, topk_accuracy


def blobs(n_per_class: int, num_classes: int = 4, dim: int = 32, seed: int = 0, spread: float = 0.3):
    """Gaussian blobs around well separated class means (linearly separable with overwhelming probability)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(123)) * 3
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = means[y] + spread * torch.randn(len(y), dim, generator=g)
    return x, y


def test_separable_features_reach_100():
    x, y = blobs(50)
    xt, yt = blobs(50, seed=1)
    for optimizer in ("sgd", "lbfgs"):
        m = linear_probe(x, y, xt, yt, 4, LinearProbeConfig(epochs=50, optimizer=optimizer))
        assert m["top1"] >= 99.0 and m["train_top1"] == 100.0, optimizer
        assert len(m["per_video_correct"]) == len(yt) and 100.0 * sum(m["per_video_correct"]) / len(yt) == m["top1"]


def test_shuffled_labels_give_chance():
    x, y = blobs(400)
    xt, yt = blobs(400, seed=1)
    g = torch.Generator().manual_seed(0)
    shuffled = y[torch.randperm(len(y), generator=g)]
    # Shuffled labels carry no information about the features: each test point's prediction is right
    # with probability 1/4. (Tight blobs would make predictions constant per blob, so the features are
    # noise here, fresh for the test points; the separable test above uses the same probe.)
    noise, noise_test = torch.randn(x.shape, generator=g), torch.randn(xt.shape, generator=g)
    m = linear_probe(noise, shuffled, noise_test, yt, 4, LinearProbeConfig(epochs=100))
    assert 20.0 <= m["top1"] <= 30.0  # chance is 25%; 1600 test points: std ~1.1 points
    assert m["train_top1"] > m["top1"]  # it did fit something: the training labels, by heart


def test_topk_accuracy_caps_k_at_classes():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    y = torch.tensor([0, 1])
    assert topk_accuracy(logits, y, ks=(1, 2, 5)) == {"top1": 50.0, "top2": 100.0, "top5": 100.0}


def test_weight_decay_selection_uses_only_train_rows():
    x, y = blobs(20)
    records = [VideoRecord(f"/v{i}.avi", int(c), f"c{int(c)}/v{i}", f"g{i % 5:02d}") for i, c in enumerate(y)]
    grid = [1e-4, 10.0]
    wd, scores, held = select_weight_decay(x, y, records, 4, LinearProbeConfig(epochs=30), grid, 0.2)
    assert set(scores) == {repr(v) for v in grid}
    assert wd == 1e-4  # an absurd weight decay cannot win on separable data
    assert held and set(held) <= {r.video_id for r in records}
