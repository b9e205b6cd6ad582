"""vssl sweep: expand a sweep file into cells and run them (here, or as SLURM job arrays)."""

from __future__ import annotations

import argparse

from benchmark.commands import overrides_anywhere


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep file (grid x zip x seeds), skipping complete cells",
        description="Expand a sweep file into cells and run every incomplete one: in this process "
        "(--cluster local), in submitit's debug executor, or as SLURM job arrays. "
        "Relaunching is safe: complete cells are skipped, queued ones left alone, failed or new ones run.",
    )
    p.add_argument("file", help="sweep YAML (see docs/sweeps.md)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="overrides for every cell (resources.* for resources)"
    )
    p.add_argument(
        "--cluster", default="local", help="local (in process, default) | debug (submitit, in process) | slurm"
    )
    p.add_argument("--out", default=None, help="sweep folder (default: the file's `out`, else runs/<name>)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve every cell, build its model on the meta device, print cells, ids and resources (with --cluster "
        "slurm: also the evaluation jobs of DDP cells); run nothing",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="every cell for two steps of each stage on a tiny synthetic stand-in, in <out>-smoke",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="slurm: block until every submitted job has ended, then print the status (local and debug launches "
        "always run to the end)",
    )
    p.add_argument("--poll-s", dest="poll_s", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--table", action="store_true", help="print the results table when done")
    p.add_argument(
        "--only",
        metavar="TEXT",
        action="append",
        default=None,
        help="run only cells whose id or label contains TEXT (repeatable: any match); "
        "e.g. --only method=tce to finish a sweep over several launches",
    )
    p.set_defaults(handler=handle)
    overrides_anywhere(p)


def handle(args) -> int:
    from pathlib import Path

    from benchmark.errors import UserError, nearest
    from benchmark.launch import CLUSTERS
    from benchmark.sweeps import load_sweep

    if args.cluster not in CLUSTERS:
        raise UserError(
            f"unknown cluster '{args.cluster}'{nearest(args.cluster, CLUSTERS)}; choose from {', '.join(CLUSTERS)}"
        )
    sweep = load_sweep(args.file, args.overrides, args.out)
    if Path(sweep.out_dir).exists() and not Path(sweep.out_dir).is_dir():  # a dry run must fail where a launch would
        raise UserError(f"the sweep's folder {sweep.out_dir} is a file: choose another --out (or `out:`)")
    if (Path(sweep.out_dir) / "config.yaml").is_file():  # its cells/ would hide it from `vssl table`, and it them
        raise UserError(f"{sweep.out_dir} is a run directory (it holds config.yaml), not a sweep folder: choose "
                        "another --out (or `out:`)")  # fmt: skip
    if args.only:
        sweep = select_cells(sweep, args.only)
    check_cells(sweep, datasets=not args.smoke)  # a smoke run replaces the datasets
    if not args.smoke:  # (a smoke run writes elsewhere)
        check_existing_cells(sweep)
    if args.cluster == "slurm" or args.dry_run:
        from benchmark.launch.slurm import check_reachable, check_resources

        check_resources(sweep)
        if not args.dry_run:
            check_reachable()
    args.cell_env = {}
    if args.smoke:
        from benchmark.launch.local import smoke_sweep

        sweep, args.cell_env = smoke_sweep(sweep, progress=not args.no_progress)
    if args.dry_run:
        return dry_run(sweep, args.cluster)
    if args.cluster != "local":
        return launch_on_cluster(sweep, args)
    from benchmark.launch.local import RUNNING_ELSEWHERE, run_local

    args.on_interrupt = "rerun the same command: complete cells are skipped and the interrupted one resumes"
    outcome = run_local(sweep, progress_bar=not args.no_progress, env=args.cell_env)
    failed = {k: v for k, v in outcome.items() if v.startswith("failed")}
    elsewhere = sum(v == RUNNING_ELSEWHERE for v in outcome.values())
    done = len(outcome) - len(failed) - elsewhere
    held = f", {elsewhere} held by another process (not waited for; `vssl status {sweep.out_dir}` shows them)"
    print(
        f"sweep {sweep.name}: {done} of {len(outcome)} cells complete{held if elsewhere else ''}, out {sweep.out_dir}"
    )
    if args.table:
        from benchmark.commands.table import print_quick_table

        print_quick_table(sweep.out_dir)
    return 1 if failed else 0


def select_cells(sweep, patterns: list[str]):
    """The sweep restricted to cells whose id or label contains any pattern (ids stay the same)."""
    import dataclasses

    from benchmark.errors import UserError

    chosen = [c for c in sweep.cells if any(p in c.id or p in f"{c.label} " for p in patterns)]
    if not chosen:
        raise UserError(
            f"--only {' '.join(patterns)} matches none of the {len(sweep.cells)} cells (labels look like '{sweep.cells[0].label}')"
        )
    return dataclasses.replace(sweep, cells=chosen)


def check_cells(sweep, datasets: bool = True) -> None:
    """What fails every job of a cell fails the launch instead, before anything is written or submitted (one
    line naming the cell): each distinct cell config goes through train.validate (backbone, method, steps,
    datasets, the method's data-dependent check)."""
    import json

    from benchmark.config import to_dict
    from benchmark.errors import UserError
    from benchmark.train import validate

    checked: set[str] = set()
    for cell in sweep.cells:
        cfg = cell.config
        key = json.dumps([to_dict(cfg.method), to_dict(cfg.backbone), to_dict(cfg.data), to_dict(cfg.optim),
                          to_dict(cfg.eval), cfg.run.stages], sort_keys=True, default=str)  # fmt: skip
        if key in checked:
            continue
        try:
            validate(cfg, data=datasets)
        except UserError as exc:
            raise UserError(f"cell {cell.id} ({cell.label}): {exc}") from None
        checked.add(key)


def check_existing_cells(sweep) -> None:
    """Cell ids hash a cell's own axes and seed, not the sweep's base or command-line values: a relaunch after
    such a change finds its cells' folders made with the old settings, and would count the finished ones complete
    (or resume the others under the new recipe, rewriting their config.yaml). One line instead, before anything
    is written or submitted. Settings a resume may change (workers, logging, devices) are not differences; for a
    finished cell, evaluation settings are."""
    from benchmark.errors import UserError
    from benchmark.launch.local import cell_dir
    from benchmark.rundir import CorruptRun, RunDir
    from benchmark.train import setting_changes

    for cell in sweep.cells:
        run = RunDir(cell_dir(sweep.out_dir, cell.id))
        if not (run.path / "config.yaml").exists():
            continue
        try:
            changes = setting_changes(run, cell.config, evaluated=any(k != "pretrain" for k in run.metrics()))
        except CorruptRun:  # `vssl status` lists it as corrupt; relaunches leave it alone
            continue
        if changes:
            raise UserError(
                f"cell {cell.id} ({cell.label}) in {sweep.out_dir} ran with other settings ({changes}): a relaunch "
                "would keep its results as if made with these; launch into another --out (or `out:`), or undo the "
                "change"
            )


def _built_for_counting(cfg, cell, num_classes: int):
    """The cell's method on the meta device (shapes, no memory); a method whose __init__ needs real tensors is
    built on the CPU instead; one that fails there too (a plugin's bug) is one line naming the cell and the line."""
    from benchmark.errors import UserError, raised_at
    from benchmark.train import build_method

    try:
        return build_method(cfg, 1024, num_classes, meta=True)
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - tried again for real below, which names the error if it is one
        pass
    try:
        return build_method(cfg, 1024, num_classes)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cell {cell.id} ({cell.label}): method '{cfg.method.name}' could not be built"
                        f"{raised_at(exc)}: {type(exc).__name__}: {exc}") from None  # fmt: skip


def dry_run(sweep, cluster: str) -> int:
    """Print every cell (id, label, model size, resources group, whether it would run); submit nothing."""
    from tabulate import tabulate

    from benchmark.backbones import param_count_millions
    from benchmark.errors import UserError
    from benchmark.launch.cell import EVALUATE, PRETRAIN
    from benchmark.launch.local import cell_dir
    from benchmark.launch.slurm import (
        check_reachable,
        describe_resources,
        evaluation_resources,
        job_parts,
        resource_groups,
    )
    from benchmark.rundir import RunDir

    groups = resource_groups(sweep, sweep.cells)
    group_of = {c.id: i for i, (_, cells) in enumerate(groups, 1) for c in cells}
    params: dict[str, float] = {}
    rows = []
    for cell in sweep.cells:
        cfg = cell.config
        key = repr((cfg.method, cfg.backbone))
        if key not in params:  # the model on the meta device: shapes and sizes, no memory, no weights
            from benchmark.registry import METHODS

            num_classes = 101 if getattr(METHODS.get(cfg.method.name), "needs_labels", False) else 0
            params[key] = param_count_millions(_built_for_counting(cfg, cell, num_classes))
        status = RunDir(cell_dir(sweep.out_dir, cell.id)).status()[0]
        rows.append(
            [
                cell.id,
                cell.label,
                cfg.method.name,
                cfg.backbone.name,
                f"{params[key]:.2f}",
                group_of[cell.id],
                "skip (complete)" if status == "complete" else "run",
            ]
        )
    print(tabulate(rows, headers=["cell", "label", "method", "backbone", "params (M)", "array", "launch would"]))
    run_ids = {r[0] for r in rows if r[-1] == "run"}
    print()
    for i, (res, cells) in enumerate(groups, 1):
        estimates = [(c.resources or sweep.resources).gpu_hours_estimate or 0 for c in cells]
        est = f", ~{sum(estimates):g} GPU-h in all (estimates)" if any(estimates) else ""
        print(f"array {i}: {len(cells)} cells: {describe_resources(res)}{est}")
        to_run = [c for c in cells if c.id in run_ids]
        parts = [job_parts(c, res, cluster, cell_dir(sweep.out_dir, c.id)) for c in to_run]
        waits, alone = sum(p == [PRETRAIN, EVALUATE] for p in parts), sum(p == [EVALUATE] for p in parts)
        if waits or alone:
            print(f"  and {waits + alone} one-task evaluation job(s), {waits} after its cell's pre-training job, "
                  f"{alone} alone (pre-training done): {describe_resources(evaluation_resources(res))}")  # fmt: skip
    todo = sum(r[-1] == "run" for r in rows)
    print(
        f"{len(rows)} cells ({todo} to run), stages {sweep.stages}, {len(groups)} job array(s) on {cluster}, "
        f"out {sweep.out_dir} (dry run: nothing submitted)"
    )
    if cluster == "slurm":
        try:
            check_reachable()
        except UserError as exc:  # planning needs no SLURM; say now that the real launch would stop here
            print(f"note: {exc}: the launch itself would stop there")
    return 0


def launch_on_cluster(sweep, args) -> int:
    """`--cluster slurm|debug`: submit incomplete cells, say what went where; --wait blocks, then prints the status."""
    import sys

    from benchmark.commands.status import print_status
    from benchmark.launch import slurm
    from benchmark.launch.state import sweep_status

    done = slurm.launch(sweep, args.cluster, env=args.cell_env, smoke=args.smoke)
    p = done.plan
    for cid, jid in p.live.items():
        print(f"{cid}: job {jid} still pending or running, not resubmitted")
    counts = f"{len(p.complete)} complete, {len(p.live)} queued"
    if not done.jobs:
        print(f"sweep {sweep.name}: nothing to submit ({counts}), out {done.sweep_dir}")
        return 0
    arrays = f" as {len(done.arrays)} job array(s) [{', '.join(done.arrays)}]" if done.arrays else ""
    print(f"sweep {sweep.name}: submitted {len(p.run)} cell{'s' if len(p.run) != 1 else ''}{arrays} in {done.seconds:.1f} s ({counts}); "
          f"out {done.sweep_dir}")  # fmt: skip
    if done.cancelled:
        print(f"cancelled the evaluation job(s) [{', '.join(done.cancelled)}] of failed pre-trainings")
    evaluations = [str(j.job_id) for j in done.submitted.evaluations]
    waiting = [j for j in evaluations if j in done.submitted.after]
    alone = [j for j in evaluations if j not in done.submitted.after]
    if waiting:
        print(f"{len(waiting)} DDP cell(s) evaluate in one-task job(s) of their own [{', '.join(waiting)}], each "
              "starting when its cell's pre-training job ends")  # fmt: skip
    if alone:
        print(f"{len(alone)} DDP cell(s) with pre-training done: one-task evaluation job(s) [{', '.join(alone)}]")
    if args.cluster == "debug":
        outcome = slurm.run_debug_jobs(done.jobs)
        for job_id, error in outcome.items():
            if error is None:
                print(f"{job_id}: done", flush=True)
            else:
                print(f"{job_id}: FAILED: {error}", file=sys.stderr, flush=True)
        return 1 if any(e is not None for e in outcome.values()) else 0
    if not args.wait:
        print(f"follow it with: vssl status {done.sweep_dir}")
        return 0
    ids = [str(j.job_id) for j in done.jobs]
    args.on_interrupt = f"the submitted jobs go on in SLURM: follow them with `vssl status {done.sweep_dir}`"
    slurm.wait(done.sweep_dir, ids, poll_s=float(args.poll_s), progress_bar=not args.no_progress)
    rows = sweep_status(done.sweep_dir)
    print_status(rows)
    if args.table:
        from benchmark.commands.table import print_quick_table

        print_quick_table(done.sweep_dir)
    return 1 if any(r.state in ("failed", "corrupt") for r in rows) else 0
