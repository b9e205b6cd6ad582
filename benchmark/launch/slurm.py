"""Sweeps on SLURM through submitit: one job array per distinct set of resources.

    runs/<sweep>/
      sweep.json          every cell (id, label, overrides, required metric keys): benchmark.launch.local
      jobs.json           which SLURM job runs (ran) each cell, and every submission
      slurm/<stamp>/<job_id>/   submitit's pickles and logs (<job_id>_0_log.out / .err)
      cells/<cell_id>/    the run directories

A launch submits only what needs to run: complete cells are skipped, cells
whose last job is still pending or running are left alone, failed and missing
ones are (re)submitted. Submission returns at once; ``--wait`` polls until
every submitted job has ended. Job states come from ``sacct`` (one call for all
arrays; ``squeue`` when accounting is off), so ``vssl status`` can re-attach to
a sweep's jobs from any shell, days later.

The job callable is :class:`benchmark.launch.cell.CellJob` (a submitit
Checkpointable): on the warning signal SLURM sends ``resources.signal_delay_s``
before the time limit (or on preemption), pre-training checkpoints the step it
is on and the job requeues itself (at most ``resources.max_requeues`` times).

A cell on several tasks (DDP) whose stages include evaluations is two jobs:
pre-training on all its tasks and GPUs, then its evaluations, which run on one
process, as a one-task job of their own that SLURM starts when the pre-training
job has ended (``--dependency=afterany``, which a requeue does not satisfy). So
a 4-GPU cell frees three GPUs for its fine-tunes (``resources.split_evaluation:
false`` keeps the evaluations in the pre-training job, on rank 0).

This module imports neither torch nor submitit at load time: ``vssl status`` uses
its queries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import to_dict
from benchmark.errors import UserError
from benchmark.rundir import atomic_write_text, update_lock

JOBS = "jobs.json"
# SLURM states of a job that still holds (or waits for) resources: never submit its cell twice.
PENDING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}
LIVE_STATES = PENDING_STATES | RUNNING_STATES


# --------------------------------------------------------------------------- manifest
def read_jobs(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / JOBS
    if not path.exists():
        return {"cells": {}, "submissions": []}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} does not parse ({exc}); move it away to start a fresh job record") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", {}), dict):
        raise UserError(f"{path} is not a job record (an object with 'cells'); move it away to start a fresh one")
    data.setdefault("cells", {})
    data.setdefault("submissions", [])
    return data


def record_submission(
    sweep_dir: Path, cluster: str, folder: Path, arrays: list[dict], smoke: bool, configs: dict | None = None
) -> dict:
    """Add one launch to jobs.json: each array's id, resources and cells; each cell's latest job and the resolved
    config it was queued with (``configs``: cell id -> config dict), which a relaunch compares with its own while
    the job waits (the cell's config.yaml is only written when the job starts)."""
    with update_lock(sweep_dir):  # another launch of the sweep writing jobs.json at the same time keeps its jobs
        data = read_jobs(sweep_dir)
        _add_submission(data, cluster, folder, arrays, smoke)
        for cid, config in (configs or {}).items():
            if cid in data["cells"]:
                data["cells"][cid]["config"] = config
        atomic_write_text(Path(sweep_dir) / JOBS, json.dumps(data, indent=1, default=str))
    return data


def _add_submission(data: dict, cluster: str, folder: Path, arrays: list[dict], smoke: bool) -> None:
    """A cell's record names its last job (``job_id``); a DDP cell split in two also names the pre-training job its
    evaluation job waits on (``pretrain_job_id``). ``arrays`` lists a group's array before its evaluation jobs."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    counted = set()
    for array in arrays:
        after = array.get("after", {})
        for cid, job_id in array["jobs"].items():
            prev = data["cells"].get(cid, {})
            record = {
                "job_id": job_id,
                "folder": str(folder),
                "cluster": cluster,
                "submitted": stamp,
                "submissions": int(prev.get("submissions", 0)) + (cid not in counted),
            }
            if array.get("evaluation_jobs"):
                record["part"] = "evaluation"  # what `vssl status` calls it
            if after.get(cid):
                record["pretrain_job_id"] = after[cid]
            data["cells"][cid] = record
            counted.add(cid)
    data["submissions"].append(
        {
            "time": stamp,
            "cluster": cluster,
            "folder": str(folder),
            "smoke": smoke,
            "arrays": [{k: v for k, v in a.items()} for a in arrays],
        }
    )


def job_log(folder: str, job_id: str, stream: str = "err") -> Path:
    """submitit's log of task 0 of a job (folder is the submission's folder, which holds %j)."""
    return Path(folder.replace("%j", job_id)) / f"{job_id}_0_log.{stream}"


# --------------------------------------------------------------------------- talking to SLURM
@dataclass
class JobState:
    state: str  # SLURM's word: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, ...
    requeues: int = 0  # earlier records of the same job in accounting (requeued attempts)
    exit_code: str = ""


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check_reachable() -> None:
    """One-line UserError unless a SLURM controller answers (before anything is written or submitted)."""
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise UserError(
            "SLURM is not reachable: no sbatch/srun on PATH (on a machine with root, scripts/slurm_up.sh starts a local one)"
        )
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():  # sinfo would retry for a minute
        raise UserError(f"SLURM is not reachable: SLURM_CONF={conf} does not exist")
    out, last = _ask(["sinfo", "-h", "-o", "%P %a"], 15, lambda why: UserError(f"SLURM is not reachable: {why}"))
    if out.returncode != 0:
        raise UserError(f"SLURM is not reachable: {last}")


def _ask(cmd: list[str], timeout: float, fail) -> tuple[subprocess.CompletedProcess, str]:
    """Run a SLURM client command: (its result, its last line of complaint); ``fail(why)`` is raised when it did
    not answer at all (a timeout, not runnable)."""
    try:
        out = _run(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise fail(f"{cmd[0]} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise fail(f"{cmd[0]} failed ({exc})") from None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return out, lines[-1] if lines else f"{cmd[0]} exited {out.returncode}"


def _expand(job_id: str) -> list[str]:
    """'12_[3-5,8%2]' -> ['12_3', '12_4', '12_5', '12_8']; other ids unchanged."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m.group(2).split(","):
        lo, _, hi = part.partition("-")
        out += [f"{m.group(1)}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


class SlurmUnreadable(UserError):
    """squeue did not say which jobs are queued or running (no controller, a timeout, no squeue): a cell whose job
    it did not list may still be live, so nothing may be resubmitted on that reading."""


def query_states(job_ids: Iterable[str]) -> dict[str, JobState]:
    """Live and past states of jobs ('12' or array tasks '12_3'), keyed by the ids as given.

    Two calls whatever the number of jobs: ``squeue`` for what the controller holds now (it
    knows a job the moment sbatch returns; accounting may lag), then ``sacct`` for the
    history (finished jobs, for days; requeued attempts with -D). An id neither knows is absent.
    Raises :class:`SlurmUnreadable` when squeue fails: "absent" must mean "not live", never "not asked".
    A failing sacct (accounting off or slow) only loses the history.
    """
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    bases = ",".join(sorted({j.split("_")[0] for j in ids}))
    live = {jid: state for jid, state in _live_jobs(bases)}
    history: dict[str, list[tuple[str, str]]] = {}
    unsplit: dict[str, tuple[str, str]] = {}
    sacct = ["sacct", "-n", "-P", "-X", "-D", "-o", "JobID,State,ExitCode", "-j", bases]
    for jid, state, code, own_row in _table(sacct, 3, mark_ranges=True):
        if own_row:  # one attempt of this job or array task
            history.setdefault(jid, []).append((state, code))
        else:  # a row of the array's tasks not yet started ('45_[2-3%4]'): accounting may list it a few seconds
            unsplit[jid] = (state, code)  # after a task has its own row, which is not a second attempt
    for jid, record in unsplit.items():
        history.setdefault(jid, [record])
    states = {}
    for jid in ids:
        recs = history.get(jid, [])
        requeues = max(0, len(recs) - 1)  # sacct -D lists a requeued job's earlier attempts first
        if jid in live:
            states[jid] = JobState(live[jid], requeues)
        elif recs:
            states[jid] = JobState(recs[-1][0], requeues, recs[-1][1])
    return states


def _live_jobs(bases: str) -> list[tuple[str, ...]]:
    """squeue's rows for these job ids; [] when none of them is in the controller any more."""
    if shutil.which("squeue") is None:
        raise SlurmUnreadable("no squeue on PATH")
    out, last = _ask(["squeue", "-h", "-r", "-o", "%i|%T", "-j", bases], 30, SlurmUnreadable)
    if out.returncode != 0:
        if "Invalid job id" in (out.stderr or out.stdout):  # every job named has left the controller
            return []
        raise SlurmUnreadable(f"squeue failed: {last}")
    return _rows(out.stdout, 2)


def _table(cmd: list[str], width: int = 2, mark_ranges: bool = False) -> list[tuple]:
    """Rows of a '|'-separated SLURM listing, array ranges expanded; [] when the command fails."""
    try:
        out = _run(cmd)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return _rows(out.stdout, width, mark_ranges)


def _rows(stdout: str, width: int, mark_ranges: bool = False) -> list[tuple]:
    """(job id, state, further columns...) per job; ``mark_ranges``: plus whether the row was the job's own (False
    for a task expanded from an array range such as '12_[3-5]')."""
    rows = []
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < width or not parts[0]:
            continue
        state = parts[1].split()[0] if parts[1] else "UNKNOWN"  # "CANCELLED by 0" -> CANCELLED
        for jid in _expand(parts[0]):
            rows.append((jid, state, *parts[2:width], *((jid == parts[0],) if mark_ranges else ())))
    return rows


# --------------------------------------------------------------------------- resources
def world_size(res) -> int:
    return max(1, res.tasks_per_node) * max(1, res.nodes)


def check_resources(sweep) -> None:
    """Impossible resource requests fail before submission (one line)."""
    for cell in sweep.cells:
        res = cell.resources or sweep.resources
        where = f"cell {cell.id} ({cell.label})"
        if res.gpus_per_node > 1 and res.tasks_per_node not in (1, res.gpus_per_node):
            raise UserError(
                f"{where}: resources.tasks_per_node={res.tasks_per_node} must equal gpus_per_node={res.gpus_per_node} (one DDP process per GPU)"
            )
        if res.gpus_per_node > 1 and res.tasks_per_node == 1:
            raise UserError(
                f"{where}: {res.gpus_per_node} GPUs but tasks_per_node=1; set resources.tasks_per_node={res.gpus_per_node} for DDP"
            )
        n = world_size(res)
        if cell.config.optim.batch_size % n:
            raise UserError(
                f"{where}: optim.batch_size={cell.config.optim.batch_size} is not divisible by the {n} DDP processes"
            )
        if res.timeout_min < 1:
            raise UserError(f"{where}: resources.timeout_min must be at least 1")
        if res.signal_delay_s >= res.timeout_min * 60:
            raise UserError(
                f"{where}: resources.signal_delay_s={res.signal_delay_s} is not shorter than the time limit ({res.timeout_min} min)"
            )


def evaluation_resources(res):
    """What a DDP cell's evaluation job asks: one task of its pre-training job (that task's CPUs, one GPU if it had
    GPUs, its share of the node's memory) on one node, for the same time."""
    return dataclasses.replace(
        res,
        nodes=1,
        tasks_per_node=1,
        gpus_per_node=min(1, res.gpus_per_node),
        mem_gb=max(1, math.ceil(res.mem_gb / max(1, res.tasks_per_node))),
        gpu_hours_estimate=None,
    )


def job_parts(cell, res, cluster: str, run_dir: Path) -> list[str]:
    """The jobs a cell is submitted as (benchmark.launch.cell's parts): [WHOLE] (one job runs every stage), or, for a
    cell on several tasks whose stages include evaluations, [PRETRAIN, EVALUATE] ([EVALUATE] alone once its
    pre-training has finished)."""
    from benchmark.keys import Stage
    from benchmark.launch.cell import EVALUATE, PRETRAIN, WHOLE
    from benchmark.rundir import CorruptRun, RunDir

    evaluates = any(not Stage.parse(s).is_pretrain for s in cell.config.run.stages)
    if cluster != "slurm" or world_size(res) == 1 or not res.split_evaluation or not evaluates:
        return [WHOLE]
    try:
        finished = RunDir(run_dir).finished_pretraining()
    except CorruptRun:  # one job, which says what is wrong with the run
        return [WHOLE]
    return [EVALUATE] if finished else [PRETRAIN, EVALUATE]


LABEL_ONLY = ("gpu_hours_estimate",)  # resources fields SLURM never sees: they do not split job arrays


def resource_groups(sweep, cells: list) -> list[tuple[Any, list]]:
    """Cells with identical resources (label-only fields aside) share one job array; groups in first-appearance
    order."""
    groups: dict[str, tuple[Any, list]] = {}
    for cell in cells:
        res = cell.resources or sweep.resources
        requested = {k: v for k, v in dataclasses.asdict(res).items() if k not in LABEL_ONLY}
        key = json.dumps(requested, sort_keys=True, default=str)
        groups.setdefault(key, (res, []))[1].append(cell)
    return list(groups.values())


def describe_resources(res) -> str:
    parts = [
        f"{res.timeout_min} min",
        f"{res.nodes} node(s) x {res.tasks_per_node} task(s)",
        f"{res.cpus_per_task} cpus/task",
        f"{res.gpus_per_node} gpus/node",
        f"{res.mem_gb} GB",
    ]
    for name in ("partition", "account", "qos", "constraint"):
        if getattr(res, name):
            parts.append(f"{name}={getattr(res, name)}")
    return ", ".join(parts)


def executor_parameters(res, name: str) -> dict:
    """Our Resources -> submitit AutoExecutor parameters (generic names + slurm_* specifics)."""
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": int(res.timeout_min),
        "nodes": int(res.nodes),
        "tasks_per_node": int(res.tasks_per_node),
        "cpus_per_task": int(res.cpus_per_task),
        "gpus_per_node": int(res.gpus_per_node),
        "mem_gb": res.mem_gb,
        "slurm_array_parallelism": int(res.array_parallelism),
        "slurm_signal_delay_s": int(res.signal_delay_s),
        "slurm_setup": list(res.setup),
    }
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(res, key):
            params[f"slurm_{key}"] = getattr(res, key)
    if not res.gpus_per_node:
        params.pop("gpus_per_node")  # some clusters reject --gpus-per-node=0
    return params


def make_executor(cluster: str, folder: Path, res, name: str):
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster=cluster, slurm_max_num_timeout=int(res.max_requeues))
    params = executor_parameters(res, name)
    if cluster != "slurm":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    ex.update_parameters(**params)
    return ex


# --------------------------------------------------------------------------- submitting
@dataclass
class Plan:
    run: list  # cells to submit
    complete: list  # skipped: every stage done
    live: dict  # cell id -> job id still pending/running (skipped)
    # evaluation jobs still queued for cells whose pre-training job failed: cancelled before those cells are
    # submitted again (left queued, one would evaluate the cell a second time once the new pre-training ends)
    orphans: list = field(default_factory=list)


def plan(sweep, sweep_dir: Path, with_jobs: bool = True) -> Plan:
    """What a launch submits: cells that :func:`benchmark.launch.state.needs_run` says need it. ``with_jobs``:
    also ask SLURM about the jobs jobs.json recorded (submitit's debug executor has none)."""
    from benchmark.launch.local import cell_dir, required_keys
    from benchmark.launch.state import cell_state, current_job, job_states, needs_run

    jobs = read_jobs(sweep_dir)["cells"] if with_jobs else {}
    try:
        states = job_states(jobs)
    except SlurmUnreadable as exc:
        raise UserError(f"cannot tell which cells are still queued or running in SLURM ({exc}): running them now "
                        "could run a cell twice; relaunch when squeue answers (`vssl status` shows the run directories; "
                        f"off the cluster, on a copy of the folder: move {Path(sweep_dir) / JOBS} aside)") from None  # fmt: skip
    out = Plan([], [], {})
    for cell in sweep.cells:
        job, job_state = current_job(jobs.get(cell.id, {}), states, cell_dir(sweep_dir, cell.id))
        state = cell_state(
            cell_dir(sweep_dir, cell.id), required_keys(cell.config), cell.id, cell.label, job, job_state
        )
        if state.state == "done":
            out.complete.append(cell)
        elif needs_run(state):
            out.run.append(cell)
            evaluation = states.get(job.get("evaluation_job_id", ""))
            if evaluation is not None and evaluation.state in LIVE_STATES:
                out.orphans.append(job["evaluation_job_id"])
        else:
            out.live[cell.id] = job["job_id"]
            check_queued_settings(cell, jobs.get(cell.id, {}), job["job_id"])
    return out


# What a job that has not started may be relaunched with unchanged: how it runs, not what it computes. Anything
# else (the evaluations and stages too: the job would run the ones it was queued with) is refused.
QUEUED_MAY_DIFFER = (
    "data.num_workers", "data.decoder", "data.storage", "data.max_bad_fraction",
    *(f"run.{k}" for k in ("device", "precision", "channels_last", "threads", "log_every", "checkpoint_every",
                          "time_budget_s", "wandb", "compile")),
    "eval.batch_size",
)  # fmt: skip


def check_queued_settings(cell, record: dict, job_id: str) -> None:
    """A cell whose job still waits (or runs) was queued with the config jobs.json recorded: a relaunch with other
    settings would print "not resubmitted" and the job would run the old ones. One line instead, before anything is
    written or submitted (a cell that has started is compared with its config.yaml by the sweep command)."""
    from benchmark.train import setting_changes

    recorded = record.get("config")
    if not recorded:  # a job queued before jobs.json recorded configs
        return
    changes = setting_changes(recorded, cell.config, may_change=QUEUED_MAY_DIFFER)
    if changes:
        raise UserError(
            f"cell {cell.id} ({cell.label}) is queued as job {job_id} with other settings ({changes}): it would run "
            f"those, not these; cancel it (scancel {job_id}) and relaunch, or launch into another --out"
        )


@dataclass
class Submitted:
    """What one launch put in the queue."""

    arrays: list = field(default_factory=list)  # the job arrays' submitit jobs, one per cell
    evaluations: list = field(default_factory=list)  # DDP cells' evaluation jobs (benchmark.launch.cell.EVALUATE)
    after: dict[str, str] = field(default_factory=dict)  # evaluation job id -> the pre-training job it waits on

    @property
    def jobs(self) -> list:
        return self.arrays + self.evaluations


def submit(
    sweep, cells: list, cluster: str = "slurm", env: dict | None = None, job=None, smoke: bool = False
) -> Submitted:
    """Submit ``cells``: one job array per resource group, then one evaluation job per DDP cell with evaluations
    (:func:`job_parts`). jobs.json records every job submitted, also when a later sbatch fails (a relaunch must
    not submit those cells twice). ``job``: the callable (default a CellJob); tests pass subclasses."""
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    from benchmark.launch.cell import EVALUATE, CellJob, cell_spec
    from benchmark.launch.local import cell_dir

    sweep_dir = Path(sweep.out_dir).resolve()
    folder = sweep_dir / "slurm" / time.strftime("%Y%m%d-%H%M%S") / "%j"
    job = job or CellJob()
    out, record = Submitted(), []
    wait_for = ""  # while an evaluation job is submitted: refused, its cell's pre-training job is queued already
    try:
        for res, group in resource_groups(sweep, cells):
            parts = {c.id: job_parts(c, res, cluster, cell_dir(sweep_dir, c.id)) for c in group}
            first = [c for c in group if parts[c.id][0] != EVALUATE]
            pretrain_jobs: dict[str, str] = {}
            if first:
                ex = make_executor(cluster, folder, res, f"vssl-{sweep.name}")
                specs = [cell_spec(sweep.name, c, cell_dir(sweep_dir, c.id), env, parts[c.id][0]) for c in first]
                with _sbatch_quiet():
                    jobs = ex.map_array(job, specs)  # one sbatch: a job array
                out.arrays += jobs
                pretrain_jobs = {c.id: str(j.job_id) for c, j in zip(first, jobs, strict=True)}
                record.append({"array_job_id": str(jobs[0].job_id).split("_")[0],
                               "resources": dataclasses.asdict(res), "jobs": pretrain_jobs})  # fmt: skip
            evaluated = [c for c in group if parts[c.id][-1] == EVALUATE]
            if not evaluated:
                continue
            # one job per cell: an array waits on each cell's own job only if that job succeeded (SLURM's aftercorr)
            eval_res = evaluation_resources(res)
            entry = {"evaluation_jobs": True, "resources": dataclasses.asdict(eval_res), "jobs": {}, "after": {}}
            record.append(entry)
            for cell in evaluated:
                ex = make_executor(cluster, folder, eval_res, evaluation_job_name(sweep.name))
                spec = cell_spec(sweep.name, cell, cell_dir(sweep_dir, cell.id), env, EVALUATE)
                after = pretrain_jobs.get(cell.id)  # none when pre-training finished in an earlier launch
                if after:
                    spec["after"] = after
                    ex.update_parameters(slurm_additional_parameters={"dependency": f"afterany:{after}"})
                    wait_for = f" once pre-training job {after} has ended"
                with _sbatch_quiet():
                    submitted = ex.submit(job, spec)
                wait_for = ""
                out.evaluations.append(submitted)
                entry["jobs"][cell.id] = str(submitted.job_id)
                if after:
                    entry["after"][cell.id] = out.after[str(submitted.job_id)] = after
    except (FailedJobError, FailedSubmissionError) as exc:  # sbatch refused (a partition, a limit on queued jobs)
        done = f"the {len(out.jobs)} jobs submitted before it are in jobs.json (a relaunch leaves them); "
        done = done if out.jobs else ""
        why = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip()) or type(exc).__name__
        raise UserError(f"sbatch refused a job: {why}; {done}fix that and relaunch{wait_for}") from None
    finally:
        if cluster == "slurm" and record:
            try:
                configs = {c.id: to_dict(c.config) for c in cells}
                record_submission(sweep_dir, cluster, folder, record, smoke, configs)
            except OSError as exc:  # unrecorded, the queued jobs would be submitted again by a relaunch
                ids = ", ".join(str(j.job_id) for j in out.jobs)
                raise UserError(f"could not record the jobs just submitted [{ids}] in {sweep_dir / JOBS} "
                                f"({exc.strerror or exc}): cancel them (scancel) before relaunching") from None  # fmt: skip
    return out


@contextlib.contextmanager
def _sbatch_quiet():
    """submitit prints a refused sbatch's stderr itself before raising; the one-line error above says it all."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def evaluation_job_name(sweep_name: str) -> str:
    return f"vssl-{sweep_name}-eval"


def cancel_orphans(sweep_name: str, job_ids: list[str]) -> list[str]:
    """scancel the evaluation jobs of failed pre-trainings (Plan.orphans): only jobs of this user with this sweep's
    evaluation job name, so an id SLURM has since given to another job (a reset controller) is left alone. A job
    that ended meanwhile makes scancel complain; that is a warning, not a reason to stop the launch."""
    if not job_ids:
        return []
    import getpass

    cmd = ["scancel", f"--name={evaluation_job_name(sweep_name)}", f"--user={getpass.getuser()}", *job_ids]
    out, last = _ask(cmd, 30, lambda why: UserError(f"could not cancel {', '.join(job_ids)}: {why}"))
    if out.returncode != 0:
        print(f"warning: scancel {' '.join(job_ids)}: {last}", file=sys.stderr)
        return []
    return list(job_ids)


def wait(
    sweep_dir: Path, job_ids: list[str], poll_s: float = 5.0, progress_bar: bool = True, timeout_s: float | None = None
) -> dict[str, JobState]:
    """Block until none of ``job_ids`` is pending or running; returns their last states."""
    from tqdm.auto import tqdm

    t0 = time.monotonic()
    bar = tqdm(total=len(job_ids), desc="jobs finished", disable=not progress_bar, dynamic_ncols=True)
    states: dict[str, JobState] = {}
    failures = 0
    while True:
        try:
            states, failures = query_states(job_ids), 0
        except SlurmUnreadable as exc:  # a controller hiccup: keep waiting on the last reading, give up after ~5
            failures += 1
            if failures >= 5:
                bar.close()
                raise UserError(f"stopped waiting: {exc}, 5 times in a row; the jobs go on (`vssl status`)") from None
            time.sleep(poll_s)
            continue
        # a job neither squeue nor sacct knows: just submitted (a minute's grace), or long gone
        unknown_live = time.monotonic() - t0 < 60
        live = [
            j for j in job_ids if (j not in states and unknown_live) or (j in states and states[j].state in LIVE_STATES)
        ]
        bar.n = len(job_ids) - len(live)
        bar.refresh()
        if not live:
            break
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            bar.close()
            raise TimeoutError(f"{len(live)} jobs still pending or running after {timeout_s:.0f} s")
        time.sleep(poll_s)
    bar.close()
    return states


@dataclass
class Launch:
    """What one launch did: the plan it followed and the jobs it submitted (empty when nothing needed to run)."""

    sweep_dir: Path
    plan: Plan
    submitted: Submitted
    seconds: float
    cancelled: list = field(default_factory=list)  # evaluation jobs of failed pre-trainings, cancelled first

    @property
    def jobs(self) -> list:
        return self.submitted.jobs

    @property
    def arrays(self) -> list[str]:
        ids = {str(j.job_id).split("_")[0] for j in self.submitted.arrays}
        return sorted(ids, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))  # 9 before 11


def launch(sweep, cluster: str = "slurm", env: dict | None = None, smoke: bool = False) -> Launch:
    """Submit a sweep's incomplete cells (one job array per resource group); returns what was done, prints nothing.

    Cells that are complete, or whose last job is still pending or running, are left alone; checks run before
    anything is written or submitted."""
    if cluster not in ("slurm", "debug"):
        raise UserError(f"the SLURM launcher runs clusters slurm and debug, not '{cluster}'")
    if cluster == "slurm":
        check_reachable()
    check_resources(sweep)
    from benchmark.launch.local import write_manifest

    sweep_dir = Path(sweep.out_dir)
    p = plan(sweep, sweep_dir, with_jobs=cluster == "slurm")
    write_manifest(sweep)
    t0 = time.perf_counter()
    cancelled = cancel_orphans(sweep.name, p.orphans)
    submitted = submit(sweep, p.run, cluster, env=env, smoke=smoke) if p.run else Submitted()
    return Launch(sweep_dir, p, submitted, time.perf_counter() - t0, cancelled)


def run_debug_jobs(jobs: list) -> dict[str, str | None]:
    """submitit's debug executor runs each job in this process when asked for its result: job id -> None when
    it succeeded, else the last line of its error."""
    outcome: dict[str, str | None] = {}
    for job in jobs:
        try:
            job.result()
            outcome[str(job.job_id)] = None
        except Exception as exc:  # noqa: BLE001 (one cell's failure is reported, the others go on)
            last = str(exc).strip().splitlines()
            outcome[str(job.job_id)] = last[-1] if last else type(exc).__name__
    return outcome
