"""vssl table: collect a sweep's run directories into a Table-1-style results table."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmark.results import TABLE_FORMATS


def register(sub) -> None:
    p = sub.add_parser(
        "table",
        help="collect a sweep's runs into a Table-1-style results table",
        description="Read every run directory of a sweep: one row per method x backbone x pre-training set, "
        "one column per downstream dataset x protocol, mean ± std over seeds with n and a 95% "
        "interval, the published numbers beside ours. Incomplete and corrupt runs are listed "
        "and skipped.",
    )
    p.add_argument("sweep_dir", help="sweep folder (runs/<name>), a single run directory, or a folder of sweeps")
    p.add_argument("--format", default="terminal", choices=TABLE_FORMATS, help="output format (default terminal)")
    p.add_argument("--out", default=None, help="write the table to this file instead of stdout")
    p.add_argument("--allow-mixed", action="store_true", help="pool runs of different sweeps (refused by default)")
    p.add_argument("--include-incomplete", action="store_true", help="also use the finished stages of incomplete runs")
    p.add_argument(
        "--split-recipes",
        action="store_true",
        help="show runs of one row whose recipes differ (config outside the sweep's axes, e.g. a default changed "
        "between launches) as separate rows instead of refusing to pool them",
    )
    p.add_argument(
        "--baseline",
        default="controls",
        help="method(s) the paired differences are taken against, comma-separated "
        "(default 'controls': each control row present, random_init and random_init_bn; '' for none); "
        "method:field=value picks one variant, e.g. tce:mining_schedule=none for a mining ablation",
    )
    p.add_argument("--n-boot", type=int, default=10000, help="bootstrap replicates of the paired test (default 10000)")
    p.add_argument(
        "--runs-csv", default=None, help="also write the per-run frame (every config field and metric) as CSV"
    )
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from benchmark.errors import UserError
    from benchmark.results.collect import collect
    from benchmark.results.table import build_table, paired_vs_baseline, render
    from benchmark.rundir import harness_owned

    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot} is too few for a 95% interval; use at least 100 (default 10000)")
    for flag, target in (("--runs-csv", args.runs_csv), ("--out", args.out)):
        owned = harness_owned(target) if target else ""
        if owned:
            raise UserError(f"{flag}: {owned}, which vssl table would replace: write the table elsewhere")
    coll = collect(Path(args.sweep_dir), allow_mixed=args.allow_mixed, include_incomplete=args.include_incomplete)
    for name, reason in coll.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if coll.unstarted:
        print(f"note: {coll.unstarted_note()}", file=sys.stderr)
    table = build_table(coll, split_recipes=args.split_recipes)
    # the paired differences follow the terminal and Markdown tables; CSV and LaTeX hold the table alone
    paired = (
        paired_vs_baseline(table, args.baseline, n_boot=args.n_boot)
        if args.baseline and args.format in ("terminal", "md")
        else None
    )
    text = render(table, args.format, paired)
    if args.runs_csv:
        Path(args.runs_csv).parent.mkdir(parents=True, exist_ok=True)  # as --out does
        coll.runs.to_csv(args.runs_csv, index=False)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(table.rows)} rows, {len(coll.runs)} runs)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def print_quick_table(sweep_dir: Path) -> None:
    """The table printed at the end of `vssl sweep --table` (terminal format, paired differences included)."""
    from benchmark.errors import UserError
    from benchmark.results.collect import collect
    from benchmark.results.table import build_table, paired_vs_baseline, render

    try:
        coll = collect(Path(sweep_dir))
        table = build_table(coll)
    except UserError as exc:
        print(f"no table: {exc}")
        return
    for name, reason in coll.skipped:
        print(f"skipped {name}: {reason}")
    if coll.unstarted:
        print(f"note: {coll.unstarted_note()}")
    print(render(table, "terminal", paired_vs_baseline(table)))
