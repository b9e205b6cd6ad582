"""vssl evaluate: run downstream protocols on a run directory."""

from __future__ import annotations

import argparse

PROTOCOL_NAMES = ("linear", "knn", "finetune")


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run directory with a protocol (linear, knn, finetune)",
        description="Evaluate a pre-trained (or random-init) run and add one entry per protocol to its "
        "metrics.json (key <protocol>/<dataset>/split<N>). Linear probe and kNN share one "
        "cached feature pass.",
        epilog="examples:\n"
        "  vssl evaluate runs/pretrain/tce-s0 --protocol linear,knn\n"
        "  vssl evaluate RUN --protocol finetune --split 2 eval.finetune_epochs=3\n"
        "  vssl evaluate RUN --protocol linear --checkpoint step_200.pt   # -> ...split1@step_200",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", help="run directory written by `vssl pretrain` or a sweep")
    p.add_argument(
        "--protocol", default="linear", help="linear | knn | finetune, or several separated by commas (default linear)"
    )
    p.add_argument("--dataset", default=None, help="downstream dataset name (default: the run's eval.dataset)")
    p.add_argument("--split", type=int, default=None, help="official split 1-3 (default: the run's eval.split)")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt (default) or step_N.pt from the run's checkpoints/")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides of the run's config (eval.*, run.*)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=handle)
    _overrides_anywhere(p)


def _overrides_anywhere(parser: argparse.ArgumentParser) -> None:
    """Accept key=value overrides after options too (`RUN --protocol knn eval.knn_k=5`): argparse fills a
    '*' positional in the first run of positionals only and calls whatever follows an option unrecognised."""
    plain = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extras = plain(args, namespace)
        late = [a for a in extras if "=" in a and not a.startswith("-")]
        ns.overrides = [*(getattr(ns, "overrides", None) or []), *late]
        return ns, [a for a in extras if a not in late]

    parser.parse_known_args = parse_known_args  # the subparsers action calls this


def summary(name: str, entry: dict) -> str:
    """One line: the numbers a table would show, plus what the run cost and skipped."""
    keys = [k for k in entry if k.startswith(("top", "r@")) and isinstance(entry[k], (int, float))]
    shown = [f"{k}={entry[k]}" for k in keys]
    if entry.get("selected_epoch") is not None:
        shown.append(f"selected epoch {entry['selected_epoch']}/{entry.get('epochs')}")
    if entry.get("skipped_videos"):
        shown.append(f"{entry['skipped_videos']} undecodable videos skipped")
    return f"{name}: " + ", ".join(shown) + f" ({entry.get('wall_s')} s)"


def handle(args) -> int:
    from pathlib import Path

    from benchmark.config import build_experiment, merge_overrides
    from benchmark.errors import UserError, nearest
    from benchmark.rundir import CorruptRun, RunDir

    names = [n.strip() for n in args.protocol.split(",") if n.strip()]
    for name in names or [args.protocol]:
        if name not in PROTOCOL_NAMES:
            raise UserError(
                f"unknown protocol '{name}'{nearest(name, PROTOCOL_NAMES)}; choose from {', '.join(PROTOCOL_NAMES)}"
            )
    run = RunDir(Path(args.run_dir))
    if not (run.path / "config.yaml").exists():
        raise UserError(f"{run.path} is not a run directory (no config.yaml)")
    try:
        resolved = run.config()
    except CorruptRun as exc:
        raise UserError(str(exc)) from None
    extra = list(args.overrides)
    if args.dataset:
        extra.append(f"eval.dataset={args.dataset}")
    if args.split is not None:
        extra.append(f"eval.split={args.split}")
    cfg = build_experiment(merge_overrides(resolved, extra))
    if not run.checkpoint_path(args.checkpoint).exists():
        have = sorted(p.name for p in (run.path / "checkpoints").glob("*.pt"))
        raise UserError(
            f"no checkpoint {args.checkpoint} in {run.path / 'checkpoints'}"
            f"{nearest(args.checkpoint, have)} (have: {', '.join(have) or 'none; run the pretrain stage first'})"
        )
    from benchmark.evaluation import entry_key, evaluate

    for name in names:
        entry = evaluate(run, cfg, name, progress_bar=not args.no_progress, checkpoint=args.checkpoint)
        print(summary(entry_key(name, cfg, args.checkpoint), entry))
    return 0
