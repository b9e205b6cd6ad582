"""vssl report: the table in every format, the figures and a README with protocol and provenance."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a sweep's tables, figures and README (protocol, provenance)",
        description="Collect a sweep and write, into one folder: README.md (the table, paired differences "
        "vs random init, figures, the protocol of every column, provenance: git commit, each "
        "row's config, hardware, wall time), table.md/.txt/.tex/.csv, runs.csv, figures/.",
    )
    p.add_argument("sweep_dir", help="sweep folder (runs/<name>) or a single run directory")
    p.add_argument("--out", default=None, help="output folder (default SWEEP_DIR/report), e.g. results/table1-mini")
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
        help="method(s) for the paired differences, comma-separated, e.g. random_init,supervised "
        "(default 'controls': each control row present, random_init and random_init_bn; '' for none); "
        "method:field=value picks one variant, e.g. tce:mining_schedule=none for a mining ablation",
    )
    p.add_argument(
        "--ablation-axes",
        default=None,
        help="comma-separated config fields that name a hard-negative setting "
        "(default: TCE's method.mining_* fields and method.max_hard_fraction; only varying ones are used)",
    )
    p.add_argument("--n-boot", type=int, default=10000, help="bootstrap replicates of the paired test (default 10000)")
    p.add_argument("--no-figures", action="store_true", help="tables and README only")
    p.add_argument(
        "--summary",
        default=None,
        metavar="FILE",
        help="a Markdown file with your findings (what the table shows, what is missing), placed under "
        "the README's title so that regenerating the report keeps it (default: OUT/summary.md when it exists; "
        "--summary '' leaves the findings out)",
    )
    p.set_defaults(handler=handle)


def handle(args) -> int:
    import sys
    from pathlib import Path

    from benchmark.errors import UserError
    from benchmark.results.report import ReportOptions, parse_axes, report_folder, write_report

    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot} is too few for a 95% interval; use at least 100 (default 10000)")

    summary = ""
    out = report_folder(Path(args.sweep_dir), args.out)
    if args.summary is None and (out / "summary.md").is_file():  # regenerating a report keeps its findings
        args.summary = str(out / "summary.md")
        print(f"note: the findings come from {args.summary} (--summary '' leaves them out)", file=sys.stderr)
    if args.summary:
        path = Path(args.summary)
        if path.is_dir():
            raise UserError(f"--summary {path} is a folder: give the Markdown file of the findings")
        if not path.is_file():
            raise UserError(f"--summary file not found: {path}")
        try:
            summary = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"--summary {path} is not UTF-8 text (byte {exc.start})") from None
    opts = ReportOptions(
        out_dir=Path(args.out) if args.out else None,
        allow_mixed=args.allow_mixed,
        include_incomplete=args.include_incomplete,
        split_recipes=args.split_recipes,
        baseline=args.baseline,
        ablation_axes=parse_axes(args.ablation_axes),
        figures=not args.no_figures,
        n_boot=args.n_boot,
        summary=summary,
    )
    readme = write_report(Path(args.sweep_dir), opts)
    print(f"wrote {readme} and the tables and figures beside it", file=sys.stderr)
    return 0
