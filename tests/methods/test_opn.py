"""OPN: 12 order classes, pairwise head wiring, over-fitting."""

from __future__ import annotations

import itertools

import pytest
import torch

from benchmark.data.samplers import OPN_ORDERS
from methods.opn import OPN, PAIRS
from tests.methods.overfit import fell_clearly, one_thread, overfit_losses, tiny_method


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


def test_pairs_cover_all_six_frame_pairs():
    assert sorted(PAIRS) == sorted(itertools.combinations(range(4), 2))


def test_head_concatenates_each_pair_in_order():
    method, batch = tiny_method("opn")
    method.eval()
    with torch.no_grad():
        features = method.backbone(batch["frames"])
        explicit = torch.stack(
            [method.pair_fc(torch.cat([features[:, i], features[:, j]], dim=1)) for i, j in PAIRS], 1
        )
        pairs = features.index_select(1, method.pair_index.flatten()).reshape(len(features), 6, -1)
        assert torch.allclose(method.pair_fc(pairs), explicit, atol=1e-6)
    assert method.classifier[-1].out_features == 12
    assert OPN.sampler_options(method.cfg, method.info)["channel_split"] is True


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    method, batch = tiny_method("opn", ("method.motion_candidates=1", "method.dropout=0.0"))
    losses = overfit_losses(method, batch, steps=12)
    assert fell_clearly(losses, 0.2), losses
