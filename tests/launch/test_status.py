"""vssl status: states from run directories + job states, error tails, requeue counts, no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark.commands.status import print_status
from benchmark.launch.slurm import JobState, _expand
from benchmark.launch.state import sweep_status

REQUIRED = ["pretrain", "linear/synthetic/split1"]


def make_sweep(root: Path, cells: dict[str, dict], jobs: dict[str, str] | None = None) -> Path:
    """A sweep folder by hand: cells maps id -> {metrics, env, error, scalars_step, started}."""
    manifest = {"name": "s", "cells": {cid: {"label": f"label-{cid}", "required": REQUIRED} for cid in cells}}
    (root / "cells").mkdir(parents=True)
    (root / "sweep.json").write_text(json.dumps(manifest))
    for cid, c in cells.items():
        d = root / "cells" / cid
        d.mkdir()
        if c.get("started", True):
            (d / "config.yaml").write_text("run: {stages: [pretrain, linear]}\n")
        if "metrics" in c:
            (d / "metrics.json").write_text(c["metrics"] if isinstance(c["metrics"], str) else json.dumps(c["metrics"]))
        if "env" in c:
            (d / "env.json").write_text(json.dumps(c["env"]))
        if "error" in c:
            (d / "error.txt").write_text(c["error"])
        if "step" in c:
            (d / "scalars.jsonl").write_text(json.dumps({"stage": "pretrain", "step": c["step"]}) + '\n{"stage": "pre')
    if jobs:
        folder = str(root / "slurm" / "x" / "%j")
        (root / "jobs.json").write_text(
            json.dumps(
                {
                    "cells": {cid: {"job_id": j, "folder": folder, "cluster": "slurm"} for cid, j in jobs.items()},
                    "submissions": [],
                }
            )
        )
    return root


def test_states_errors_and_requeues(tmp_path, capsys):
    done = {"pretrain": {}, "linear/synthetic/split1": {"top1": 50.0}}
    root = make_sweep(
        tmp_path / "s",
        {
            "a_done": {"metrics": done, "env": {"requeues": 2}},
            "b_running": {"metrics": {"pretrain": {}}, "step": 40},
            "c_pending": {},
            "d_failed": {
                "error": "Traceback (most recent call last):\n  File x\n\nRuntimeError: loss is nan at step 2\n"
            },
            "e_timeout": {"step": 7},
            "f_interrupted": {"step": 12},
            "g_missing": {"started": False},
            "h_corrupt": {"metrics": "{not json"},
            "i_completed_but_missing": {"metrics": {"pretrain": {}}},
            "j_cancelled": {"step": 9},
        },
        jobs={
            "a_done": "5_0",
            "b_running": "5_1",
            "c_pending": "5_2",
            "d_failed": "5_3",
            "e_timeout": "5_4",
            "i_completed_but_missing": "5_5",
            "j_cancelled": "5_6",
        },
    )
    log = root / "slurm" / "x" / "5_4" / "5_4_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("loading\nslurmstepd: error: *** JOB 9 CANCELLED DUE TO TIME LIMIT ***\n")
    log = root / "slurm" / "x" / "5_6" / "5_6_0_log.err"
    log.parent.mkdir(parents=True)  # what scancel leaves: the kill's side effects, which are not the cause
    log.write_text("RuntimeError: DataLoader worker (pid 77) is killed by signal: Terminated.\n")
    states = {
        "5_0": JobState("COMPLETED", 1),
        "5_1": JobState("RUNNING"),
        "5_2": JobState("REQUEUED", 3),
        "5_3": JobState("FAILED", 0, "1:0"),
        "5_4": JobState("TIMEOUT", 0, "0:0"),
        "5_5": JobState("COMPLETED"),
        "5_6": JobState("CANCELLED", 0, "0:15"),
    }
    rows = {r.cell_id: r for r in sweep_status(root, query=lambda ids: {j: states[j] for j in ids})}
    got = {cid: r.state for cid, r in rows.items()}
    assert got == {
        "a_done": "done",
        "b_running": "running",
        "c_pending": "pending",
        "d_failed": "failed",
        "e_timeout": "failed",
        "f_interrupted": "interrupted",
        "g_missing": "missing",
        "h_corrupt": "failed",
        "i_completed_but_missing": "failed",
        "j_cancelled": "failed",
    }
    assert rows["a_done"].requeues == 2 and rows["c_pending"].requeues == 3  # env.json's count or sacct's, the larger
    assert rows["b_running"].step == 40  # a line cut by a kill is skipped
    assert rows["d_failed"].error[-1] == "RuntimeError: loss is nan at step 2"
    assert rows["e_timeout"].error[0] == "SLURM: TIMEOUT (exit 0:0)" and "TIME LIMIT" in rows["e_timeout"].error[-1]
    assert "linear/synthetic/split1" in rows["i_completed_but_missing"].error[0]
    cancelled = rows["j_cancelled"].error
    assert len(cancelled) == 1 and cancelled[0].startswith("SLURM: CANCELLED (exit 0:15): cancelled by scancel")
    print_status(list(rows.values()))
    out = capsys.readouterr().out
    assert "RuntimeError: loss is nan at step 2" in out
    assert "10 cells: 1 done, 1 running, 1 pending, 5 failed, 1 interrupted, 1 missing" in out


def test_array_ranges_expand():
    assert _expand("12_[3-5,8%2]") == ["12_3", "12_4", "12_5", "12_8"]
    assert _expand("12_[7]") == ["12_7"]
    assert _expand("12_4") == ["12_4"] and _expand("13") == ["13"]


def test_cli_does_not_import_torch(tmp_path):
    root = make_sweep(tmp_path / "s", {"a": {"metrics": {"pretrain": {}, "linear/synthetic/split1": {}}}})
    code = (
        "import sys; from benchmark.cli import main; rc = main(['status', sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "1 cells: 1 done" in out.stdout


def test_not_a_sweep_folder_is_one_line(tmp_path, capsys):
    from benchmark.cli import main

    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a sweep folder" in err and len(err.splitlines()) == 1
    assert main(["status", str(tmp_path / "nope")]) == 2  # a typo in the name: said so, not "not a sweep folder"
    assert capsys.readouterr().err.strip() == f"vssl status: error: {tmp_path / 'nope'} does not exist: pass a " \
        "sweep folder (runs/<name>, or the sweep's `out:`)"  # fmt: skip


def fake_squeue(tmp_path, monkeypatch, stderr: str, code: int) -> None:
    """An squeue on PATH that prints ``stderr`` and exits ``code`` (sacct prints nothing: accounting off)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {code}\n")
    (bin_dir / "sacct").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("squeue", "sacct"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_jobs_the_controller_no_longer_knows_are_not_live(tmp_path, monkeypatch):
    from benchmark.launch.slurm import query_states

    fake_squeue(tmp_path, monkeypatch, "slurm_load_jobs error: Invalid job id specified", 1)
    assert query_states(["12_3", "13"]) == {}  # gone: their cells may be relaunched


def test_an_unreachable_controller_is_never_read_as_no_jobs(tmp_path, monkeypatch, capsys):
    from benchmark.errors import UserError
    from benchmark.launch.slurm import SlurmUnreadable, plan, query_states

    fake_squeue(tmp_path, monkeypatch, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)", 1)
    with pytest.raises(SlurmUnreadable, match="Unable to contact slurm controller"):
        query_states(["12_3"])
    root = make_sweep(tmp_path / "s", {"a_queued": {"started": False}}, jobs={"a_queued": "12_3"})
    # vssl status still reads the run directories, and says the job states are unknown
    rows = sweep_status(root)
    assert [r.state for r in rows] == ["missing"]
    assert "SLURM job states unknown" in capsys.readouterr().err
    # a relaunch refuses to submit: the cell's job may still be queued
    sweep = SimpleNamespace(cells=[SimpleNamespace(id="a_queued", label="", config=None)])
    with pytest.raises(UserError, match="cannot tell which cells are still queued or running"):
        plan(sweep, root)


def test_a_finished_cell_with_an_unreadable_config_is_failed_not_done(tmp_path):
    done = {"pretrain": {}, "linear/synthetic/split1": {"top1": 50.0}}
    root = make_sweep(
        tmp_path / "s", {"a_empty": {"metrics": done}, "b_binary": {"metrics": done}, "c_ok": {"metrics": done}}
    )
    (root / "cells" / "a_empty" / "config.yaml").write_text("")
    (root / "cells" / "b_binary" / "config.yaml").write_bytes(b"\xff\xfe")
    rows = {r.cell_id: r for r in sweep_status(root)}
    assert [rows[c].state for c in ("a_empty", "b_binary", "c_ok")] == ["corrupt", "corrupt", "done"]
    from benchmark.launch.state import needs_run

    assert not needs_run(rows["a_empty"])  # a relaunch would skip every stage and never repair it
    assert "is empty" in rows["a_empty"].error[0] and "is not UTF-8" in rows["b_binary"].error[0]


def test_a_relaunch_reruns_exactly_the_failed_interrupted_and_missing_cells(tmp_path):
    """Failed, interrupted (it resumes from its checkpoint) and missing cells are (re)submitted; done, corrupt,
    pending and running ones never (a second job for a live cell would train it twice)."""
    from benchmark.launch.state import STATES, CellState, needs_run

    rerun = {s for s in STATES if needs_run(CellState("c", "", s))}
    assert rerun == {"failed", "interrupted", "missing"} and {"done", "corrupt", "pending", "running"} <= set(STATES)


def test_a_live_job_whose_metrics_do_not_parse_yet_is_never_failed(tmp_path):
    """metrics.json caught mid-write (or hand-broken) while the cell's job runs: pending/running, not failed, which
    a relaunch would resubmit beside the running job."""
    root = make_sweep(
        tmp_path / "s", {"a": {"metrics": "{half"}, "b": {"metrics": "{half"}}, jobs={"a": "7_0", "b": "7_1"}
    )
    states = {"7_0": JobState("RUNNING"), "7_1": JobState("PENDING")}
    rows = {r.cell_id: r for r in sweep_status(root, query=lambda ids: {j: states[j] for j in ids})}
    assert (rows["a"].state, rows["b"].state) == ("running", "pending")
    assert "does not parse" in rows["a"].error[0]


def test_a_split_ddp_cell_shows_its_pre_training_job_while_that_is_live(tmp_path):
    """jobs.json names a split DDP cell's evaluation job and the pre-training job it waits on: status follows the
    pre-training job while it is queued or running or when it ended unfinished, else the evaluation job."""
    root = make_sweep(tmp_path / "s", {"a": {"step": 3}}, jobs={"a": "8"})
    record = json.loads((root / "jobs.json").read_text())
    record["cells"]["a"]["pretrain_job_id"] = "7_0"
    (root / "jobs.json").write_text(json.dumps(record))

    def status(pre: str, evaluation: str):
        states = {"7_0": JobState(pre), "8": JobState(evaluation)}
        [row] = sweep_status(root, query=lambda ids: {j: states[j] for j in ids})
        return row.state, row.job_id

    assert status("RUNNING", "PENDING") == ("running", "7_0")
    assert status("REQUEUED", "PENDING") == ("pending", "7_0")
    assert status("COMPLETED", "RUNNING") == ("running", "8")
    assert status("FAILED", "FAILED") == ("failed", "7_0")  # pre-training never finished: its job is the reason
    assert status("COMPLETED", "FAILED") == ("failed", "8")


def test_a_cell_out_of_requeues_says_to_raise_its_time_limit(tmp_path):
    """Each attempt timed out before its work was done and submitit stopped requeueing: status said only
    submitit's traceback; now what to change, and that a relaunch resumes."""
    traceback_tail = (
        'Traceback (most recent call last):\n  File "submitit/core/submission.py", line 76, in submitit_main\n'
        "submitit.core.utils.UncompletedJobError: Job not requeued because: timed-out too many times.\n"
    )
    root = make_sweep(
        tmp_path / "s", {"a": {"step": 3, "error": traceback_tail, "env": {"requeues": 10}}}, {"a": "7_0"}
    )
    [row] = sweep_status(root, query=lambda ids: {"7_0": JobState("FAILED", 11)})
    assert row.state == "failed" and row.requeues == 11
    assert row.error[0].startswith("timed out more often than resources.max_requeues allows: each attempt resumed")
    assert "larger resources.timeout_min (or max_requeues): it resumes" in row.error[0]
    assert "timed-out too many times" in row.error[1]


def test_an_array_range_row_accounting_still_lists_is_not_a_second_attempt(tmp_path, monkeypatch):
    """For a few seconds after an array task starts, sacct lists it both in its own row and in the array's row of
    tasks not yet split ('45_[2-3%4]|PENDING'): that once read as a requeue, and as PENDING for a finished task.
    A task with only the range row is pending; a task with two rows of its own was requeued once."""
    from benchmark.launch.slurm import query_states

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n")
    sacct = "45_2|COMPLETED|0:0\n45_[2-3%4]|PENDING|0:0\n45_4|TIMEOUT|0:0\n45_4|COMPLETED|0:0\n"
    (bin_dir / "sacct.txt").write_text(sacct)
    (bin_dir / "sacct").write_text(f"#!/bin/sh\ncat '{bin_dir / 'sacct.txt'}'\n")
    for tool in ("squeue", "sacct"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    states = query_states(["45_2", "45_3", "45_4"])
    assert (states["45_2"].state, states["45_2"].requeues) == ("COMPLETED", 0)
    assert (states["45_3"].state, states["45_3"].requeues) == ("PENDING", 0)
    assert (states["45_4"].state, states["45_4"].requeues) == ("COMPLETED", 1)


def test_a_figure_edited_into_text_is_corrupt_for_status_as_for_the_table(tmp_path):
    """`vssl table` skips a run whose metrics.json holds a figure that is not a number (a hand edit); status once
    called that cell done, so the two disagreed about the same folder."""
    good = {"pretrain": {"steps": 6}, "linear/synthetic/split1": {"top1": 40.0}}
    bad = {"pretrain": {"steps": 6}, "linear/synthetic/split1": {"top1": "abc"}}
    root = make_sweep(tmp_path / "s", {"a": {"metrics": good}, "b": {"metrics": bad}})
    rows = {r.cell_id: r for r in sweep_status(root, query=lambda ids: {})}
    assert rows["a"].state == "done" and rows["b"].state == "corrupt"
    assert "'linear/synthetic/split1.top1' is 'abc', not a number: tables skip it" in rows["b"].error[0]


@pytest.mark.parametrize("text", [b"[1, 2]", b'{"cells": [1]}', b"\xff\xfe{"])
def test_a_job_record_that_is_not_one_is_one_line(tmp_path, text, capsys):
    """jobs.json as a list, with a list of cells, or not UTF-8 (a bad copy): status says so in one line."""
    from benchmark.cli import main

    root = make_sweep(tmp_path / "s", {"a": {"step": 1}})
    (root / "jobs.json").write_bytes(text)
    assert main(["status", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{root / 'jobs.json'}" in err and "move it away" in err and len(err.splitlines()) == 1
