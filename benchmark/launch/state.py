"""Where a sweep cell stands: the one rule behind `vssl status`, local relaunches and SLURM relaunches.

Reads only the cell's folder (metrics.json, env.json, error.txt and the tail of scalars.jsonl) and, when
the cell has a SLURM job, that job's state. No torch import: `vssl status` answers in well under a second
for 1,000 cells.

States: done (every required metrics key is written), running, pending (queued or requeued), failed (with
the last lines of the error), interrupted (started, no live job, no error: relaunch to resume), missing
(never started). A launcher (re)runs a cell exactly when :func:`needs_run` says so.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import UserError
from benchmark.launch.slurm import (
    LIVE_STATES,
    PENDING_STATES,
    JobState,
    SlurmUnreadable,
    job_log,
    query_states,
    read_jobs,
)
from benchmark.rundir import CONFIG, ENV, METRICS, SCALARS, CorruptRun, config_text, metrics_problem, missing_keys

# corrupt: every stage has its metrics but the run's config.yaml cannot be read; a relaunch would skip every
# stage and never rewrite it, so it is left alone (tables skip it): fix or remove the cell folder
STATES = ("done", "running", "pending", "failed", "interrupted", "missing", "corrupt")
ERROR = "error.txt"


@dataclass
class CellState:
    cell_id: str
    label: str
    state: str  # one of STATES
    job_id: str = ""
    job_part: str = ""  # a DDP cell split in two: which of its jobs job_id is ("pre-training" or "evaluation")
    slurm_state: str = ""
    requeues: int = 0
    step: int | None = None
    stage: str = ""  # of the last logged step
    error: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state in ("running", "pending")


def needs_run(state: CellState) -> bool:
    """A launch (re)runs failed, interrupted and missing cells; done and live ones are left alone."""
    return state.state in ("failed", "interrupted", "missing")


def cell_state(
    cell_dir: Path,
    required: list[str] | None,
    cell_id: str = "",
    label: str = "",
    job: dict | None = None,
    job_state: JobState | None = None,
    error_lines: int = 3,
) -> CellState:
    """The state of one cell folder, given the metrics keys that complete it and its last SLURM job (if any)."""
    d = Path(cell_dir)
    job = job or {}
    st = job_state
    row = CellState(
        cell_id or d.name, label, "missing", job.get("job_id", ""), job.get("part", ""), st.state if st else ""
    )
    env = _read_json(d / ENV) or {}
    row.requeues = max(int(env.get("requeues", 0) or 0), st.requeues if st else 0)
    row.stage, row.step = _last_step(d / SCALARS)
    metrics = _read_json(d / METRICS)
    # a figure edited by hand into text (or an entry that is not an object): corrupt, as `vssl table` calls it
    problem = metrics_problem(metrics) if isinstance(metrics, dict) else ""
    required = required if required is not None else _required_from_config(d)
    error_file = d / ERROR
    if metrics is None and st and st.state in LIVE_STATES:  # never "failed" while its job runs: that resubmits it
        row.state = "pending" if st.state in PENDING_STATES else "running"
        row.error = [f"{d / METRICS} does not parse (corrupt run)"]
    elif metrics is None:
        row.state, row.error = "failed", [f"{d / METRICS} does not parse (corrupt run)"]
    elif problem:
        row.state, row.error = (
            "corrupt",
            [f"{d / METRICS}: {problem}: tables skip it; remove the cell folder to rerun it"],
        )
    elif required and not missing_keys(metrics, required) and (bad := _unreadable_config(d / CONFIG)):
        row.state, row.error = "corrupt", [f"{bad}: tables skip it; remove the cell folder to rerun it"]
    elif required and not missing_keys(metrics, required):
        row.state = "done"
    elif st and st.state in LIVE_STATES:
        row.state = "pending" if st.state in PENDING_STATES else "running"
    elif st and st.state != "COMPLETED":  # FAILED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, ...
        row.state = "failed"
        if st.state == "FAILED" and error_file.exists():
            row.error = _tail_lines(error_file, error_lines)
        elif st.state == "CANCELLED":  # its log's last lines are the kill's side effects (a DataLoader worker killed)
            row.error = [f"SLURM: CANCELLED (exit {st.exit_code}): cancelled by scancel or an administrator, not a "
                         "failure of the run; a relaunch resubmits it and it resumes from its last checkpoint"]  # fmt: skip
        else:
            log = _tail_lines(job_log(job["folder"], row.job_id), error_lines) if job.get("folder") else []
            row.error = [f"SLURM: {st.state} (exit {st.exit_code})", *log]
    elif error_file.exists():
        row.state, row.error = "failed", _tail_lines(error_file, error_lines)
    elif st:  # COMPLETED, yet stages are missing
        row.state = "failed"
        row.error = [
            f"job {row.job_id} completed but stages are missing: {', '.join(missing_keys(metrics, required or []))}"
        ]
    elif (d / CONFIG).exists():
        row.state = "interrupted"
    if any(TIMED_OUT_TOO_OFTEN in line for line in row.error):  # submitit's traceback: say what to change
        row.error = ["timed out more often than resources.max_requeues allows: each attempt resumed from its "
                     "checkpoint, and the cell needs more time than the attempts gave it; relaunch with a larger "
                     "resources.timeout_min (or max_requeues): it resumes", *row.error[-1:]]  # fmt: skip
    return row


# the end of submitit's traceback when a job that timed out once more has no requeue left (slurm_max_num_timeout)
TIMED_OUT_TOO_OFTEN = "timed-out too many times"


def sweep_status(sweep_dir: Path, error_lines: int = 3, query=None) -> list[CellState]:
    """One CellState per cell in sweep.json (and any other cells/ folder). ``query``: job ids -> states (tests)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.exists():
        raise UserError(f"{sweep_dir} does not exist: pass a sweep folder (runs/<name>, or the sweep's `out:`)")
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is a file: pass a sweep folder (runs/<name>), not the sweep's YAML")
    manifest = _read_json(sweep_dir / "sweep.json")
    if manifest is None:
        raise UserError(f"{sweep_dir / 'sweep.json'} does not parse")
    if not manifest and not (sweep_dir / "cells").is_dir():
        raise UserError(f"{sweep_dir} is not a sweep folder (no sweep.json and no cells/): pass runs/<name>")
    cells = manifest.get("cells", {})
    if not isinstance(cells, dict) or not all(isinstance(e, dict) for e in cells.values()):
        raise UserError(f"{sweep_dir / 'sweep.json'}: 'cells' should map cell ids to their entries")
    cells = dict(cells)
    if (sweep_dir / "cells").is_dir():
        for d in sorted((sweep_dir / "cells").iterdir()):
            cells.setdefault(d.name, {"label": "(not in sweep.json)"})
    jobs = read_jobs(sweep_dir)["cells"]
    try:
        states = job_states(jobs, query)
    except SlurmUnreadable as exc:  # the run directories still say what is done; the jobs' states are unknown
        print(f"warning: SLURM job states unknown ({exc}): a cell shown interrupted may be queued or running",
              file=sys.stderr)  # fmt: skip
        states = {}
    rows = []
    for cid, entry in cells.items():
        job, state = current_job(jobs.get(cid, {}), states, sweep_dir / "cells" / cid)
        required = list(entry["required"]) if "required" in entry else None
        rows.append(
            cell_state(sweep_dir / "cells" / cid, required, cid, str(entry.get("label", "")), job, state, error_lines)
        )
    return rows


def job_states(jobs: dict, query=None) -> dict[str, JobState]:
    """SLURM states of the jobs jobs.json recorded (one squeue + one sacct call for all of them)."""
    ids = [
        j[k] for j in jobs.values() if j.get("cluster") == "slurm" for k in ("job_id", "pretrain_job_id") if j.get(k)
    ]
    return (query or query_states)(ids) if ids else {}


def current_job(job: dict, states: dict[str, JobState], cell_dir: Path) -> tuple[dict, JobState | None]:
    """A cell's jobs.json record, as the job that says where the cell stands, and that job's state.

    For a DDP cell split in two (benchmark.launch.slurm.job_parts) that is the pre-training job while it is queued
    or running, and also when it ended without finishing pre-training (failed, killed, cancelled: its traceback or
    SLURM's reason is the cell's error; the evaluation job it leaves can only fail); otherwise the evaluation job.
    The record returned says which in ``part`` and keeps the evaluation job's id in ``evaluation_job_id``."""
    pretrain_id = job.get("pretrain_job_id", "")
    pretrain = states.get(pretrain_id)
    if pretrain is not None and (
        pretrain.state in LIVE_STATES
        or (pretrain.state != "COMPLETED" and "pretrain" not in (_read_json(Path(cell_dir) / METRICS) or {}))
    ):
        return {**job, "job_id": pretrain_id, "part": "pre-training", "evaluation_job_id": job["job_id"]}, pretrain
    return job, states.get(job.get("job_id", ""))


# --------------------------------------------------------------------------- reading a cell folder
def _read_json(path: Path) -> dict | None:
    """{} when absent, None when corrupt."""
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _tail_lines(path: Path, n: int, max_bytes: int = 16384) -> list[str]:
    """Last ``n`` non-empty lines of a text file, reading only its end."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-n:]


def _last_step(path: Path) -> tuple[str, int | None]:
    """(stage, step) of the last whole line of scalars.jsonl."""
    for line in reversed(_tail_lines(path, 3, 4096)):
        try:
            rec = json.loads(line)
            return str(rec.get("stage", "")), int(rec.get("step"))
        except (ValueError, TypeError, AttributeError):
            continue  # a line cut by a kill
    return "", None


def _unreadable_config(path: Path) -> str:
    """Why a finished run's config.yaml cannot be read ('' when it can). No YAML parse: status reads 1,000 cells in
    about a second."""
    try:
        config_text(path)
    except FileNotFoundError:
        return f"{path} is missing"
    except CorruptRun as exc:
        return str(exc)
    return ""


def _required_from_config(cell_dir: Path) -> list[str] | None:
    """Older manifests carry no required keys: read them from the run's config."""
    from benchmark.rundir import RunDir

    try:
        return RunDir(cell_dir).required_stages() or None
    except CorruptRun:
        return None
