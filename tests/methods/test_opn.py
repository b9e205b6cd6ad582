"""OPN: 12 order classes, pairwise head wiring, over-fitting."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from benchmark.data.samplers import OPN_ORDERS
from benchmark.heads import PairwiseOrderHead
from methods.opn import OPN
from tests.methods.overfit import fell_clearly, one_thread, overfit_losses, record_head, tiny_method


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def test_labels_map_one_to_one_onto_orders_up_to_reversal():
    # every one of the 24 presentations falls into exactly one class, and each class holds an order and its reverse
    owner = {}
    for perm in itertools.permutations(range(4)):
        hits = [k for k, o in enumerate(OPN_ORDERS) if perm in (o, o[::-1])]
        assert len(hits) == 1
        owner[perm] = hits[0]
    assert sorted(set(owner.values())) == list(range(12))
    assert all(owner[p] == owner[p[::-1]] for p in owner)
    assert sum(1 for p in owner if owner[p] == 0) == 2


def test_training_step_feeds_frame_features_in_order_to_a_12_way_pairwise_head():
    method, batch = tiny_method("opn")
    assert isinstance(method.head, PairwiseOrderHead) and method.head.classifier[-1].out_features == 12
    seen = record_head(method)
    method.eval()
    with torch.no_grad():
        out = method.training_step(batch, None)
        per_frame = torch.stack([method.backbone(batch["frames"][:, t]) for t in range(4)], 1)
    assert torch.allclose(seen["features"], per_frame, atol=1e-5)  # [B, 4, F], frame t at position t
    assert torch.allclose(out.loss, F.cross_entropy(seen["logits"].float(), batch["order_label"]))
    assert OPN.sampler_options(method.cfg, method.info)["channel_split"] is True


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    method, batch = tiny_method("opn", ("method.motion_candidates=1", "method.dropout=0.0"))
    losses = overfit_losses(method, batch, steps=12)
    assert fell_clearly(losses, 0.2), losses
