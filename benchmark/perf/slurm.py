"""Time `vssl status` on 1,000 generated cells (goal < 3 s, start-up included) and submitting a 100-cell sweep.

Status: a generated sweep folder (sweep.json, jobs.json naming one job array,
1,000 run directories in mixed states: done, failed with a traceback,
interrupted, missing), timed as a fresh ``python -m benchmark status``
process, so interpreter start-up and imports count. Submission: ``vssl sweep
--cluster slurm`` of 100 random-init cells through the real sbatch (needs a
reachable SLURM, e.g. scripts/slurm_up.sh); the jobs are cancelled right after.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STATUS_GOAL_S = 3.0
SUBMIT_GOAL_S = 10.0  # for the submission itself (map_array + sbatch), start-up excluded


def add_arguments(p) -> None:
    p.add_argument(
        "--cells", type=int, default=1000, help="cells of the generated sweep for `vssl status` (default 1000)"
    )
    p.add_argument("--submit-cells", type=int, default=100, help="cells submitted to SLURM (default 100; 0 skips)")
    p.add_argument(
        "--repeats", type=int, default=3, help="timed `vssl status` runs; the median is reported (default 3)"
    )


def generate(root: Path, n: int) -> None:
    """n cells: 70% done, 10% failed, 10% interrupted, 10% missing; all in one (unknown) job array."""
    cells, jobs = {}, {}
    required = ["pretrain", "linear/ucf101/split1"]
    (root / "cells").mkdir(parents=True)
    for i in range(n):
        cid = f"{i:010x}"
        cells[cid] = {
            "label": f"lr={i % 7} seed={i // 7}",
            "overrides": {"optim.lr": i % 7, "run.seed": i // 7},
            "required": required,
        }
        jobs[cid] = {
            "job_id": f"999999_{i}",
            "folder": str(root / "slurm" / "x" / "%j"),
            "cluster": "slurm",
            "submissions": 1,
        }
        kind = i % 10
        if kind == 9:
            continue  # missing: never started
        d = root / "cells" / cid
        d.mkdir()
        (d / "config.yaml").write_text("run: {stages: [pretrain, linear]}\neval: {dataset: ucf101, split: 1}\n")
        (d / "env.json").write_text(json.dumps({"seed": i, "requeues": i % 3}))
        (d / "scalars.jsonl").write_text(
            "".join(json.dumps({"stage": "pretrain", "step": s, "loss": 1.0}) + "\n" for s in range(10, 210, 10))
        )
        metrics = {"pretrain": {"steps": 200, "final_loss": 1.0}}
        if kind < 7:
            metrics["linear/ucf101/split1"] = {"top1": 50.0, "per_video_correct": [1, 0] * 500}
        elif kind == 7:
            (d / "error.txt").write_text(
                "Traceback (most recent call last):\n" + "  File x, line 1\n" * 30 + "RuntimeError: loss is nan\n"
            )
        (d / "metrics.json").write_text(json.dumps(metrics))
    (root / "sweep.json").write_text(json.dumps({"name": "bench-status", "cells": cells}))
    (root / "jobs.json").write_text(json.dumps({"cells": jobs, "submissions": []}))


def time_status(root: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmark", "status", str(root)], capture_output=True, text=True, timeout=120
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"vssl status failed: {out.stderr.strip()}")
    return wall, out.stdout.strip().splitlines()[-1]


def time_submit(tmp: Path, n: int) -> dict:
    """Submit n random-init cells with `vssl sweep --cluster slurm`; cancel them; the command's wall time."""
    import yaml

    spec = {
        "name": "bench-submit",
        "base": {"method": {"name": "random_init"}, "run": {"device": "cpu"}},
        "grid": {"optim.lr": [round(1e-4 * (i + 1), 6) for i in range(n)]},
        "stages": ["pretrain"],
        "resources": {"timeout_min": 5, "cpus_per_task": 1, "mem_gb": 1},
    }
    f, out_dir = tmp / "submit.yaml", tmp / "submit"
    f.write_text(yaml.safe_dump(spec))
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmark", "sweep", str(f), "--cluster", "slurm", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall = time.perf_counter() - t0
    arrays = []
    if (out_dir / "jobs.json").exists():
        arrays = sorted(
            {j["job_id"].split("_")[0] for j in json.loads((out_dir / "jobs.json").read_text())["cells"].values()}
        )
        subprocess.run(["scancel", *arrays], capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"vssl sweep failed: {out.stderr.strip()}")
    m = re.search(r"submitted (\d+) cells as (\d+) job array\(s\).* in ([\d.]+) s", out.stdout)
    # what the command spends before it can submit: importing the method registry and backbones (torch, timm)
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from benchmark.registry import load_plugins; load_plugins(); import benchmark.backbones",
        ],
        check=True,
        timeout=300,
    )
    imports = time.perf_counter() - t0
    return {
        "submit_cells": n,
        "submit_command_wall_s": round(wall, 2),
        "submit_job_arrays": int(m.group(2)) if m else None,
        "submit_sbatch_s": float(m.group(3)) if m else None,
        "submit_sbatch_calls": len(arrays),
        "submit_imports_alone_s": round(imports, 2),
    }


def run(args) -> int:
    from benchmark.errors import UserError

    if args.cells < 1:
        raise UserError("--cells must be at least 1")
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="vssl-bench-slurm-") as tmp:
        root = Path(tmp) / "status"
        generate(root, args.cells)
        load_before = os.getloadavg()[0]
        times, summary = [], ""
        for _ in range(max(1, args.repeats)):
            wall, summary = time_status(root)
            times.append(wall)
        median = statistics.median(times)
        figures.update(
            {
                "status_cells": args.cells,
                "status_wall_s_median": round(median, 3),
                "status_wall_s_all": [round(t, 3) for t in times],
                "status_goal_s": STATUS_GOAL_S,
                "status_meets_goal": median < STATUS_GOAL_S,
                "status_summary": summary,
            }
        )
        print(
            f"vssl status on {args.cells} cells: {median:.2f} s wall incl. start-up (median of {len(times)}; "
            f"goal < {STATUS_GOAL_S:.0f} s: {'met' if median < STATUS_GOAL_S else 'NOT met'}); {summary}"
        )
        ok = median < STATUS_GOAL_S
        if args.submit_cells > 0:
            from benchmark.launch.slurm import check_reachable

            try:
                check_reachable()
            except UserError as exc:
                print(f"submission: skipped ({exc})")
                figures["submit"] = f"skipped: {exc}"
            else:
                sub = time_submit(Path(tmp), args.submit_cells)
                figures.update(sub, submit_goal_s=SUBMIT_GOAL_S)
                print(
                    f"submitting {sub['submit_cells']} cells: {sub['submit_command_wall_s']:.1f} s for the whole command "
                    f"(importing torch/timm and the methods alone: {sub['submit_imports_alone_s']:.1f} s); submission itself "
                    f"{sub['submit_sbatch_s']} s, {sub['submit_sbatch_calls']} job array(s); cancelled afterwards"
                )
                # the goal is on submission (one array, not 100 sbatch calls); start-up is torch's import
                ok = ok and (sub["submit_sbatch_s"] or 1e9) < SUBMIT_GOAL_S and sub["submit_sbatch_calls"] == 1
        figures.update({"load_average_1min_before": round(load_before, 2), "cpu_count": os.cpu_count()})
    if getattr(args, "record", False):
        from benchmark.perf.collect import record

        record("slurm", figures)
        with open(Path.cwd() / "results" / "perf" / "slurm.md", "a") as f:
            f.write(NOTES)
    return 0 if ok else 1


NOTES = """
`status_wall_s`: a fresh `python -m benchmark status` process on the generated sweep folder (start-up and
imports included; no torch import; one `squeue` and one `sacct` call for the job array the cells name).
`submit_command_wall_s`: the whole `vssl sweep --cluster slurm` command for 100 random-init cells against
the local SLURM of scripts/slurm_up.sh; `submit_sbatch_s` is the part spent pickling the 100 cells and
submitting them (one `sbatch`: one job array); the rest is loading the method registry and backbones
(torch, torchvision, timm), measured alone as `submit_imports_alone_s`. The machine was shared and loaded
(`load_average_1min_before`), so absolute times are pessimistic.
"""
