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
from pathlib import Path

from benchmark.launch.state import STATES, CellState, sweep_status


def register(sub) -> None:
    p = sub.add_parser(
        "status",
        help="table of a sweep's cells: done / running / pending / failed, requeues",
        description="One row per cell of a sweep folder (runs/<name>): its state, SLURM job, requeue count "
        "and training step; the last lines of the error of each failed cell. SLURM states come from one squeue and "
        "one sacct call (when the sweep was submitted to SLURM); local cells are read from their folders. A DDP cell "
        "on SLURM is two jobs: the row names the one it shows, '(pre-training)' or '(evaluation)'.",
    )
    p.add_argument("sweep_dir", help="sweep folder (runs/<name>)")
    p.add_argument("--lines", type=int, default=3, help="last lines of each failed cell's error to show (default 3)")
    p.add_argument("--only", choices=STATES, action="append", help="show only cells in this state (repeatable)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    if args.lines < 1:
        from benchmark.errors import UserError

        raise UserError(f"--lines {args.lines}: show at least 1 line of each failed cell's error")
    rows = sweep_status(Path(args.sweep_dir), error_lines=args.lines)
    if args.only:
        rows = [r for r in rows if r.state in args.only]
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return 0
    print_status(rows)
    return 0


# --------------------------------------------------------------------------- printing
def print_status(rows: list[CellState]) -> None:
    from tabulate import tabulate

    table = [
        [
            r.cell_id,
            r.state,
            f"{r.job_id} ({r.job_part})" if r.job_part else r.job_id or "-",
            r.slurm_state or "-",
            r.requeues,
            "-" if r.step is None else f"{r.stage} {r.step}".strip(),
            r.label,
        ]
        for r in rows
    ]
    print(tabulate(table, headers=["cell", "state", "job", "slurm", "requeues", "last step", "label"]))
    for r in rows:
        if r.state in ("failed", "corrupt") and r.error:
            job = f" [{r.job_part} job {r.job_id}]" if r.job_part else f" [job {r.job_id}]" if r.job_id else ""
            print(f"\n{r.cell_id} ({r.label}) {r.state}{job}:")
            for line in r.error:
                print("    " + line)
    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    print(f"\n{len(rows)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
