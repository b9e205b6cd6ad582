"""vssl evaluate: run downstream protocols on a run directory."""

from __future__ import annotations

import argparse
import sys

from benchmark.commands import overrides_anywhere

PROTOCOL_NAMES = ("linear", "knn", "finetune")


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run directory with a protocol (linear, knn, finetune)",
        description="Evaluate a pre-trained (or random-init) run and add one entry per protocol to its\n"
        "metrics.json (key <protocol>/<dataset>/split<N>; an existing entry of that key is replaced,\n"
        "with a note). Linear probe and kNN share one cached feature pass. last.pt is evaluated only\n"
        "once pre-training has finished.",
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
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides of the run's config (eval.*, data.*, run.*; the trained model's method, backbone and optim stay)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=handle)
    overrides_anywhere(p)


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
    from benchmark.keys import LAST
    from benchmark.registry import METHODS
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
    keys = [o.split("=", 1)[0] for o in extra]
    method_cls = METHODS.get(str(resolved.get("method", {}).get("name", "")))
    allowed = {f"method.{f}" for f in method_cls.eval_only_fields}
    trained = [k for k in keys if k.split(".", 1)[0] in ("method", "backbone", "optim") and k not in allowed]
    if trained:
        raise UserError(
            f"{', '.join(trained)}: the run's trained model comes from its config.yaml; evaluate takes eval.*, data.*, "
            f"run.*{''.join(', ' + a for a in sorted(allowed))} overrides"
        )
    if args.dataset:
        extra.append(f"eval.dataset={args.dataset}")
    if args.split is not None:
        extra.append(f"eval.split={args.split}")
    cfg = build_experiment(merge_overrides(resolved, extra))
    if args.checkpoint == LAST and run.checkpoint_path(LAST).exists() and not run.finished_pretraining():
        raise UserError(
            f"{run.path} has not finished pre-training, so last.pt is not its final checkpoint: rerun the same "
            "`vssl pretrain` or sweep (it resumes), or evaluate a saved intermediate checkpoint (--checkpoint step_N)"
        )
    if not run.checkpoint_path(args.checkpoint).exists():
        have = sorted(p.name for p in (run.path / "checkpoints").glob("*.pt"))
        raise UserError(
            f"no checkpoint {args.checkpoint} in {run.path / 'checkpoints'}"
            f"{nearest(args.checkpoint, have)} (have: {', '.join(have) or 'none; run the pretrain stage first'})"
        )
    from benchmark.evaluation import config_overrides, entry_key, evaluate
    from benchmark.train import check_evaluation_set

    check_evaluation_set(cfg.eval.dataset, cfg.eval.split)
    for name in names:
        key = entry_key(name, cfg, args.checkpoint)
        earlier = key in run.metrics()
        overrides = config_overrides(run, cfg, name)
        if overrides:
            print(
                f"note: {key} is evaluated with {overrides}, not the run's config: tables keep it apart from "
                "entries made with the run's own settings",
                file=sys.stderr,
            )
        entry = evaluate(run, cfg, name, progress_bar=not args.no_progress, checkpoint=args.checkpoint)
        if earlier:  # said once the new entry is written (a failed evaluation replaces nothing)
            print(f"note: replaced {run.path}'s earlier {key} entry", file=sys.stderr)
        print(summary(key, entry))
    return 0
