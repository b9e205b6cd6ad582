"""A DDP cell's evaluations as a one-task job of their own (benchmark.launch.slurm.job_parts), without SLURM: a
stand-in executor records what would be submitted, and job states are given. The real sbatch path, a requeue
included, is tests/launch/test_slurm.py's."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.config import to_dict
from benchmark.errors import UserError
from benchmark.launch import slurm
from benchmark.launch import state as state_module
from benchmark.launch.local import cell_dir, write_manifest
from benchmark.launch.slurm import JobState
from benchmark.launch.state import sweep_status
from benchmark.sweeps import load_sweep

from .conftest import tiny_base


class StandInExecutor:
    """What submitit's executor is asked: resources, dependencies, arrays and single jobs; ids count up."""

    ids = itertools.count(100)
    refuse_after: int | None = None  # refuse the n-th single-job submission after this many
    log: list[dict] = []

    def __init__(self, cluster, folder, res, name):
        self.res, self.params = res, {}

    def update_parameters(self, **kw):
        self.params.update(kw)

    def map_array(self, fn, specs):
        base = next(self.ids)
        jobs = [_Job(f"{base}_{i}") for i in range(len(specs))]
        for job, spec in zip(jobs, specs, strict=True):
            self.log.append({"job": job.job_id, "spec": spec, "res": self.res, "params": dict(self.params)})
        return jobs

    def submit(self, fn, spec):
        from submitit.core.utils import FailedJobError

        singles = sum("_" not in e["job"] for e in self.log)
        if self.refuse_after is not None and singles >= self.refuse_after:
            why = "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed"
            print(why, file=sys.stderr)  # as submitit does, before raising
            raise FailedJobError(why)
        job = _Job(str(next(self.ids)))
        self.log.append({"job": job.job_id, "spec": spec, "res": self.res, "params": dict(self.params)})
        return job


class _Job:
    def __init__(self, job_id):
        self.job_id = job_id


@pytest.fixture
def executor(monkeypatch):
    StandInExecutor.log, StandInExecutor.refuse_after, StandInExecutor.ids = [], None, itertools.count(100)
    monkeypatch.setattr(slurm, "make_executor", StandInExecutor)
    return StandInExecutor


def _sweep(tmp_path: Path, tasks: list[int], stages: list[list[str]]):
    base = tiny_base()
    spec = {
        "name": "s",
        "base": base,
        "zip": [
            {"run.log_every": list(range(1, len(tasks) + 1)), "resources.tasks_per_node": tasks, "run.stages": stages}
        ],  # fmt: skip
        "resources": {"cpus_per_task": 3, "mem_gb": 10, "timeout_min": 30},
    }
    sweep = load_sweep(spec, out_dir=tmp_path / "out")
    write_manifest(sweep)
    return spec, sweep


def _pretrained(sweep, cell) -> None:
    d = cell_dir(sweep.out_dir, cell.id)
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text(json.dumps({"pretrain": {"steps": 6}}))


def test_only_ddp_cells_with_evaluations_are_split(tmp_path, executor):
    evaluates = ["pretrain", "knn"]
    _, sweep = _sweep(tmp_path, [1, 2, 2], [evaluates, evaluates, ["pretrain"]])
    one_task, ddp, ddp_pretrain_only = sweep.cells
    out = slurm.submit(sweep, sweep.cells)
    by_cell = {e["spec"]["cell_id"]: [] for e in executor.log}
    for e in executor.log:
        by_cell[e["spec"]["cell_id"]].append(e)
    assert [e["spec"]["part"] for e in by_cell[one_task.id]] == ["whole"]
    assert [e["spec"]["part"] for e in by_cell[ddp_pretrain_only.id]] == ["whole"]
    pre, evaluation = by_cell[ddp.id]
    assert pre["spec"]["part"] == "pretrain" and pre["res"].tasks_per_node == 2
    assert evaluation["spec"]["part"] == "evaluate" and evaluation["spec"]["after"] == pre["job"]
    assert evaluation["params"]["slurm_additional_parameters"] == {"dependency": f"afterany:{pre['job']}"}
    res = evaluation["res"]  # one task of the pre-training job: its CPUs, its share of the memory, the same time
    assert (res.nodes, res.tasks_per_node, res.cpus_per_task, res.mem_gb, res.timeout_min) == (1, 1, 3, 5, 30)
    assert [j.job_id for j in out.evaluations] == [evaluation["job"]] and out.after == {evaluation["job"]: pre["job"]}
    cells = json.loads((Path(sweep.out_dir) / "jobs.json").read_text())["cells"]
    assert cells[ddp.id]["job_id"] == evaluation["job"] and cells[ddp.id]["pretrain_job_id"] == pre["job"]
    assert cells[ddp.id]["submissions"] == 1 and "pretrain_job_id" not in cells[one_task.id]

    # pre-training finished, its evaluation failed: a relaunch submits the evaluation job alone, waiting on nothing
    _pretrained(sweep, ddp)
    executor.log.clear()
    again = slurm.submit(sweep, [ddp])
    [alone] = executor.log
    assert alone["spec"]["part"] == "evaluate" and "after" not in alone["spec"] and not alone["params"]
    assert again.arrays == [] and again.after == {}
    cells = json.loads((Path(sweep.out_dir) / "jobs.json").read_text())["cells"]
    assert cells[ddp.id]["job_id"] == alone["job"] and "pretrain_job_id" not in cells[ddp.id]
    assert cells[ddp.id]["part"] == "evaluation"  # status names it so
    [row] = [r for r in sweep_status(Path(sweep.out_dir), query=lambda ids: {}) if r.cell_id == ddp.id]
    assert (row.job_id, row.job_part) == (alone["job"], "evaluation")
    assert cells[ddp.id]["submissions"] == 2


def test_the_switch_keeps_the_evaluations_in_the_pre_training_job(tmp_path, executor):
    _, sweep = _sweep(tmp_path, [2], [["pretrain", "knn"]])
    [cell] = sweep.cells
    res = slurm.resource_groups(sweep, sweep.cells)[0][0]
    assert slurm.job_parts(cell, res, "slurm", tmp_path / "none") == ["pretrain", "evaluate"]
    assert slurm.job_parts(cell, res, "debug", tmp_path / "none") == ["whole"]  # in process: nothing to free
    off = type(res)(**{**res.__dict__, "split_evaluation": False})
    assert slurm.job_parts(cell, off, "slurm", tmp_path / "none") == ["whole"]


def test_a_refused_sbatch_is_one_line_and_what_was_submitted_is_recorded(tmp_path, executor, capsys):
    """A limit on queued jobs refuses the second evaluation job: the array and the first evaluation job are in
    jobs.json, so a relaunch does not submit those cells twice."""
    _, sweep = _sweep(tmp_path, [2, 2], [["pretrain", "knn"]] * 2)
    first, second = sweep.cells
    executor.refuse_after = 1
    with pytest.raises(UserError) as refused:
        slurm.submit(sweep, sweep.cells)
    assert str(refused.value) == (
        "sbatch refused a job: sbatch: error: QOSMaxSubmitJobPerUserLimit; sbatch: error: Batch job submission "
        "failed; the 3 jobs submitted before it are in jobs.json (a relaunch leaves them); fix that and relaunch "
        "once pre-training job 100_1 has ended"
    )
    assert capsys.readouterr().err == ""  # submitit's own print of it is swallowed: said once
    cells = json.loads((Path(sweep.out_dir) / "jobs.json").read_text())["cells"]
    assert "pretrain_job_id" in cells[first.id] and cells[first.id]["job_id"] != cells[first.id]["pretrain_job_id"]
    assert "pretrain_job_id" not in cells[second.id]  # its pre-training job only: status shows it, a relaunch waits


def _record(sweep, cell, pre: str, evaluation: str) -> None:
    path = Path(sweep.out_dir) / "jobs.json"
    data = json.loads(path.read_text()) if path.exists() else {"cells": {}, "submissions": []}
    folder = str(Path(sweep.out_dir) / "slurm" / "x" / "%j")
    data["cells"][cell.id] = {"job_id": evaluation, "pretrain_job_id": pre, "folder": folder, "cluster": "slurm"}
    path.write_text(json.dumps(data))


def test_a_failed_pre_training_is_the_cells_error_and_its_queued_evaluation_job_is_cancelled(
    tmp_path, executor, monkeypatch, capsys
):
    """The pre-training job ran out of memory while its evaluation job waits for a GPU: the cell is failed with
    SLURM's reason and the pre-training job's log (not pending behind a job that can only fail); a relaunch cancels
    that evaluation job and submits both again."""
    spec, sweep = _sweep(tmp_path, [2], [["pretrain", "knn"]])
    [cell] = sweep.cells
    _record(sweep, cell, "7_0", "8")
    d = cell_dir(sweep.out_dir, cell.id)
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("run: {stages: [pretrain, knn]}\n")
    log = Path(sweep.out_dir) / "slurm" / "x" / "7_0" / "7_0_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("slurmstepd: error: Detected 1 oom_kill event in StepId=7.0\n")
    states = {"7_0": JobState("OUT_OF_MEMORY", 0, "0:125"), "8": JobState("PENDING")}
    monkeypatch.setattr(state_module, "query_states", lambda ids: {j: states[j] for j in ids if j in states})
    [row] = sweep_status(Path(sweep.out_dir))
    assert (row.state, row.job_id, row.job_part) == ("failed", "7_0", "pre-training")
    assert row.error == [
        "SLURM: OUT_OF_MEMORY (exit 0:125)",
        "slurmstepd: error: Detected 1 oom_kill event in StepId=7.0",
    ]
    assert slurm.plan(sweep, Path(sweep.out_dir)).orphans == ["8"]

    cancelled = []
    monkeypatch.setattr(slurm, "check_reachable", lambda: None)
    monkeypatch.setattr(slurm, "cancel_orphans", lambda sweep_name, ids: cancelled.extend(ids) or list(ids))
    launched = slurm.launch(sweep)
    assert cancelled == ["8"] == launched.cancelled and [e["spec"]["part"] for e in executor.log] == [
        "pretrain",
        "evaluate",
    ]
    assert launched.arrays == ["100"]

    # while the new pre-training job runs, status shows it, and which part it is
    states.update({"100_0": JobState("RUNNING"), "101": JobState("PENDING")})
    [row] = sweep_status(Path(sweep.out_dir))
    assert (row.state, row.job_id, row.job_part) == ("running", "100_0", "pre-training")
    # pre-training done, the evaluation job runs
    states.update({"100_0": JobState("COMPLETED"), "101": JobState("RUNNING")})
    (d / "metrics.json").write_text(json.dumps({"pretrain": {"steps": 6}}))
    [row] = sweep_status(Path(sweep.out_dir))
    assert (row.state, row.job_id, row.job_part) == ("running", "101", "evaluation")


def test_the_dry_run_counts_only_the_evaluation_jobs_a_launch_would_submit(tmp_path, executor, capsys, synth_data_home):
    """One DDP cell complete, one to pre-train, one pre-trained: two evaluation jobs, one of them waiting."""
    spec, sweep = _sweep(tmp_path, [2, 2, 2], [["pretrain", "knn"]] * 3)
    done, missing, pretrained = sweep.cells
    d = cell_dir(sweep.out_dir, done.id)
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"pretrain": {"steps": 6}, "knn/synthetic/split1": {"top1": 1.0}}))
    (d / "config.yaml").write_text(yaml.safe_dump(to_dict(done.config)))
    _pretrained(sweep, pretrained)
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(f), "--out", str(sweep.out_dir), "--cluster", "slurm", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert (
        "  and 2 one-task evaluation job(s), 1 after its cell's pre-training job, 1 alone (pre-training done): "
        "30 min, 1 node(s) x 1 task(s), 3 cpus/task, 0 gpus/node, 5 GB"
    ) in text, text


def test_a_relaunch_cancels_only_this_sweeps_evaluation_jobs_and_a_job_that_ended_is_a_warning(monkeypatch, capsys):
    """scancel is limited to this user's jobs with the sweep's evaluation job name (an id from jobs.json may belong
    to another job after a controller reset); a job that ended meanwhile is a warning, the launch goes on."""
    import subprocess

    calls = []

    def scancel(cmd, timeout=30):
        calls.append(cmd)
        return subprocess.CompletedProcess(
            cmd, 1, "", "scancel: error: Kill job error on job id 8: Invalid job id specified"
        )

    monkeypatch.setattr(slurm, "_run", scancel)
    assert slurm.cancel_orphans("table1", ["8"]) == []  # nothing said to be cancelled
    import getpass

    assert calls == [["scancel", "--name=vssl-table1-eval", f"--user={getpass.getuser()}", "8"]]
    assert "warning: scancel 8: scancel: error: Kill job error on job id 8" in capsys.readouterr().err
    assert slurm.cancel_orphans("table1", []) == [] and len(calls) == 1
    monkeypatch.setattr(slurm, "_run", lambda cmd, timeout=30: subprocess.CompletedProcess(cmd, 0, "", ""))
    assert slurm.cancel_orphans("table1", ["8", "9"]) == ["8", "9"]


def test_jobs_that_could_not_be_recorded_are_named_in_one_line(tmp_path, executor, monkeypatch):
    """jobs.json cannot be written (a full disk): the jobs already queued are named, since a relaunch would not
    know them and would submit their cells again."""
    _, sweep = _sweep(tmp_path, [2], [["pretrain", "knn"]])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(slurm, "record_submission", full_disk)
    with pytest.raises(UserError, match=r"could not record the jobs just submitted \[100_0, 101\] in .*jobs.json "
                       r"\(No space left on device\): cancel them \(scancel\) before relaunching"):  # fmt: skip
        slurm.submit(sweep, sweep.cells)


def test_a_cell_whose_metrics_do_not_parse_is_not_failed_while_its_job_runs(tmp_path):
    """Failed would make a relaunch submit the cell next to its running job."""
    from benchmark.launch.state import cell_state

    d = tmp_path / "cell"
    d.mkdir()
    (d / "metrics.json").write_text("{cut")
    row = cell_state(d, ["pretrain"], job={"job_id": "5_0"}, job_state=JobState("RUNNING"))
    assert row.state == "running" and "does not parse" in row.error[0]
    assert cell_state(d, ["pretrain"], job={"job_id": "5_0"}, job_state=JobState("FAILED")).state == "failed"


def test_a_relaunch_with_other_settings_is_refused_while_a_cell_waits_in_the_queue(tmp_path, executor, monkeypatch):
    """A queued job runs the config it was submitted with (its config.yaml is written when it starts): a relaunch
    with another value once said "not resubmitted" and exited 0, and the job then ran the old value. Now one line,
    nothing written; the same settings (or only a worker count) relaunch as before."""
    spec, sweep = _sweep(tmp_path, [1], [["pretrain", "knn"]])
    monkeypatch.setattr(slurm, "check_reachable", lambda: None)
    states = {}
    monkeypatch.setattr(state_module, "query_states", lambda ids: {j: states[j] for j in ids if j in states})
    launched = slurm.launch(sweep)
    job = f"{launched.arrays[0]}_0"
    states[job] = JobState("PENDING")
    recorded = (Path(sweep.out_dir) / "jobs.json").read_bytes()
    assert json.loads(recorded)["cells"][sweep.cells[0].id]["config"]["optim"]["lr"] == sweep.cells[0].config.optim.lr

    changed = load_sweep(spec, ["optim.lr=0.5"], out_dir=tmp_path / "out")
    with pytest.raises(UserError) as exc:
        slurm.launch(changed)
    cell = changed.cells[0]
    assert str(exc.value).startswith(
        f"cell {cell.id} ({cell.label}) is queued as job {job} with other settings (optim.lr"
    )
    assert f"scancel {job}" in str(exc.value) and len(executor.log) == 1  # nothing more submitted
    assert (Path(sweep.out_dir) / "jobs.json").read_bytes() == recorded

    for other in (["run.pretext_samples=32"], ["eval.knn_k=7"]):  # the job would run its own pretext check, kNN
        with pytest.raises(UserError, match=f"is queued as job {job} with other settings"):
            slurm.launch(load_sweep(spec, other, out_dir=tmp_path / "out"))
    for same in ([], ["data.num_workers=3", "run.checkpoint_every=7"]):  # nothing to submit: how it runs, not what
        assert slurm.launch(load_sweep(spec, same, out_dir=tmp_path / "out")).plan.live == {cell.id: job}


def test_ctrl_c_of_wait_says_the_jobs_go_on(tmp_path, executor, monkeypatch, capsys, synth_data_home):
    """`vssl sweep --cluster slurm --wait` interrupted: the jobs stay queued; the line says so and how to follow."""
    spec, sweep = _sweep(tmp_path, [1], [["pretrain"]])
    monkeypatch.setattr(slurm, "check_reachable", lambda: None)
    monkeypatch.setattr(state_module, "query_states", lambda ids: {})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(slurm, "wait", interrupted)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    out = Path(sweep.out_dir)
    assert main(["sweep", str(f), "--cluster", "slurm", "--wait", "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"vssl sweep: interrupted; the submitted jobs go on in SLURM: follow them with `vssl status {out}`"


def test_a_local_launch_leaves_cells_queued_in_slurm_to_their_jobs(
    tmp_path, executor, monkeypatch, capsys, synth_data_home
):
    """A sweep folder launched on SLURM, then locally (say to finish it on a workstation): a cell whose job still
    waits would run twice, here and when its job starts. It is passed by, named; squeue not answering is one line.
    Off the cluster (no squeue) a copy of the folder runs as before."""
    from benchmark.launch import local
    from benchmark.launch.slurm import SlurmUnreadable

    spec, sweep = _sweep(tmp_path, [1], [["pretrain"]])
    monkeypatch.setattr(slurm, "check_reachable", lambda: None)
    states = {}
    monkeypatch.setattr(state_module, "query_states", lambda ids: {j: states[j] for j in ids if j in states})
    job = f"{slurm.launch(sweep).arrays[0]}_0"
    states[job] = JobState("PENDING")
    monkeypatch.setattr(local, "on_slurm_host", lambda: True)
    ran = []
    monkeypatch.setattr(local, "run_cell", lambda spec, **kw: ran.append(spec["cell_id"]))
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    out = Path(sweep.out_dir)
    assert main(["sweep", str(f), "--out", str(out), "--no-progress"]) == 0
    cell = sweep.cells[0]
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[1/1]")]
    assert line.startswith(f"[1/1] {cell.id} ") and line.endswith(f": queued or running in SLURM as job {job}, skipped")
    assert ran == []

    def unreadable(ids):
        raise SlurmUnreadable("squeue did not answer within 30 s")

    monkeypatch.setattr(state_module, "query_states", unreadable)
    assert main(["sweep", str(f), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot tell which cells are still queued or running in SLURM (squeue did not answer" in err
    assert f"off the cluster, on a copy of the folder: move {out / 'jobs.json'} aside)" in err
    monkeypatch.setattr(local, "on_slurm_host", lambda: False)  # a copy of the folder, off the cluster
    assert main(["sweep", str(f), "--out", str(out), "--no-progress"]) == 0 and ran == [cell.id]
