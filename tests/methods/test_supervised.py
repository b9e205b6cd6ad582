"""Supervised reference row: reads labels, refuses unlabelled data, over-fits, pre-trains on the labelled pool."""

from __future__ import annotations

import pytest
import torch

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


def test_pretext_eval_counts_the_held_out_classes():
    """The held-out check's chance is the best constant guess: pretext_eval hands the harness each batch's labels
    per class, and leaves the method as it was."""
    method, batch = tiny_method("supervised", ("method.clip_len=2",), num_classes=3)
    batch["label"] = torch.tensor([2, 2, 2, 0, 2, 1, 2, 0])
    before = {k: v.clone() for k, v in method.state_dict().items()}
    method.eval()
    with torch.no_grad():
        out = method.pretext_eval(batch, Progress(0, 1))
    assert out["class_counts"].tolist() == [2, 1, 5]
    assert 0.0 <= float(out["accuracy"]) <= 1.0
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())


def test_a_held_out_set_of_one_class_cannot_show_learning(synth_data_home, tmp_path):
    """The tiny train split holds out one video: a constant guess is always right there, so the verdict is
    'not measurable' (learned None) rather than a pass or a fail against a uniform 1/3."""
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    cfg = load_config({}, ["method.name=supervised", "data.dataset=synthetic", "data.resolution=32",
                           "backbone.name=test_resnet", "method.clip_len=2", "optim.batch_size=4", "optim.steps=1",
                           "run.precision=fp32", "run.pretext_samples=8"])  # fmt: skip
    built = build_for_pretraining(cfg)
    assert len({r.label for r in built.heldout}) == 1
    threads = torch.get_num_threads()
    try:
        pretext = pretrain(RunDir(tmp_path / "run"), cfg, {}, progress_bar=False)["pretext"]
    finally:
        torch.set_num_threads(threads)
    assert pretext["chance"]["accuracy"] == 1.0 and pretext["final"]["chance_accuracy"] == 1.0
    assert pretext["learned"] is None and pretext["rule"].startswith("not measurable")
