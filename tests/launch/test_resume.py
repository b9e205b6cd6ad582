"""Preemption-safe exact resume on CPU: an interrupted-and-resumed run ends exactly like an uninterrupted one."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from benchmark.config import build_experiment
from benchmark.rundir import RunDir
from benchmark.train import CheckpointRequest, pretrain

from .conftest import tiny_base

STEPS = 7


def _cfg():
    tree = tiny_base()
    tree["optim"]["steps"] = STEPS
    tree["run"]["checkpoint_every"] = 3
    tree["run"]["pretext_samples"] = 16  # set here: the module-scoped reference runs outside the autouse fixture
    return tree, build_experiment(tree)


def _weights(run: RunDir) -> dict:
    return torch.load(run.checkpoint_path(), map_location="cpu", weights_only=False)["model"]


def _assert_same_run(a: RunDir, b: RunDir) -> None:
    ma, mb = a.metrics()["pretrain"], b.metrics()["pretrain"]
    assert ma["final_loss"] == mb["final_loss"]
    assert ma["bad_samples"] == mb["bad_samples"]
    # the held-out pretext check: step 0 measured once, before training, and kept across the resume
    assert ma["pretext"] == mb["pretext"] and ma["pretext"]["step0"] and ma["pretext"]["final"]
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:  # model, heads and TCE's memory bank, bit for bit
        assert torch.equal(wa[k], wb[k]), k
    steps = lambda run: [(r["step"], r["loss"]) for r in run.scalars() if r.get("stage") == "pretrain"]  # noqa: E731
    assert steps(a) == steps(b)  # the curve is whole and has no duplicates after the resume


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_synth):
    """The uninterrupted run every interrupted one must reproduce."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSSL_DATA", str(tiny_synth.parent))
        tree, cfg = _cfg()
        run = RunDir(tmp_path_factory.mktemp("ref") / "run")
        pretrain(run, cfg, tree, progress_bar=False)
    return run


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [2, 5])  # before / after the first periodic checkpoint (step 3)
def test_interrupted_then_resumed_matches_uninterrupted(reference, tmp_path, synth_data_home, stop_at):
    tree, cfg = _cfg()
    run = RunDir(tmp_path / "run")
    assert pretrain(run, cfg, tree, progress_bar=False, stop_at_step=stop_at) == {"interrupted_at": stop_at}
    assert "pretrain" not in run.metrics()
    entry = pretrain(run, cfg, tree, progress_bar=False)
    assert entry["resumed_from"] == (3 if stop_at >= 3 else 0)
    _assert_same_run(reference, run)


@pytest.mark.slow
def test_signal_checkpoints_at_that_step_and_hands_over(reference, tmp_path, synth_data_home, monkeypatch):
    """SLURM's warning signal (USR2) mid-run: checkpoint at the step it arrived, then run the handler it displaced
    (submitit's requeue). Resuming from that checkpoint ends like the uninterrupted run."""
    tree, cfg = _cfg()
    run = RunDir(tmp_path / "run")
    calls = []

    class Requeued(Exception):
        pass

    def submitit_like_handler(signum, frame):  # stands in for submitit's checkpoint-and-requeue
        calls.append(torch.load(run.checkpoint_path(), weights_only=False)["step"])
        raise Requeued

    from benchmark.registry import METHODS

    cls = METHODS.get("tce")
    real_step = cls.training_step

    def signalling_step(self, batch, progress):
        if progress.step == 4:  # during the 5th step (not a checkpoint step)
            os.kill(os.getpid(), signal.SIGUSR2)
        return real_step(self, batch, progress)

    previous = signal.signal(signal.SIGUSR2, submitit_like_handler)
    monkeypatch.setattr(cls, "training_step", signalling_step)
    try:
        with pytest.raises(Requeued):
            pretrain(run, cfg, tree, progress_bar=False)
        assert signal.getsignal(signal.SIGUSR2) is submitit_like_handler  # pre-training put back what it displaced
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert calls == [5]  # the checkpoint on disk when the handler ran is the one of the signalled step
    monkeypatch.setattr(cls, "training_step", real_step)
    assert pretrain(run, cfg, tree, progress_bar=False)["resumed_from"] == 5
    _assert_same_run(reference, run)


def test_without_a_previous_handler_the_signal_only_checkpoints():
    request = CheckpointRequest()
    previous = signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    try:
        request.install()
        os.kill(os.getpid(), signal.SIGUSR2)
        assert request.requested and not request.stop  # checkpoint and go on (a local run)
        request.uninstall()
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR2, previous)
