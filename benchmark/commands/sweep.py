"""vssl sweep: expand a sweep file into cells and run them."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a sweep file (grid x zip x seeds), skipping complete cells",
                       description="Expand a sweep file into cells and run every incomplete one. "
                                   "Relaunching is safe: complete cells are skipped, failed or new ones run.")
    p.add_argument("file", help="sweep YAML (see docs/sweeps.md)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every cell (resources.* for resources)")
    p.add_argument("--cluster", default="local", help="local (in process, default) | debug | slurm")
    p.add_argument("--out", default=None, help="sweep folder (default: the file's `out`, else runs/<name>)")
    p.add_argument("--dry-run", action="store_true", help="resolve and check every cell, print them, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--table", action="store_true", help="print the results table when done")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from tabulate import tabulate

    from benchmark.errors import UserError, nearest
    from benchmark.sweeps import load_sweep

    clusters = ("local", "debug", "slurm")
    if args.cluster not in clusters:
        raise UserError(f"unknown cluster '{args.cluster}'{nearest(args.cluster, clusters)}; choose from {', '.join(clusters)}")
    sweep = load_sweep(args.file, args.overrides, args.out)
    if args.dry_run:
        rows = [[c.id, c.label, c.config.method.name, c.config.backbone.name] for c in sweep.cells]
        print(tabulate(rows, headers=["cell", "label", "method", "backbone"]))
        print(f"{len(sweep.cells)} cells, stages {sweep.stages}, out {sweep.out_dir} (dry run: nothing ran)")
        return 0
    if args.cluster != "local":
        from benchmark.launch import slurm  # noqa: F401  (provided by the SLURM launcher)

        return slurm.launch(sweep, args)
    from benchmark.launch.local import run_local

    outcome = run_local(sweep, progress_bar=not args.no_progress)
    failed = {k: v for k, v in outcome.items() if v.startswith("failed")}
    print(f"sweep {sweep.name}: {len(outcome) - len(failed)} of {len(outcome)} cells complete, out {sweep.out_dir}")
    if args.table:
        from benchmark.commands.table import print_quick_table

        print_quick_table(sweep.out_dir)
    return 1 if failed else 0
