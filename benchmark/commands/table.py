"""vssl table: collect a sweep's run directories into a results table."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("table", help="collect a sweep's runs into a results table",
                       description="Read every run directory of a sweep and print one row per method/backbone.")
    p.add_argument("sweep_dir", help="sweep folder (runs/<name>) or a single run directory")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    print_quick_table(Path(args.sweep_dir))
    return 0


def print_quick_table(sweep_dir: Path) -> None:
    from tabulate import tabulate

    from benchmark.results.collect import collect

    df, skipped = collect(sweep_dir)
    for name, reason in skipped:
        print(f"skipped {name}: {reason}")
    metric_cols = [c for c in df.columns if c.endswith((".top1", ".knn_top1", ".knn_acc")) and not c.startswith("cfg.")]
    show = ["cfg.method.name", "cfg.backbone.name", "cfg.run.seed", *sorted(metric_cols)]
    show = [c for c in show if c in df.columns]
    print(tabulate(df[show].sort_values(show[:3]), headers=[c.replace("cfg.", "") for c in show], showindex=False, floatfmt=".1f"))
