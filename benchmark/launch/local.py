"""Run a sweep on this machine, cell after cell, skipping complete cells.

Several local processes may work on one sweep (e.g. ``--only inflate=True`` in
one and everything in another, one torch thread each): a cell being run holds
an exclusive lock on ``cells/<id>/.lock`` (flock, released when its process
ends, even by a kill), and the other processes pass it by.

Layout of a sweep directory (shared with the SLURM launcher):

    runs/<sweep>/
      sweep.json            name, source file, resources, and every cell: id, label, overrides, required metric keys
    jobs.json             SLURM job of each cell (benchmark.launch.slurm)
      cells/<cell_id>/      one run directory per cell (benchmark.rundir)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import UserError, failure_line, one_line
from benchmark.launch.cell import cell_spec, clear_error, required_keys, run_cell, write_error
from benchmark.launch.state import ERROR, cell_state
from benchmark.rundir import atomic_write_text, update_lock
from benchmark.sweeps import SMOKE_RUN, Sweep

MANIFEST = "sweep.json"
RUNNING_ELSEWHERE = "skipped: running in another process"  # a cell's outcome when another process holds its lock


def cell_dir(sweep_dir: Path, cell_id: str) -> Path:
    return Path(sweep_dir) / "cells" / cell_id


@contextlib.contextmanager
def cell_lock(path: Path) -> Iterator[bool]:
    """Yields True while this process holds the cell's lock, False when another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_manifest(sweep: Sweep, extra: dict | None = None) -> Path:
    """Create or extend sweep.json (cells are only ever added, so relaunches keep history)."""
    from benchmark.errors import UserError

    path = Path(sweep.out_dir) / MANIFEST
    with update_lock(sweep.out_dir):  # two sweep processes launched at once each keep the other's cells
        try:
            old = json.loads(path.read_text()) if path.exists() else {}
        except (ValueError, UnicodeDecodeError):
            raise UserError(
                f"{path} does not parse (cut short?): its cells' run folders are intact; move the file aside and "
                "relaunch to write it again"
            ) from None
        if not isinstance(old, dict):
            raise UserError(f"{path} is not a sweep manifest (a JSON object): choose another output folder")
        if old and old.get("name") != sweep.name:
            held = f"sweep '{old['name']}'" if old.get("name") else "a sweep manifest with no name (edited by hand?)"
            raise UserError(f"{sweep.out_dir} holds {held}, not '{sweep.name}': choose another output folder")
        _extend_manifest(path, old, sweep, extra)
    return path


def _extend_manifest(path: Path, old: dict, sweep: Sweep, extra: dict | None) -> None:
    cells = old.get("cells", {})
    for c in sweep.cells:
        # "required": the metric keys that make the cell complete, so `vssl status` needs no YAML parsing
        cells[c.id] = {
            **cells.get(c.id, {}),
            "label": c.label,
            "overrides": c.overrides,
            "required": required_keys(c.config),
            **({"budget_selection": c.budget_selection} if c.budget_selection else {}),
        }
    manifest = {
        **old,
        "name": sweep.name,
        "source": str(sweep.path) if sweep.path else None,
        "description": sweep.description,
        "stages": sweep.stages,
        "resources": sweep.resources.__dict__,
        "cells": cells,
        **(extra or {}),
    }
    atomic_write_text(path, json.dumps(manifest, indent=2, default=str))


def run_local(
    sweep: Sweep, progress_bar: bool = True, keep_going: bool = True, env: dict | None = None
) -> dict[str, str]:
    """Returns {cell_id: 'done' | 'skipped' | 'failed: <reason>'}. ``env``: variables every cell runs with."""
    queued = queued_in_slurm(sweep)
    write_manifest(sweep)
    outcome: dict[str, str] = {}
    n = len(sweep.cells)
    for i, cell in enumerate(sweep.cells, 1):
        path = cell_dir(sweep.out_dir, cell.id)
        if _done(path, cell):
            print(f"[{i}/{n}] {cell.id} {cell.label}: complete, skipped", flush=True)
            outcome[cell.id] = "skipped"
            continue
        if cell.id in queued:  # its SLURM job would run it again, or beside this process
            print(f"[{i}/{n}] {cell.id} {cell.label}: queued or running in SLURM as job {queued[cell.id]}, skipped",
                  flush=True)  # fmt: skip
            outcome[cell.id] = RUNNING_ELSEWHERE
            continue
        with cell_lock(path) as mine:
            if not mine:
                print(f"[{i}/{n}] {cell.id} {cell.label}: running in another process, skipped", flush=True)
                outcome[cell.id] = RUNNING_ELSEWHERE
                continue
            if _done(path, cell):  # finished by another process between the check above and the lock
                outcome[cell.id] = "skipped"
                continue
            outcome[cell.id] = _run_one(sweep, cell, path, env, f"[{i}/{n}]", progress_bar, keep_going)
    return outcome


def queued_in_slurm(sweep) -> dict[str, str]:
    """{cell id: job id} of the cells whose SLURM job (jobs.json) is still pending or running, as the SLURM
    launcher plans them: a local launch into a sweep folder that was also launched on SLURM leaves them to their
    jobs. {} without jobs.json, or where no squeue runs (a copy of the folder off the cluster)."""
    from benchmark.launch.slurm import plan, read_jobs

    if not read_jobs(sweep.out_dir)["cells"] or not on_slurm_host():
        return {}
    return plan(sweep, Path(sweep.out_dir)).live


def on_slurm_host() -> bool:
    import shutil

    return shutil.which("squeue") is not None


def _done(path: Path, cell) -> bool:
    return cell_state(path, required_keys(cell.config)).state == "done"


def _run_one(sweep: Sweep, cell, path: Path, env: dict | None, tag: str, progress_bar: bool, keep_going: bool) -> str:
    print(f"{tag} {cell.id} {cell.label}", flush=True)
    t0 = time.perf_counter()
    spec = cell_spec(sweep.name, cell, path, env)
    clear_error(spec)
    try:
        run_cell(spec, progress_bar=progress_bar)
        print(f"{tag} {cell.id} done in {time.perf_counter() - t0:.0f} s", flush=True)
        return "done"
    except Exception as exc:  # one bad cell must not sink the sweep
        write_error(path, traceback.format_exc())
        # bad input: its one line; a fault: the failing line (a plugin's, or the harness's call into torch, also
        # from a DataLoader worker) and the file that keeps the traceback
        bad_input = isinstance(exc, UserError)
        err = f"UserError: {one_line(exc)}" if bad_input else f"{failure_line(exc)} (traceback: {path / ERROR})"
        print(f"{tag} {cell.id} FAILED: {err}", flush=True)
        if not keep_going:
            raise
        return f"failed: {err}"


# --------------------------------------------------------------------------- smoke runs
# A tiny stand-in of the built-in synthetic set (UCF101 layout + unlabelled pool), written per smoke sweep.
SMOKE_SYNTH = {
    "classes": 3,
    "videos_per_class": 4,
    "groups": 4,
    "test_groups": 2,
    "size": 32,
    "frames": 16,
    "pool_videos": 6,
}


def smoke_stages(stages: list[str]) -> list[str]:
    """'finetune:hmdb51:2' -> 'finetune': a smoke run makes every evaluation once, on the stand-in."""
    return list(dict.fromkeys(stage.split(":")[0] for stage in stages))


def smoke_resolution(cfg) -> int:
    """32 px at most, unless the backbone does not run there (a ViT): then the size it is built for."""
    from benchmark.backbones import default_input_size, resolution_problem

    small = min(cfg.data.resolution, 32)
    return default_input_size(cfg.backbone) or small if resolution_problem(cfg.backbone, small) else small


def smoke_overrides(cfg, world_size: int = 1) -> dict:
    """Two steps of each stage at tiny resolution on the stand-in; method and backbone untouched."""
    from benchmark.paths import resolve_dataset
    from benchmark.registry import METHODS

    pool_format = False
    try:
        pool_format = resolve_dataset(cfg.data.dataset, must_exist=False).format == "folder"
    except Exception:  # noqa: BLE001 (an unknown name is a smoke run's business only if it was meant to fail)
        pass
    method_cls = METHODS.get(cfg.method.name)
    labelled = method_cls.needs_labels or not pool_format
    return {
        **method_cls.smoke_overrides(cfg.method),  # e.g. TCE's bank-sized K resolved on the stand-in's few videos
        "data.dataset": "synthetic" if labelled else "synthetic-pool",
        "data.split": 1,
        "data.resolution": smoke_resolution(cfg),
        "data.num_workers": 0,
        "optim.steps": min(cfg.optim.steps, 2),
        "optim.warmup_steps": 0,
        "optim.batch_size": 2 * world_size,
        "run.pretext_samples": 2 * world_size,  # the held-out pretext check runs, on one batch
        "eval.dataset": "synthetic",
        "eval.split": 1,
        "eval.batch_size": 8,
        "eval.frames": 2,
        "eval.clips": 1,
        "eval.crops": 1,
        "eval.num_workers": 0,
        "eval.linear_epochs": 2,
        "eval.linear_weight_decays": [],
        "eval.finetune_epochs": 1,
        "eval.finetune_batch_size": 4,
        "eval.knn_ks": [1],
        "eval.knn_k": 1,
        "run.stages": smoke_stages(cfg.run.stages),
        "run.log_every": 1,
        "run.checkpoint_every": 1,
        "run.epoch_checkpoints": [],
    }


def smoke_sweep(sweep: Sweep, progress: bool = True) -> tuple[Sweep, dict]:
    """The same cells (same ids) on a tiny stand-in, in their own folder <out>-smoke; returns (sweep, cell env)."""
    import dataclasses

    from benchmark.config import build_dataclass, build_experiment, merge_overrides
    from benchmark.data.synthetic import SynthConfig, generate

    out = Path(str(sweep.out_dir) + "-smoke")
    data = (out / "data").resolve()
    generate(
        data / "synthetic", build_dataclass(SynthConfig, SMOKE_SYNTH, prefix="synth"), workers=1, progress=progress
    )
    cells = []
    for c in sweep.cells:
        res = c.resources or sweep.resources
        tree = merge_overrides(c.tree, smoke_overrides(c.config, max(1, res.tasks_per_node) * max(1, res.nodes)))
        cells.append(
            dataclasses.replace(c, tree=tree, config=build_experiment(tree), resources=smoke_resources(c.resources))
        )
    videos = SMOKE_SYNTH["classes"] * SMOKE_SYNTH["videos_per_class"] + SMOKE_SYNTH["pool_videos"]
    # the report opens with the description: a smoke table must not read as the sweep's results
    description = (f"{SMOKE_RUN} of {sweep.name}: every cell ran two steps of each stage on a stand-in of {videos} tiny "
                   "synthetic videos; its numbers and pretext verdicts check the plumbing, not the methods.")  # fmt: skip
    smoke = dataclasses.replace(sweep, name=sweep.name + "-smoke", out_dir=out, cells=cells,
                                stages=smoke_stages(sweep.stages), description=description,
                                resources=smoke_resources(sweep.resources))  # fmt: skip
    return smoke, {"VSSL_DATA": str(data)}


SMOKE_TIMEOUT_MIN = 30


def smoke_resources(res):
    """A smoke job asks the same GPUs and tasks (it tests the DDP path) for at most SMOKE_TIMEOUT_MIN minutes, so
    the scheduler starts it soon, and carries no GPU-hour estimate."""
    import dataclasses

    if res is None:
        return None
    return dataclasses.replace(res, timeout_min=min(res.timeout_min, SMOKE_TIMEOUT_MIN), gpu_hours_estimate=None,
                               signal_delay_s=min(res.signal_delay_s, 300))  # fmt: skip
