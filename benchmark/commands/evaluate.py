"""vssl evaluate: run a downstream protocol on a run directory."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run directory with a protocol (linear, knn, finetune)",
                       description="Evaluate a pre-trained (or random-init) run and add the result to its metrics.json.")
    p.add_argument("run_dir", help="run directory written by `vssl pretrain` or a sweep")
    p.add_argument("--protocol", default="linear", help="linear | knn | finetune (default linear)")
    p.add_argument("--dataset", default=None, help="downstream dataset name (default: the run's eval.dataset)")
    p.add_argument("--split", type=int, default=None, help="official split 1-3 (default: the run's eval.split)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of the run's config (eval.*, run.*)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from pathlib import Path

    from benchmark.config import build_experiment, merge_overrides
    from benchmark.errors import UserError
    from benchmark.rundir import CorruptRun, RunDir

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
    from benchmark.evaluation import evaluate

    entry = evaluate(run, cfg, args.protocol, progress_bar=not args.no_progress)
    shown = {k: v for k, v in entry.items() if k.startswith(("top", "knn", "acc")) and isinstance(v, (int, float))}
    print(f"{args.protocol} on {cfg.eval.dataset} split {cfg.eval.split}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    return 0
