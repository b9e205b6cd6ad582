"""VCOP: labels map one-to-one onto clip orders, shuffled clips really are in the labelled
order, the pairwise head has the paper's shape, and a tiny batch is over-fitted."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import methods.vcop as vcop
from benchmark.device import channels_last_frames
from benchmark.heads import PairwiseOrderHead
from methods.vcop import clip_orders, shuffle_clips
from tests.methods.overfit import record_head, tiny_method
from tests.methods.test_dpc import fit_tiny_batch


@pytest.mark.parametrize("n", [2, 3, 4])
def test_labels_map_one_to_one_onto_permutations(n):
    orders = clip_orders(n)
    as_tuples = [tuple(row) for row in orders.tolist()]
    assert len(as_tuples) == math.factorial(n) == len(set(as_tuples))
    assert set(as_tuples) == set(itertools.permutations(range(n)))


def coded_clips(batch: int, n: int) -> torch.Tensor:
    """[B, n, T, C, H, W] where every pixel of clip i of video b holds 10*b + i."""
    codes = 10 * torch.arange(batch)[:, None] + torch.arange(n)[None, :]
    return codes[:, :, None, None, None, None].float().expand(batch, n, 2, 3, 4, 4).contiguous()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_shuffled_clips_are_in_the_labelled_order(layout):
    clips = coded_clips(40, 3)
    if layout == "channels_last":
        clips = channels_last_frames(clips)
    orders = clip_orders(3)
    shuffled, labels = shuffle_clips(clips, orders, torch.Generator().manual_seed(0))
    assert shuffled.shape == clips.shape
    for b, label in enumerate(labels.tolist()):
        shown = [int(shuffled[b, i].unique().item()) for i in range(3)]  # each shown clip is one whole original clip
        assert [s // 10 for s in shown] == [b] * 3  # no clip moved to another video
        assert tuple(s % 10 for s in shown) == tuple(orders[label].tolist())
    assert len(set(labels.tolist())) == 6  # 40 draws hit every order


def test_head_shape_follows_the_paper():
    head = PairwiseOrderHead(num_features=16, num_items=3, pair_dim=512, num_classes=6, dropout=0.5)
    assert head.pair[0].in_features == 32 and head.pair[0].out_features == 512
    assert head.classifier[1].in_features == 3 * 512 and head.classifier[1].out_features == 6
    assert head(torch.randn(5, 3, 16)).shape == (5, 6)


def test_training_step_classifies_the_shuffled_clips_against_their_order_labels(monkeypatch):
    method, batch = tiny_method("vcop", ("method.clip_len=4", "method.gap=2"), backbone="r3d_18")
    drawn = {}

    def recording_shuffle(clips, orders, generator=None):
        drawn["clips"], drawn["labels"] = shuffle_clips(clips, orders, generator)  # meaning: tested above
        return drawn["clips"], drawn["labels"]

    monkeypatch.setattr(vcop, "shuffle_clips", recording_shuffle)
    seen = record_head(method)
    method.eval()
    with torch.no_grad():
        out = method.training_step(batch, None)
        per_clip = torch.stack([method.backbone(drawn["clips"][:, i]) for i in range(3)], 1)
    assert torch.allclose(seen["features"], per_clip, atol=1e-4)  # the clips in presentation order
    assert torch.allclose(out.loss, F.cross_entropy(seen["logits"].float(), drawn["labels"]))


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    losses = fit_tiny_batch("vcop", ["method.clip_len=4", "method.gap=2"], steps=4)
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
