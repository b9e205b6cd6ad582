"""TensorBoard for every run (read back with TensorBoard's own reader), resumed curves without duplicates, the
W&B offline path for real, and `vssl tb`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.config import load_config
from benchmark.rundir import RunDir

TINY = ["method.name=tce", "method.negatives=1", "method.embed_dim=16", "data.resolution=32",
        "backbone.name=resnet10t", "optim.batch_size=4", "optim.steps=6", "run.log_every=1",
        "run.checkpoint_every=3", "run.precision=fp32", "run.threads=1", "run.pretext_samples=8",
        "eval.frames=2", "eval.linear_epochs=3", "eval.batch_size=8"]  # fmt: skip


def read_events(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def pretrain(out: Path, *overrides: str, stop_at_step: int | None = None):
    from benchmark.train import pretrain as run_pretraining

    threads = torch.get_num_threads()
    try:
        return run_pretraining(RunDir(out), load_config({}, [*TINY, *overrides]), {}, progress_bar=False,
                               stop_at_step=stop_at_step)  # fmt: skip
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_pretraining_and_evaluation_write_event_files_tensorboard_reads(synth_data_home, tmp_path):
    from benchmark.evaluation import evaluate

    out = tmp_path / "run"
    pretrain(out)
    evaluate(RunDir(out), load_config({}, TINY), "linear", progress_bar=False)
    events = read_events(out)
    assert [s for s, _ in events["pretrain/loss"]] == [1, 2, 3, 4, 5, 6]
    assert "pretrain/lr" in events and "pretrain/smooth_same" in events
    assert "pretrain/pretext/final/value" in events and "pretrain/pretext/step0/value" in events
    top1 = events["linear/synthetic/split1/top1"]
    recorded = json.loads((out / "metrics.json").read_text())["linear/synthetic/split1"]["top1"]
    assert top1[0][0] == 6 and top1[0][1] == pytest.approx(recorded, rel=1e-6)  # TensorBoard stores float32


@pytest.mark.slow
def test_a_resumed_run_continues_its_curve_without_duplicated_steps(synth_data_home, tmp_path):
    out = tmp_path / "run"
    pretrain(out, stop_at_step=5)  # logged steps 1-5, the checkpoint is at step 3
    pretrain(out)  # resumes after step 3: TensorBoard drops what the first attempt wrote past it
    steps = [s for s, _ in read_events(out)["pretrain/loss"]]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_wandb_offline_logs_and_a_requeued_run_resumes_the_same_wandb_run(synth_data_home, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    out = tmp_path / "run"
    pretrain(out, "run.wandb=offline", stop_at_step=4)
    first = (out / "wandb_id").read_text().strip()
    pretrain(out, "run.wandb=offline")
    assert (out / "wandb_id").read_text().strip() == first
    runs = sorted((out / "wandb").glob(f"offline-run-*-{first}"))
    assert runs and all((r / f"run-{first}.wandb").exists() for r in runs)  # both attempts logged to that id


def test_wandb_online_without_wandb_installed_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails as if not installed
    assert main(["pretrain", "run.wandb=online"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install wandb" in err and "run.wandb=off" in err


def test_vssl_tb_names_cells_by_their_labels(tmp_path, capsys):
    sweep = tmp_path / "runs" / "demo"
    for cid in ("aaa", "bbb"):
        (sweep / "cells" / cid / "tb").mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"name": "demo", "cells": {
        "aaa": {"label": "method=tce seed=0"}, "bbb": {"label": "method=opn seed=0"}}}))  # fmt: skip
    assert main(["tb", str(sweep), "--print"]) == 0
    line = capsys.readouterr().out
    assert "--logdir_spec" in line and f"method=tce seed=0:{sweep / 'cells' / 'aaa' / 'tb'}" in line
    assert main(["tb", str(tmp_path / "nothing")]) == 2
    # two sweeps whose cells share labels: each name says its sweep
    other = tmp_path / "runs" / "demo-smoke"
    (other / "cells" / "aaa" / "tb").mkdir(parents=True)
    (other / "sweep.json").write_text(json.dumps({"name": "d", "cells": {"aaa": {"label": "method=tce seed=0"}}}))
    assert main(["tb", str(sweep), str(other), "--print"]) == 0
    line = capsys.readouterr().out
    assert "demo/method=tce seed=0:" in line and "demo-smoke/method=tce seed=0:" in line
    comma = tmp_path / "a,b"
    (comma / "tb").mkdir(parents=True)
    assert main(["tb", str(comma), "--print"]) == 2
    assert "path with a comma" in capsys.readouterr().err
    (other / "sweep.json").write_bytes(b"\xff\xfe")
    assert main(["tb", str(other), "--print"]) == 2
    assert "does not parse as a sweep manifest" in capsys.readouterr().err
