"""vssl pretrain: pre-train one method into a run directory."""

from __future__ import annotations

import sys

from benchmark.commands import overrides_anywhere


def register(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pre-train a registered method (resumes a run directory of the same settings)",
        description="Pre-train a method from a YAML config plus dotted overrides (before or after the options), "
        "e.g. `vssl pretrain cfg.yaml method.temperature=0.1 optim.steps=200`. An --out that already holds a run "
        "resumes it from its last checkpoint when the settings match, and is refused when they differ.",
    )
    p.add_argument("config", nargs="?", help="YAML config (optional: defaults + overrides also work)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    p.add_argument("--out", default=None, help="run directory (default runs/pretrain/<method>-s<seed>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)
    overrides_anywhere(p)


def handle(args) -> int:
    from pathlib import Path

    from benchmark.config import build_experiment, explicit_tree

    config = args.config
    overrides = list(args.overrides)
    if config and "=" in config and not config.endswith((".yaml", ".yml")):
        overrides.insert(0, config)  # `vssl pretrain method.name=tce`: no file given
        config = None
    tree = explicit_tree(config, overrides)
    cfg = build_experiment(tree)
    out = Path(args.out or f"runs/pretrain/{cfg.method.name}-s{cfg.run.seed}")
    from benchmark.errors import UserError
    from benchmark.launch.local import cell_lock
    from benchmark.rundir import RunDir, check_run_target
    from benchmark.train import check_resumable, pretrain, validate

    validate(cfg, data=True, evaluation=False)  # every check before the run directory is written
    check_run_target(out)
    run = RunDir(out)
    check_resumable(run, cfg)
    if run.finished_pretraining():
        print(
            f"note: {out} has finished pre-training; nothing was changed (its settings, figures and checkpoint stay): "
            f"evaluate it with `vssl evaluate {out}`, or choose another --out to train again",
            file=sys.stderr,
        )
    with cell_lock(out) as mine:  # the lock a sweep's cells use: two processes never write one run
        if not mine:
            raise UserError(f"{out} is being written by another process: wait for it, or choose another --out")
        args.on_interrupt = f"rerun the same command to resume {out} from its last checkpoint"
        entry = pretrain(run, cfg, tree, progress_bar=not args.no_progress)
    print(
        f"pre-trained {cfg.method.name} into {out}: "
        + ", ".join(f"{k}={v}" for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    )
    print(pretext_line(entry.get("pretext", {})))
    return 0


def pretext_line(pretext: dict) -> str:
    """The held-out pretext verdict in one line (metrics.json pretrain.pretext has the rest)."""
    if "exempt" in pretext:
        return f"pretext: {pretext['exempt']}"
    if pretext.get("learned") is None:
        return f"pretext: not checked ({pretext.get('skipped') or pretext.get('rule') or 'no verdict'})"
    step0, final = pretext.get("step0", {}).get("value"), pretext.get("final", {}).get("value")
    verdict = "learned" if pretext["learned"] else "did not learn its pretext task"
    return f"pretext ({pretext.get('rule', pretext.get('measure'))}): {verdict}, step 0 {step0:.3f} -> end {final:.3f}"
