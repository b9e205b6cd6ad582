"""Time reading 1,000 generated run directories into the Table-1 table (goal: under 2 s).

Generates a sweep folder of fake but complete run directories (written with
the RunDir API: config.yaml, env.json, scalars.jsonl, metrics.json with linear
and kNN entries carrying per-video results), then times ``vssl table``'s work:
collect every run into the DataFrame, build the table, render it. The paired
bootstrap against random init is timed separately (it is the report's work).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

GOAL_S = 2.0
METHODS = ("random_init", "tce", "shuffle_learn", "arrow_of_time", "dpc", "vcop", "opn", "rotnet3d", "supervised")
LRS = (1e-3, 3e-4, 1e-4, 3e-3)


def add_arguments(p) -> None:
    p.add_argument("--runs", type=int, default=1000, help="run directories to generate (default 1000)")
    p.add_argument("--videos", type=int, default=300, help="test videos per evaluation entry (default 300)")
    p.add_argument("--repeats", type=int, default=3, help="timed collections; the median is reported (default 3)")
    p.add_argument("--n-boot", type=int, default=2000, help="replicates for the timed paired bootstrap (default 2000)")
    p.add_argument("--dir", default=None, help="generate here (kept) instead of a temporary folder")


def generate(root: Path, n: int, videos: int) -> None:
    """n runs: 9 methods x 4 learning rates per seed, seeds 0, 1, 2, ... until n runs exist."""
    import itertools

    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    cells = (
        (seed, m, lr) for seed in itertools.count() for m in METHODS for lr in LRS
    )  # product() would exhaust count()
    specs = [
        FakeRun(
            method=m,
            seed=seed,
            accuracy=0.25 + 0.03 * METHODS.index(m),
            test_videos=videos,
            overrides={"optim.lr": lr},
            sweep="bench-collect",
        )
        for seed, m, lr in itertools.islice(cells, n)
    ]
    write_fake_sweep(root, specs, name="bench-collect")


def time_table(root: Path) -> tuple[float, float, int, int]:
    """(wall s, CPU s of this process, runs, table rows) of collect + build + render."""
    from benchmark.results.collect import collect
    from benchmark.results.table import build_table, render

    t0, c0 = time.perf_counter(), time.process_time()
    coll = collect(root)
    table = build_table(coll)
    render(table, "terminal")
    return time.perf_counter() - t0, time.process_time() - c0, len(coll.runs), len(table.rows)


def run(args) -> int:
    if args.runs < 1:
        from benchmark.errors import UserError

        raise UserError("--runs must be at least 1")
    import pandas  # noqa: F401  (imported before timing: import cost is not collection cost)
    import tabulate  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="vssl-bench-collect-") as tmp:
        root = Path(args.dir) if args.dir else Path(tmp) / "sweep"
        t0 = time.perf_counter()
        reused = (root / "sweep.json").exists()
        if not reused and root.exists() and (not root.is_dir() or any(root.iterdir())):
            from benchmark.errors import UserError

            raise UserError(f"--dir {root} is not empty and no earlier `vssl bench collect` wrote it: give a new or "
                            "empty folder")  # fmt: skip
        if not reused:
            generate(root, args.runs, args.videos)
        gen_s = None if reused else time.perf_counter() - t0
        load_before = os.getloadavg()[0]
        times, cpu = [], []
        for _ in range(max(1, args.repeats)):
            s, c, n_runs, n_rows = time_table(root)
            times.append(s)
            cpu.append(c)
        from benchmark.results.collect import collect
        from benchmark.results.table import build_table, paired_vs_baseline

        table = build_table(collect(root))
        t0 = time.perf_counter()
        paired = paired_vs_baseline(table, n_boot=args.n_boot)
        paired_s = time.perf_counter() - t0
    median = statistics.median(times)
    figures = {
        "runs": n_runs,
        "table_rows": n_rows,
        "test_videos_per_entry": args.videos,
        "collect_table_s_median": round(median, 3),
        "collect_table_s_all": [round(t, 3) for t in times],
        "collect_table_cpu_s_median": round(statistics.median(cpu), 3),
        "load_average_1min_before": round(load_before, 2),
        "cpu_count": os.cpu_count(),
        "goal_s": GOAL_S,
        "meets_goal": median < GOAL_S,
        "generate_s": None if gen_s is None else round(gen_s, 2),
        "paired_bootstrap_s": round(paired_s, 3),
        "paired_bootstrap_replicates": args.n_boot,
        "paired_comparisons": len(paired),
    }
    print(
        f"collected {n_runs} run directories into a {n_rows}-row table in {median:.2f} s "
        f"(median of {len(times)}; goal < {GOAL_S:.0f} s: {'met' if median < GOAL_S else 'NOT met'}); "
        f"CPU {statistics.median(cpu):.2f} s; load average {load_before:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        ("generation reused " + str(root) if gen_s is None else f"generation {gen_s:.1f} s")
        + f"; paired bootstrap ({args.n_boot:,} replicates) of {len(paired)} comparisons {paired_s:.2f} s"
    )
    if getattr(args, "record", False):
        record("collect", figures)
    return 0 if median < GOAL_S else 1


def record(name: str, figures: dict) -> None:
    import platform

    from benchmark.rundir import atomic_write_text, git_state

    out = Path.cwd() / "results" / "perf"
    from benchmark.device import cpu_features

    meta = {
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        **cpu_features(),
        **git_state(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(out / f"{name}.json", json.dumps({**figures, **meta}, indent=2) + "\n")
    lines = [
        f"# vssl bench {name}",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpu_count']} CPUs: {meta['cpu_model']}, "
        f"flags {' '.join(meta['cpu_flags']) or 'none of interest'}), commit {meta['git_commit']}.",
        "",
        "| figure | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in figures.items()]
    atomic_write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print(f"recorded results/perf/{name}.json and .md")
