"""Supervised reference row: reads labels, refuses unlabelled data, over-fits, pre-trains on the labelled pool."""

from __future__ import annotations

import pytest

from benchmark.config import load_config
from benchmark.errors import UserError
from benchmark.method import Pretraining, Progress
from benchmark.registry import METHODS
from benchmark.train import build_for_pretraining
from tests.methods.overfit import fell_clearly, one_thread, overfit_losses, tiny_method


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def test_is_a_labelled_row_for_either_backbone():
    cls = METHODS.get("supervised")
    assert cls.needs_labels and cls.pretraining is Pretraining.WEIGHTS and cls.backbone_kind == "either"


def test_without_labels_is_a_user_error():
    with pytest.raises(UserError, match="labelled pre-training set"):
        tiny_method("supervised", num_classes=0)


def test_2d_averages_frames_and_3d_classifies_the_clip():
    for backbone in ("resnet10t", "r3d_18"):
        method, batch = tiny_method("supervised", ("method.clip_len=2",), backbone=backbone, num_classes=3)
        assert method.classifier[-1].out_features == 3
        out = method.training_step(batch, Progress(0, 1))
        assert 0.0 <= out.scalars["accuracy"] <= 1.0


def test_pretraining_reads_the_pool_labels(synth_data_home, tiny_synth_config):
    cfg = load_config({"method": {"name": "supervised"}, "data": {"dataset": "synthetic-pool", "resolution": 32}})
    built = build_for_pretraining(cfg)
    assert built.info.num_classes == tiny_synth_config.classes
    assert {r.label for r in built.records} == set(range(tiny_synth_config.classes))


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    method, batch = tiny_method("supervised", ("method.clip_len=2",), num_classes=3)
    assert set(batch["label"].tolist()) == {0, 1, 2}
    losses = overfit_losses(method, batch, steps=8)
    assert fell_clearly(losses, 0.2), losses
