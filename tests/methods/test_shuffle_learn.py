"""Shuffle and Learn: tuples and labels through the method's own sampler options, head wiring, over-fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.config import load_config
from benchmark.data.samplers import build_sampler
from benchmark.method import DataInfo
from methods.shuffle_learn import ShuffleLearn
from tests.data.test_samplers import CountingVideo
from tests.methods.overfit import fell_clearly, one_thread, overfit_losses, record_head, tiny_method


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def method_sampler(overrides=()):
    cfg = load_config(None, ["method.name=shuffle_learn", *overrides]).method
    return build_sampler(
        ShuffleLearn.sampler, 16, train=False, **ShuffleLearn.sampler_options(cfg, DataInfo(num_videos=1))
    )


def test_defaults_follow_the_paper():
    cfg = load_config(None, ["method.name=shuffle_learn"]).method
    assert cfg.positive_fraction == 0.25 and ShuffleLearn.backbone_kind == "2d"


def test_negative_tuples_are_out_of_order_and_positives_in_order():
    sampler = method_sampler(["method.positive_fraction=0.5", "method.motion_candidates=2"])
    assert sampler.positive_fraction == 0.5 and sampler.motion_candidates == 2
    video = CountingVideo(num_frames=30)
    for seed in range(60):
        s = sampler(video, np.random.default_rng(seed))
        i, j, k = s["frame_indices"].tolist()
        in_order = i < j < k or i > j > k
        assert in_order == bool(s["order_label"]), (i, j, k)


def test_training_step_classifies_the_three_frame_features_concatenated_in_tuple_order():
    method, batch = tiny_method("shuffle_learn")
    f = method.backbone.num_features
    assert method.head[0].in_features == 3 * f  # one shared tower per frame: no per-frame copies of the backbone
    seen = record_head(method)
    method.eval()
    with torch.no_grad():
        out = method.training_step(batch, None)
        towers = [method.backbone(batch["frames"][:, t]) for t in range(3)]
    assert torch.allclose(seen["features"], torch.cat(towers, 1), atol=1e-5)  # frame t at features [tF, (t+1)F)
    assert torch.allclose(out.loss, F.cross_entropy(seen["logits"].float(), batch["order_label"]))


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    method, batch = tiny_method("shuffle_learn", ("method.motion_candidates=1", "method.positive_fraction=0.5"))
    losses = overfit_losses(method, batch, steps=10)
    assert fell_clearly(losses, 0.2), losses
