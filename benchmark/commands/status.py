"""vssl status SWEEP_DIR: where every cell of a sweep stands, from any shell, days later.

Reads only the sweep folder (sweep.json, jobs.json, each cell's metrics.json,
env.json, error.txt and the tail of scalars.jsonl) and asks SLURM once
(``sacct`` for all job arrays) about the jobs jobs.json recorded. No torch
import: it answers in well under a second for 1,000 cells.

States: done (every stage has its metrics), running, pending (queued or
requeued), failed (with the last lines of the error), interrupted (started,
no live job, no error: relaunch to resume), missing (never started).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

STATES = ("done", "running", "pending", "failed", "interrupted", "missing")


def register(sub) -> None:
    p = sub.add_parser(
        "status",
        help="table of a sweep's cells: done / running / pending / failed, requeues",
        description="One row per cell of a sweep folder (runs/<name>): its state, SLURM job, requeue count "
        "and training step; the last lines of the error of each failed cell.",
    )
    p.add_argument("sweep_dir", help="sweep folder (runs/<name>)")
    p.add_argument("--lines", type=int, default=3, help="last lines of each failed cell's error to show (default 3)")
    p.add_argument("--only", choices=STATES, action="append", help="show only cells in this state (repeatable)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(handler=handle)


@dataclass
class CellStatus:
    cell_id: str
    label: str
    state: str
    job_id: str = ""
    slurm_state: str = ""
    requeues: int = 0
    step: int | None = None
    stage: str = ""  # of the last logged step
    error: list[str] = field(default_factory=list)


def handle(args) -> int:
    rows = sweep_status(Path(args.sweep_dir), error_lines=max(1, args.lines))
    if args.only:
        rows = [r for r in rows if r.state in args.only]
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return 0
    print_status(rows)
    return 0


# --------------------------------------------------------------------------- reading a sweep folder
def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # corrupt


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


def _required(cell_dir: Path, entry: dict) -> list[str] | None:
    if "required" in entry:
        return list(entry["required"])
    from benchmark.rundir import CorruptRun, RunDir  # older manifests: read the run's config

    try:
        return RunDir(cell_dir).required_stages() or None
    except CorruptRun:
        return None


def sweep_status(sweep_dir: Path, error_lines: int = 3, query=None) -> list[CellStatus]:
    """One CellStatus per cell in sweep.json (and any other cells/ folder). ``query``: job ids -> states (tests)."""
    from benchmark.errors import UserError
    from benchmark.launch.slurm import LIVE_STATES, PENDING_STATES, job_log, query_states, read_jobs

    sweep_dir = Path(sweep_dir)
    manifest = _read_json(sweep_dir / "sweep.json")
    if manifest is None:
        raise UserError(f"{sweep_dir / 'sweep.json'} does not parse")
    if not manifest and not (sweep_dir / "cells").is_dir():
        raise UserError(f"{sweep_dir} is not a sweep folder (no sweep.json and no cells/): pass runs/<name>")
    cells: dict = dict(manifest.get("cells", {}))
    if (sweep_dir / "cells").is_dir():
        for d in sorted((sweep_dir / "cells").iterdir()):
            cells.setdefault(d.name, {"label": "(not in sweep.json)"})
    jobs = read_jobs(sweep_dir)["cells"]
    ids = [j["job_id"] for j in jobs.values() if j.get("cluster") == "slurm"]
    states = (query or query_states)(ids) if ids else {}

    rows = []
    for cid, entry in cells.items():
        d = sweep_dir / "cells" / cid
        row = CellStatus(cid, str(entry.get("label", "")), "missing")
        job = jobs.get(cid, {})
        row.job_id = job.get("job_id", "")
        st = states.get(row.job_id)
        row.slurm_state = st.state if st else ""
        env = _read_json(d / "env.json") or {}
        row.requeues = max(int(env.get("requeues", 0) or 0), st.requeues if st else 0)
        row.stage, row.step = _last_step(d / "scalars.jsonl")
        metrics = _read_json(d / "metrics.json")
        required = _required(d, entry)
        error_file = d / "error.txt"
        if metrics is None:
            row.state, row.error = "failed", [f"{d / 'metrics.json'} does not parse (corrupt run)"]
        elif required and all(k in metrics for k in required):
            row.state = "done"
        elif st and st.state in LIVE_STATES:
            row.state = "pending" if st.state in PENDING_STATES else "running"
        elif st and st.state != "COMPLETED":  # FAILED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, ...
            row.state = "failed"
            if st.state == "FAILED" and error_file.exists():
                row.error = _tail_lines(error_file, error_lines)
            else:
                row.error = [
                    f"SLURM: {st.state} (exit {st.exit_code})",
                    *_tail_lines(job_log(job["folder"], row.job_id), error_lines),
                ]
        elif error_file.exists():
            row.state, row.error = "failed", _tail_lines(error_file, error_lines)
        elif st:  # COMPLETED, yet stages are missing
            row.state = "failed"
            missing = [k for k in (required or []) if k not in metrics]
            row.error = [f"job {row.job_id} completed but stages are missing: {', '.join(missing)}"]
        elif (d / "config.yaml").exists():
            row.state = "interrupted"
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- printing
def print_status(rows: list[CellStatus]) -> None:
    from tabulate import tabulate

    table = [
        [
            r.cell_id,
            r.state,
            r.job_id or "-",
            r.slurm_state or "-",
            r.requeues,
            "-" if r.step is None else f"{r.stage} {r.step}".strip(),
            r.label,
        ]
        for r in rows
    ]
    print(tabulate(table, headers=["cell", "state", "job", "slurm", "requeues", "last step", "label"]))
    for r in rows:
        if r.state == "failed" and r.error:
            print(f"\n{r.cell_id} ({r.label}) failed" + (f" [job {r.job_id}]" if r.job_id else "") + ":")
            for line in r.error:
                print("    " + line)
    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    print(f"\n{len(rows)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
