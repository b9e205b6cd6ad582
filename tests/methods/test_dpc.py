"""DPC-lite: positives sit where the mask says, the loss equals a direct computation, the
rollout feeds each prediction back, and a tiny batch is over-fitted.

``fit_tiny_batch`` is shared with the VCOP and 3D RotNet tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.config import load_config
from benchmark.data.loader import collate
from benchmark.data.samplers import build_sampler
from benchmark.method import DataInfo, Progress
from benchmark.registry import METHODS
from benchmark.train import build_method
from methods.dpc import (
    DPC,
    OTHER_VIDEO,
    POSITIVE,
    SPATIAL,
    SPATIOTEMPORAL,
    TEMPORAL,
    DPCConfig,
    dense_contrastive_loss,
    dense_scores,
    negative_kinds,
)
from tests.methods.test_contract import FakeVideo


def fit_tiny_batch(
    name: str,
    overrides: list[str],
    steps: int,
    batch_size: int = 4,
    resolution: int = 32,
    backbone: tuple[str, ...] = ("backbone.name=resnet10t", "backbone.inflate=true"),
) -> list[float]:
    """Train ``name`` on one fixed batch (Adam 1e-3) and return the loss of every step.

    The step's own randomness (shuffles, rotations) is re-seeded every step, so the batch and its labels are fixed.
    One thread: on a shared 2-core machine, two spinning threads cost several times the CPU of one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(name, overrides, steps, batch_size, resolution, backbone)
    finally:
        torch.set_num_threads(threads)


def _fit(
    name: str, overrides: list[str], steps: int, batch_size: int, resolution: int, backbone: tuple[str, ...]
) -> list[float]:
    cfg = load_config(None, [f"method.name={name}", *backbone, f"data.resolution={resolution}", *overrides])
    method_cls = METHODS.get(name)
    method = build_method(cfg, num_videos=16)
    method.train()
    sampler = build_sampler(
        method_cls.sampler, resolution, train=True, **method_cls.sampler_options(cfg.method, method.info)
    )
    batch = collate([sampler(FakeVideo(i), np.random.default_rng(i)) for i in range(batch_size)])
    batch.pop("bad")
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    losses = []
    for step in range(steps):
        torch.manual_seed(0)
        out = method.training_step(batch, Progress(step=step, total_steps=steps))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert all(math.isfinite(x) for x in losses), losses
    return losses


def one_hot_identity_maps(b: int, k: int, h: int, w: int) -> torch.Tensor:
    """[B, K, F, h, w] with F = B*K*h*w: the vector at (video, step, y, x) is the one-hot of that tuple's number."""
    f = b * k * h * w
    maps = torch.zeros(b, k, f, h, w)
    for n, (vi, si, y, x) in enumerate(np.ndindex(b, k, h, w)):
        maps[vi, si, n, y, x] = 1.0
    return maps


def test_positives_sit_where_the_mask_says_and_negatives_are_labelled_by_kind():
    b, k, h, w = 3, 2, 2, 2
    maps = one_hot_identity_maps(b, k, h, w)
    scores = dense_scores(maps, maps)  # 1 exactly where prediction and target are the same (video, step, position)
    kinds = negative_kinds(b, k, h * w)
    assert torch.equal(kinds == POSITIVE, scores == 1)
    assert torch.equal(kinds == POSITIVE, torch.eye(len(kinds), dtype=torch.bool))  # the loss's targets: the diagonal
    # every pair's kind, from the (video, step, y, x) tuples directly
    tuples = list(np.ndindex(b, k, h, w))
    for i, (vi, si, yi, xi) in enumerate(tuples):
        for j, (vj, sj, yj, xj) in enumerate(tuples):
            same_pos = (yi, xi) == (yj, xj)
            want = (
                OTHER_VIDEO
                if vi != vj
                else POSITIVE
                if si == sj and same_pos
                else SPATIAL
                if si == sj
                else TEMPORAL
                if same_pos
                else SPATIOTEMPORAL
            )
            assert kinds[i, j] == want, (tuples[i], tuples[j])
    m = b * k * h * w  # all three negative kinds are present
    assert (kinds == OTHER_VIDEO).sum() == m * (b - 1) * k * h * w
    assert (kinds == SPATIAL).sum() == m * (h * w - 1)
    assert (kinds == TEMPORAL).sum() == m * (k - 1)
    assert (kinds == SPATIOTEMPORAL).sum() == m * (k - 1) * (h * w - 1)


def test_loss_equals_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    b, k, f, h, w = 2, 2, 3, 2, 1
    pred, target = torch.randn(b, k, f, h, w, generator=g), torch.randn(b, k, f, h, w, generator=g)
    loss, _ = dense_contrastive_loss(pred, target)
    terms = []
    for vi, si, y, x in np.ndindex(b, k, h, w):
        p = pred[vi, si, :, y, x]
        logits = {(vj, sj, yj, xj): float(p @ target[vj, sj, :, yj, xj]) for vj, sj, yj, xj in np.ndindex(b, k, h, w)}
        log_z = math.log(sum(math.exp(v) for v in logits.values()))
        terms.append(log_z - logits[(vi, si, y, x)])
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_loss_with_targets_from_other_ranks_uses_the_offset_positive():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 2, 4, 1, 2, generator=g)
    others = torch.randn(3, 2, 4, 1, 2, generator=g)
    mine = pred + 0.01 * torch.randn(pred.shape, generator=g)
    # this rank's videos come after one other-rank video: rows 1*K*h*w onwards
    loss_offset, scores = dense_contrastive_loss(pred, torch.cat([others[:1], mine, others[1:]]), positive_offset=4)
    assert scores.shape == (8, 20)
    direct = torch.nn.functional.cross_entropy(scores, torch.arange(8) + 4)
    assert loss_offset.item() == pytest.approx(direct.item(), rel=1e-6)


class MapsOnly(nn.Module):
    """A stand-in backbone: only what DPC reads (map_features)."""

    map_features = 4
    num_features = 4


def test_rollout_feeds_each_prediction_back_through_the_gru():
    torch.manual_seed(0)
    dpc = DPC(DPCConfig(num_blocks=4, pred_steps=2), MapsOnly(), DataInfo(num_videos=1))
    context = torch.randn(2, 2, 4, 3, 3)
    preds = dpc.predict(context, steps=2)
    h = torch.zeros(2, 4, 3, 3)
    for t in range(2):
        h = dpc.aggregator(torch.relu(context[:, t]), h)
    first = dpc.predictor(h)
    second = dpc.predictor(dpc.aggregator(torch.relu(first), h))
    assert preds.shape == (2, 2, 4, 3, 3)
    assert torch.allclose(preds[:, 0], first, atol=1e-6) and torch.allclose(preds[:, 1], second, atol=1e-6)


def test_bad_prediction_steps_are_a_user_error():
    from benchmark.errors import UserError

    with pytest.raises(UserError, match="pred_steps"):
        DPC(DPCConfig(num_blocks=3, pred_steps=3), MapsOnly(), DataInfo(num_videos=1))


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    # r3d_18 at 32 px: 2x2 maps, so every negative kind is in the loss (inflated resnet10t would give 1x1)
    losses = fit_tiny_batch(
        "dpc",
        ["method.num_blocks=4", "method.pred_steps=2", "method.block_len=2"],
        steps=8,
        backbone=("backbone.name=r3d_18",),
    )
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses
