"""Linear probe: separable features are learnt, shuffled labels are not, selection stays on train."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

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


def test_a_diverged_probe_is_an_error_not_a_chance_result():
    """eval.linear_lr=1e30 once scored a NaN probe's constant prediction: 33% on three classes, as a result."""
    import pytest

    from benchmark.errors import UserError

    x, y = blobs(20)
    for epochs in (2, 50):  # at 2 epochs the last step made the NaN
        with pytest.raises(UserError, match=rf"the linear probe diverged \(its training loss is (nan|inf) after "
                                            rf"{epochs} epochs\): lower eval.linear_lr \(now 1e\+30\)"):  # fmt: skip
            linear_probe(x, y, x, y, 4, LinearProbeConfig(epochs=epochs, lr=1e30))


def test_top1_breaks_ties_as_per_video_correct_does():
    """bf16 logits tie often; top-1 must be the mean of the per-video results (argmax), whatever topk picks."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(384, 12, generator=g) * 2).round().to(torch.bfloat16)  # many rows with tied maxima
    y = logits.argmax(1)  # every argmax is right; topk(1) picks another tied class in ~1 row of 6 here
    per_video = (logits.argmax(1) == y).int()
    assert topk_accuracy(logits, y)["top1"] == 100.0 * per_video.float().mean().item()


def test_topk_accuracy_caps_k_at_classes():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    y = torch.tensor([0, 1])
    assert topk_accuracy(logits, y, ks=(1, 2, 5)) == {"top1": 50.0, "top2": 100.0, "top5": 100.0}


def _selection_trap(n_per_class: int = 100):
    """Train and test splits on which held-out train videos and the test split prefer opposite weight decays.

    Train: x1 = s + n, x2 = n (s = +-1 the class, n a large nuisance shared by both classes): only x1 - x2
    separates the classes, which a lightly regularised probe finds (held-out ~100%) and a heavily regularised
    one, pulled towards the class-mean direction (x1), does not. Test: x1 = s, x2 = 2 s, where x1 - x2 = -s
    points the wrong way: the light probe scores ~0% and the heavy one ~100%."""
    g = torch.Generator().manual_seed(0)
    nuisance = 4 * torch.randn(n_per_class, generator=g)
    y = torch.arange(2).repeat_interleave(n_per_class)
    s = (2 * y - 1).float()
    n = nuisance.repeat(2)  # the same nuisance values in both classes
    x = torch.stack([s + n, n], 1)
    x_test = torch.stack([s, 2 * s], 1) + 0.05 * torch.randn(len(y), 2, generator=g)
    records = [VideoRecord(f"/v{i}.avi", int(c), f"c{int(c)}/v{i}", f"g{i:03d}") for i, c in enumerate(y)]
    return x, y, x_test, y.clone(), records


def test_weight_decay_selection_ignores_a_test_split_that_would_change_it(monkeypatch):
    """The linear protocol end to end (features stubbed): the test split would pick the other weight decay."""
    from benchmark.config import load_config
    from benchmark.evaluation import FrozenFeatures, linear
    from benchmark.evaluation.features import Outputs

    x, y, x_test, y_test, records = _selection_trap()
    light, heavy = 1e-4, 10.0
    probe = LinearProbeConfig(epochs=100)
    on_test = {
        wd: linear_probe(x, y, x_test, y_test, 2, replace(probe, weight_decay=wd))["top1"] for wd in (light, heavy)
    }
    assert on_test[heavy] >= 95.0 and on_test[light] <= 5.0  # a selection that looked at test would pick `heavy`
    feats = FrozenFeatures(
        Outputs(x, y, [r.video_id for r in records]),
        Outputs(x_test, y_test, [f"t{i}" for i in range(len(y_test))]),
        records,
        ["c0", "c1"],
        {},
    )
    monkeypatch.setattr(linear, "frozen_features", lambda *a, **k: feats)
    cfg = load_config(
        {}, [f"eval.linear_weight_decays=[{light},{heavy}]", "eval.heldout_fraction=0.25", "eval.linear_epochs=100"]
    )
    entry = linear.run_linear(None, cfg, progress_bar=False)
    assert (
        entry["heldout_top1"][repr(light)] > entry["heldout_top1"][repr(heavy)] + 10
    )  # held-out train prefers `light`
    assert entry["selected"] == {"linear_weight_decay": light}
    assert entry["top1"] == on_test[light]  # and the test split was then read once, with it
    assert set(entry["heldout_video_ids"]) <= {r.video_id for r in records}
    # the selection function itself only ever sees train rows: same choice, same held-out scores
    wd, scores, _ = select_weight_decay(x, y, records, 2, probe, [light, heavy], 0.25)
    assert wd == light and scores == entry["heldout_top1"]


def _records(n: int, per_group: int = 1) -> list[VideoRecord]:
    """n videos of two classes (alternating), ``per_group`` clips per group."""
    return [VideoRecord(f"/v{i}.avi", i % 2, f"c{i % 2}/v{i}", f"g{i // (2 * per_group):03d}") for i in range(n)]


def test_weight_decay_selection_fits_and_scores_disjoint_rows(monkeypatch):
    """Each grid value is fitted on the fit rows only and scored on the held-out rows only; together: every row."""
    from benchmark.evaluation import linear
    from benchmark.evaluation.selection import heldout_split

    records = _records(40, per_group=2)
    x = torch.arange(len(records), dtype=torch.float32)[:, None]  # a row's feature is its index
    y = torch.tensor([r.label for r in records])
    calls = []

    def fake_probe(train_x, train_y, test_x, test_y, num_classes, cfg):
        calls.append((train_x[:, 0].long().tolist(), test_x[:, 0].long().tolist(), cfg.weight_decay))
        assert torch.equal(train_y, y[train_x[:, 0].long()]) and torch.equal(test_y, y[test_x[:, 0].long()])
        return {"top1": 50.0}

    monkeypatch.setattr(linear, "linear_probe", fake_probe)
    _, _, held_ids = select_weight_decay(x, y, records, 2, LinearProbeConfig(), [1e-4, 1e-2], 0.25)
    assert [wd for *_, wd in calls] == [1e-4, 1e-2]
    held_rows = [i for i, r in enumerate(records) if r.video_id in set(held_ids)]
    assert held_ids == heldout_split(records, 0.25, 0).heldout_ids and held_rows
    for fit, scored, _ in calls:
        assert scored == held_rows
        assert set(fit).isdisjoint(scored) and sorted(fit + scored) == list(range(len(records)))


def test_weight_decay_selection_prefers_the_first_of_tied_grid_values(monkeypatch):
    """The docstring's tie rule: equal held-out top-1 selects the earliest grid value, not the last."""
    from benchmark.evaluation import linear

    records = _records(40)
    x, y = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([r.label for r in records])
    scores = iter([60.0, 80.0, 80.0, 70.0])
    monkeypatch.setattr(linear, "linear_probe", lambda *a, **k: {"top1": next(scores)})
    wd, held_scores, _ = select_weight_decay(x, y, records, 2, LinearProbeConfig(), [1e-1, 1e-2, 1e-4, 1e-3], 0.25)
    assert wd == 1e-2 and held_scores == {"0.1": 60.0, "0.01": 80.0, "0.0001": 80.0, "0.001": 70.0}
    monkeypatch.setattr(linear, "linear_probe", lambda *a, **k: {"top1": 50.0})
    assert select_weight_decay(x, y, records, 2, LinearProbeConfig(), [1e-2, 1e-4, 1e-3], 0.25)[0] == 1e-2


def test_sgd_probe_uses_momentum_and_a_cosine_schedule(monkeypatch):
    """The recipe: SGD(lr, momentum 0.9, weight decay), lr annealed by a cosine over the epochs to ~0."""
    import math

    from benchmark.evaluation.linear import fit_linear

    made = []

    class RecordingSGD(torch.optim.SGD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.lrs = []
            made.append(self)

        def step(self, closure=None):
            self.lrs.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "SGD", RecordingSGD)
    x, y = blobs(5)
    cfg = LinearProbeConfig(epochs=10, lr=0.2, weight_decay=3e-3)
    fit_linear(x, y, 4, cfg)
    (opt,) = made
    group = opt.param_groups[0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 3e-3 and not group["nesterov"]
    expected = [0.2 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(10)]
    assert opt.lrs == [pytest.approx(lr, abs=1e-9) for lr in expected]  # one step per epoch, 0.2 down the cosine
    assert group["lr"] == pytest.approx(0.0, abs=1e-9)  # annealed to 0 after the last epoch


def test_lbfgs_probe_minimises_cross_entropy_plus_half_wd_squared_weights():
    """L-BFGS solves min CE + wd/2 ||W||^2 (the bias unregularised): that objective's gradient vanishes there."""
    from benchmark.evaluation.linear import fit_linear

    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=g)
    y = torch.randint(0, 3, (60,), generator=g)  # random labels: not separable, so every minimiser is finite
    wd = 0.5
    layer = fit_linear(x, y, 3, LinearProbeConfig(epochs=200, weight_decay=wd, optimizer="lbfgs"))
    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    objective = F.cross_entropy(x @ w.T + b, y) + 0.5 * wd * w.pow(2).sum()
    grad_w, grad_b = torch.autograd.grad(objective, (w, b))
    assert w.norm() > 0.05  # not trivially zero: the bound below is a few percent of wd * ||W||
    assert grad_w.norm() < 1e-3 * w.norm() * wd and grad_b.norm() < 1e-4


def test_features_are_standardised_with_the_training_rows_statistics_only():
    """The test features must not leak into the normalisation: shifting them leaves the training rows as they
    were, and moves the test rows by exactly the shift over the training spread."""
    from benchmark.evaluation.linear import standardise

    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(50, 3, generator=g) * 4 + 2, torch.randn(20, 3, generator=g)
    a_train, a_test = standardise(train, test)
    b_train, b_test = standardise(train, test + 100.0)
    assert torch.allclose(a_train.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(a_train.std(0, unbiased=False), torch.ones(3), atol=1e-3)
    assert torch.equal(a_train, b_train)
    assert torch.allclose(b_test - a_test, 100.0 / (train.std(0, unbiased=False) + 1e-5), atol=1e-4)
