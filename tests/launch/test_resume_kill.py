"""Exact resume with data workers, after SIGKILL at seeded points (hardening issue, part 1).

Real processes (`python -m benchmark pretrain` / `evaluate`) with one decoding worker are killed with SIGKILL by
test hooks -- right after a given step (VSSL_TEST_KILL_AT_STEP) or inside a checkpoint write, between the new
file and its rename (VSSL_TEST_KILL_IN_CHECKPOINT) -- then started again with the same command. The resumed
runs must end bit-identical to an uninterrupted one: every tensor of the final checkpoint (memory bank included)
and, for fine-tuning, the whole metrics entry. A garbage last.pt falls back to last.prev.pt with a warning
naming both files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.checkpoint import load

REPO = Path(__file__).resolve().parents[2]
PRETRAIN = [
    "method.name=tce", "method.negatives=1", "method.embed_dim=16", "data.dataset=synthetic-pool",
    "data.resolution=32", "data.num_workers=1", "backbone.name=resnet10t", "optim.batch_size=8", "optim.steps=9",
    "run.checkpoint_every=3", "run.log_every=1", "run.precision=fp32", "run.threads=1",
]  # fmt: skip
FINETUNE = ["eval.finetune_epochs=3", "eval.finetune_batch_size=2", "eval.frames=2", "eval.heldout_fraction=0"]

pytestmark = pytest.mark.slow


def vssl(args: list[str], data_home: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "VSSL_DATA": str(data_home), "OMP_NUM_THREADS": "1", **env}
    for key in ("VSSL_TEST_KILL_AT_STEP", "VSSL_TEST_KILL_IN_CHECKPOINT"):
        if key not in env:
            environ.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=environ, cwd=REPO, timeout=300
    )


def pretrain(out: Path, data_home: Path, **env: str) -> subprocess.CompletedProcess:
    """In a real process (to be killed): `vssl pretrain` with the test's config."""
    return vssl(["pretrain", *PRETRAIN, "--out", str(out), "--no-progress"], data_home, **env)


def in_process(work, *overrides: str):
    """Uninterrupted runs and the resumed ones run here (no interpreter start-up: keeps the file under a minute)."""
    from benchmark.config import load_config

    threads = torch.get_num_threads()
    try:
        return work(load_config({}, [*PRETRAIN, *overrides]))
    finally:
        torch.set_num_threads(threads)


def pretrain_here(out: Path) -> None:
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain as run_pretraining

    in_process(lambda cfg: run_pretraining(RunDir(out), cfg, {}, progress_bar=False))


def finetune_here(run: Path, *overrides: str) -> None:
    from benchmark.evaluation import evaluate
    from benchmark.rundir import RunDir

    in_process(lambda cfg: evaluate(RunDir(run), cfg, "finetune", progress_bar=False), *FINETUNE, *overrides)


def final_tensors(run: Path) -> dict[str, torch.Tensor]:
    state = load(run / "checkpoints" / "last.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()}, "optimizer": state["optimizer"]}


def assert_identical(a: Path, b: Path) -> None:
    ta, tb = final_tensors(a), final_tensors(b)
    assert sorted(ta) == sorted(tb)
    differ = [k for k in ta if k != "optimizer" and not torch.equal(ta[k], tb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"
    assert "model.bank" in ta  # the memory bank is among the compared tensors
    assert (
        json.loads((a / "metrics.json").read_text())["pretrain"]["final_loss"]
        == json.loads((b / "metrics.json").read_text())["pretrain"]["final_loss"]
    )


@pytest.fixture(scope="module")
def uninterrupted(tiny_synth, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "straight"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSSL_DATA", str(tiny_synth.parent))
        pretrain_here(out)
    return out


def test_kill_inside_a_checkpoint_write_then_resume_is_exact(uninterrupted, tiny_synth, synth_data_home, tmp_path):
    out = tmp_path / "run"
    killed = pretrain(out, tiny_synth.parent, VSSL_TEST_KILL_IN_CHECKPOINT="2")  # the write at step 6
    assert killed.returncode == -signal.SIGKILL
    assert load(out / "checkpoints" / "last.pt")["step"] == 3  # the new file never took last.pt's name
    pretrain_here(out)
    assert_identical(uninterrupted, out)
    steps = [json.loads(line)["step"] for line in (out / "scalars.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))  # one line per step, none twice


def test_kill_after_a_step_and_a_garbage_last_pt_fall_back_to_the_previous_checkpoint(
    uninterrupted, tiny_synth, synth_data_home, tmp_path, capsys
):
    out = tmp_path / "run"
    killed = pretrain(out, tiny_synth.parent, VSSL_TEST_KILL_AT_STEP="7")
    assert killed.returncode == -signal.SIGKILL
    last, prev = out / "checkpoints" / "last.pt", out / "checkpoints" / "last.prev.pt"
    assert load(last)["step"] == 6 and load(prev)["step"] == 3
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])  # a copy gone wrong
    pretrain_here(out)
    assert f"resuming from {prev}, because {last} does not load" in capsys.readouterr().out
    assert_identical(uninterrupted, out)


@pytest.mark.parametrize("first", ["same settings", "another lr", "other bookkeeping"])
def test_finetune_resumes_mid_stage_exactly(
    uninterrupted, tiny_synth, synth_data_home, tmp_path, capsys, monkeypatch, first
):
    """Killed after its first epoch, a fine-tune resumes to the uninterrupted entry, also when restarted with the
    run folder spelt another way and other bookkeeping (data workers). Killed in a fine-tune of other settings (a
    Ctrl-C'd `vssl evaluate ... eval.finetune_lr=0.3`), it starts again: its epochs are not taken as made with
    these."""
    straight, killed_run = tmp_path / "straight", tmp_path / "killed"
    shutil.copytree(uninterrupted, straight)
    shutil.copytree(uninterrupted, killed_run)
    finetune_here(straight)
    args = ["--protocol", "finetune", "--no-progress", *FINETUNE]  # the run's config: one data worker
    if first == "another lr":
        args.append("eval.finetune_lr=0.3")
    killed = vssl(["evaluate", str(killed_run), *args], tiny_synth.parent, VSSL_TEST_KILL_IN_CHECKPOINT="2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list((killed_run / "checkpoints").glob("finetune_*.pt"))  # epoch 1's state survived the kill
    capsys.readouterr()
    if first == "other bookkeeping":
        monkeypatch.chdir(tmp_path)
        finetune_here(Path("killed"), "eval.num_workers=0", "data.num_workers=0")
    else:
        finetune_here(killed_run)
    note = [line for line in capsys.readouterr().err.splitlines() if "interrupted fine-tune" in line]
    if first == "another lr":
        assert note == [
            "note: finetune/synthetic/split1: the interrupted fine-tune ran with other settings (eval.finetune_lr "
            "0.3 -> 0.01); starting it again from epoch 1"
        ]
    else:
        assert note == []
    key = "finetune/synthetic/split1"
    a, b = (json.loads((r / "metrics.json").read_text())[key] for r in (straight, killed_run))
    volatile = {"wall_s", "epoch_wall_s", "checkpoint"}
    assert {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}
    assert not list((killed_run / "checkpoints").glob("finetune_*"))  # the stage's resume point is removed
