"""A real tiny sweep through the real sbatch (a local single-node SLURM with accounting, see conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.launch import slurm as launcher
from benchmark.launch.state import sweep_status
from benchmark.sweeps import load_sweep

from . import slow_job
from .conftest import tiny_base

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _sweep_file(tmp_path: Path, spec: dict) -> Path:
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(spec))
    return f


def _weights(cell_dir: Path) -> dict:
    return torch.load(cell_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)["model"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_good_failing_timed_out_and_ddp_cells(slurm, synth_data_home, tmp_path):
    """A good and a failing cell share one array; a cell that meets its time limit and a DDP cell (2 tasks)
    have arrays of their own (other resources).

    The slow cell's first attempt is still training when SLURM's warning comes: it checkpoints the step
    it is on, submitit requeues it, and the next attempt resumes there and ends with exactly the good
    cell's result (same config up to an informational field).
    """
    base = tiny_base()
    base["optim"]["steps"] = 8
    spec = {
        "name": "real",
        "base": base,
        "zip": [
            {
                "run.time_budget_s": [0, 1, 2, 3],  # informational only: tells the cells apart
                # a device the job's machine does not have: valid at load (a login node may lack the GPUs), fails in the job
                "run.device": ["cpu", "cpu", "cuda:7", "cpu"],
                "resources.tasks_per_node": [1, 1, 1, 2],
                # the DDP job's rendezvous port: a free one, not submitit's job-id-derived default, which a second
                # SLURM on this host (another test run, numbering its jobs from 1 too) would pick as well
                "resources.setup": [[], [], [], [f"export MASTER_PORT={free_port()}"]],
                "resources.timeout_min": [5, 2, 5, 5],  # only the slow cell meets its limit
            }
        ],
        # SLURM sends the warning (USR2) on its 30-s ticks once less than signal_delay_s + 30 s are left:
        # 30-60 s into the slow cell's 2-minute job. So a requeued attempt has 30 s before any warning.
        "resources": {"cpus_per_task": 1, "mem_gb": 1, "signal_delay_s": 60, "max_requeues": 10},
    }
    out = tmp_path / "out"
    sweep = load_sweep(spec, out_dir=out)
    good, slow, bad, ddp = sweep.cells
    # The slow cell's first attempt stalls in its 3rd step until the warning comes (a step between checkpoints).
    job = slow_job.StallFirstAttempt({slow.id}, stall_at=3)
    import cloudpickle

    cloudpickle.register_pickle_by_value(slow_job)
    try:
        jobs = launcher.submit(sweep, sweep.cells, "slurm", job=job).jobs
    finally:
        cloudpickle.unregister_pickle_by_value(slow_job)
    assert len(jobs) == 4
    by_cell = json.loads((out / "jobs.json").read_text())["cells"]
    ids = [by_cell[c.id]["job_id"] for c in sweep.cells]
    arrays = [i.split("_")[0] for i in ids]
    assert arrays[0] == arrays[2] and len(set(arrays)) == 3  # identical resources share one array

    states = launcher.wait(out, ids, poll_s=2, progress_bar=False, timeout_s=400)
    rows = {r.cell_id: r for r in sweep_status(out)}
    assert rows[good.id].state == "done" and rows[ddp.id].state == "done", [rows[c.id] for c in (good, ddp)]
    assert rows[bad.id].state == "failed"
    assert "run.device = 'cuda:7'" in rows[bad.id].error[-1], rows[bad.id].error
    assert rows[slow.id].state == "done", rows[slow.id].error
    assert rows[slow.id].requeues >= 1 and states[ids[1]].requeues >= 1  # our count and SLURM's accounting

    # the requeued cell resumed and ended exactly where the uninterrupted one did
    cells = out / "cells"
    m_good = json.loads((cells / good.id / "metrics.json").read_text())["pretrain"]
    m_slow = json.loads((cells / slow.id / "metrics.json").read_text())["pretrain"]
    assert m_slow["final_loss"] == m_good["final_loss"]
    w_good, w_slow = _weights(cells / good.id), _weights(cells / slow.id)
    assert all(torch.equal(w_good[k], w_slow[k]) for k in w_good)
    steps = [r["step"] for r in map(json.loads, (cells / slow.id / "scalars.jsonl").read_text().splitlines())]
    assert steps == list(range(1, 9))  # one line per step, none twice
    assert json.loads((cells / ddp.id / "metrics.json").read_text())["pretrain"]["world_size"] == 2

    # a new shell, later: status re-attaches to the jobs by id
    text = subprocess.run(
        [sys.executable, "-m", "benchmark", "status", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    ).stdout
    assert "4 cells: 3 done, 1 failed" in text and "run.device = 'cuda:7'" in text

    # relaunch: only the failed cell runs again; completed results are never touched
    before = {c.id: (cells / c.id / "metrics.json").stat().st_mtime_ns for c in (good, slow, ddp)}
    rc = main(
        [
            "sweep",
            str(_sweep_file(tmp_path, spec)),
            "--cluster",
            "slurm",
            "--out",
            str(out),
            "--wait",
            "--poll-s",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 1  # the NaN cell fails again
    record = json.loads((out / "jobs.json").read_text())
    assert record["cells"][bad.id]["submissions"] == 2
    assert all(record["cells"][c.id]["submissions"] == 1 for c in (good, slow, ddp))
    assert before == {c.id: (cells / c.id / "metrics.json").stat().st_mtime_ns for c in (good, slow, ddp)}


def test_100_cells_submit_as_one_array_in_seconds_and_are_never_submitted_twice(slurm, tmp_path, capsys):
    spec = {
        "name": "hundred",
        "base": {"method": {"name": "random_init"}, "run": {"device": "cpu"}},
        "grid": {"optim.lr": [0.001 * (i + 1) for i in range(50)]},
        "seeds": [0, 1],
        "stages": ["pretrain"],
        "resources": {"timeout_min": 5, "cpus_per_task": 1, "mem_gb": 1},
    }
    f, out = _sweep_file(tmp_path, spec), tmp_path / "out"
    t0 = time.perf_counter()
    assert main(["sweep", str(f), "--cluster", "slurm", "--out", str(out)]) == 0
    took = time.perf_counter() - t0
    record = json.loads((out / "jobs.json").read_text())
    arrays = {j["job_id"].split("_")[0] for j in record["cells"].values()}
    try:
        assert len(record["cells"]) == 100 and len(arrays) == 1
        assert took < 20, took  # one sbatch, not 100 (seconds even on a loaded 2-core machine)
        capsys.readouterr()
        # relaunch while they are queued or running: nothing is submitted twice
        assert main(["sweep", str(f), "--cluster", "slurm", "--out", str(out)]) == 0
        text = capsys.readouterr().out
        assert json.loads((out / "jobs.json").read_text())["cells"] == record["cells"]
        assert "nothing to submit" in text
        rows = sweep_status(out)
        assert len(rows) == 100 and all(r.job_id for r in rows)
        assert {r.state for r in rows} <= {"pending", "running", "done"}
    finally:
        subprocess.run(["scancel", *arrays], check=False)


def test_a_ddp_cell_evaluates_in_a_one_task_job_after_its_pre_training(slurm, synth_data_home, tmp_path, capsys):
    """A 2-task cell with an evaluation stage is two jobs: pre-training on both tasks, then a one-task evaluation
    job that SLURM starts once pre-training has ended, so the other task's CPUs (GPUs on a cluster) are free.
    The pre-training job meets its time limit and is requeued: the evaluation job waits for the requeued attempt.
    A 2-task cell whose pre-training fails ends failed, its traceback kept, not stuck pending."""
    base = tiny_base()
    base["optim"]["steps"] = 8
    base["run"]["stages"] = ["pretrain", "knn"]
    spec = {
        "name": "split",
        "base": base,
        "zip": [
            {
                "run.device": ["cpu", "cuda:7"],  # the second fails in its job, on both ranks
                "resources.setup": [[f"export MASTER_PORT={free_port()}"], [f"export MASTER_PORT={free_port()}"]],
                "resources.timeout_min": [2, 5],  # the first meets its limit (see the test above)
            }
        ],
        "resources": {"cpus_per_task": 1, "mem_gb": 2, "tasks_per_node": 2, "signal_delay_s": 60},
    }
    out = tmp_path / "out"
    sweep = load_sweep(spec, out_dir=out)
    good, bad = sweep.cells
    import cloudpickle

    cloudpickle.register_pickle_by_value(slow_job)
    try:
        jobs = launcher.submit(sweep, sweep.cells, "slurm", job=slow_job.StallFirstAttempt({good.id}, stall_at=3)).jobs
    finally:
        cloudpickle.unregister_pickle_by_value(slow_job)
    assert len(jobs) == 4
    record = json.loads((out / "jobs.json").read_text())["cells"][good.id]
    pre, evaluation = record["pretrain_job_id"], record["job_id"]
    launcher.wait(out, [str(j.job_id) for j in jobs], poll_s=2, progress_bar=False, timeout_s=400)
    acct = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-o", "JobID,NCPUS,Start,End", "-j", f"{pre.split('_')[0]},{evaluation}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    jobs = {row[0]: row[1:] for row in (line.split("|") for line in acct.splitlines())}
    assert jobs[pre][0] == "2" and jobs[evaluation][0] == "1", jobs  # two tasks of 1 CPU, then one
    assert jobs[evaluation][1] >= jobs[pre][2], jobs  # it started when the requeued pre-training had ended
    metrics = json.loads((out / "cells" / good.id / "metrics.json").read_text())
    assert metrics["pretrain"]["world_size"] == 2 and "top1" in metrics["knn/synthetic/split1"]
    rows = {r.cell_id: r for r in sweep_status(out)}
    assert rows[good.id].state == "done" and rows[good.id].requeues >= 1, rows[good.id]
    assert rows[bad.id].state == "failed" and rows[bad.id].job_part == "pre-training", rows[bad.id]
    assert "cuda:7" in " ".join(rows[bad.id].error), rows[bad.id].error  # the pre-training job's traceback, and
    assert rows[bad.id].error[-1].startswith("evaluation job: the cell's pre-training"), rows[bad.id].error

    # a relaunch submits the failed cell's two jobs again, and says so; the finished cell is left alone
    argv = ["sweep", str(_sweep_file(tmp_path, spec)), "--cluster", "slurm", "--out", str(out)]
    assert main([*argv, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert (
        "and 1 one-task evaluation job(s), 1 after its cell's pre-training job, 0 alone (pre-training done): 5 min, 1 node(s) x 1 task(s)"
        in text
    ), text
    assert main(argv) == 0
    text = capsys.readouterr().out
    again = json.loads((out / "jobs.json").read_text())["cells"]
    try:
        assert again[good.id] == json.loads(json.dumps(record)) and again[bad.id]["submissions"] == 2
        assert f"1 DDP cell(s) evaluate in one-task job(s) of their own [{again[bad.id]['job_id']}]" in text, text
    finally:
        subprocess.run(["scancel", again[bad.id]["pretrain_job_id"], again[bad.id]["job_id"]], check=False)
