"""One sweep cell, start to end: every stage its config asks for, skipping stages already done.

``run_cell`` is what every launcher executes (in process, submitit debug or
SLURM): it takes a plain dict so it pickles cheaply. On SLURM the callable is
:class:`CellJob`, a submitit ``Checkpointable``: on the pre-timeout or
preemption signal pre-training writes ``checkpoints/last.pt`` at the step it
is on, submitit requeues the job, and the requeued job resumes from there
(see benchmark.train.CheckpointRequest). Nothing here imports torch at module
level: ``vssl status`` imports this package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import traceback
from pathlib import Path

from benchmark.config import build_experiment, config_hash, to_dict
from benchmark.keys import LAST, Stage, checkpoint_name, evaluated_steps
from benchmark.keys import required_keys as _required_keys
from benchmark.launch.state import ERROR
from benchmark.rundir import RunDir

log = logging.getLogger(__name__)


# What one job of a cell runs: every stage, or (a DDP cell on SLURM, benchmark.launch.slurm.job_parts) pre-training
# on all its tasks in one job and the evaluations in a one-task job that starts after it.
WHOLE, PRETRAIN, EVALUATE = "whole", "pretrain", "evaluate"


def cell_spec(sweep_name: str, cell, run_path: Path, env: dict | None = None, part: str = WHOLE) -> dict:
    """What a job needs to run one cell. ``env``: variables set in the job before it starts (e.g. VSSL_DATA).
    ``part``: WHOLE, PRETRAIN or EVALUATE."""
    return {
        "sweep": sweep_name,
        "cell_id": cell.id,
        "tree": cell.tree,
        "run_path": str(run_path),
        "label": cell.label,
        "env": dict(env or {}),
        "part": part,
    }


def clear_error(spec: dict) -> None:
    """Before a new attempt at a whole cell or its pre-training: an earlier attempt's traceback no longer says where
    the cell is (an evaluation job keeps it: it may be its pre-training job's)."""
    if spec.get("part", WHOLE) != EVALUATE:
        (Path(spec["run_path"]) / ERROR).unlink(missing_ok=True)


class PretrainingUnfinished(Exception):
    """An evaluation job started after its cell's pre-training job ended without finishing pre-training."""


def required_keys(cfg) -> list[str]:
    """metrics.json keys that make this cell complete (what ``vssl status`` checks without parsing the config)."""
    return _required_keys(cfg.run.stages, cfg.eval.dataset, cfg.eval.split, checkpoint_steps(cfg))


def checkpoint_steps(cfg) -> list[int]:
    """Intermediate checkpoints every evaluation stage also reads (run.evaluate_epoch_checkpoints)."""
    return evaluated_steps(to_dict(cfg.run), to_dict(cfg.optim))


def run_cell(spec: dict, progress_bar: bool = True) -> dict:
    with _environment(spec.get("env") or {}):
        return _run_stages(spec, progress_bar)


@contextlib.contextmanager
def _environment(env: dict):
    """Set a cell's variables (e.g. a smoke run's VSSL_DATA) for its duration only (in-process runs share os.environ)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_stages(spec: dict, progress_bar: bool) -> dict:
    from benchmark import distributed
    from benchmark.evaluation import evaluate
    from benchmark.train import pretrain

    cfg = build_experiment(spec["tree"])
    run = RunDir(Path(spec["run_path"])).create()
    main = distributed.is_main()
    old = run.env().get("config_hash")
    new = config_hash(cfg)
    if main and old and old != new:
        log.warning("cell %s: resolved config changed since its first launch (%s -> %s)", spec["cell_id"], old, new)
        run.update_env(config_hash=new, config_hash_previous=old)
    # a requeue the harness did not ask for (`scontrol requeue`, a node failure) is counted too: SLURM numbers
    # every restart of the job, and a requeue after submitit's checkpoint() is one of them (the larger count wins)
    # (only once an attempt has written env.json: before that, pre-training writes it whole when it starts)
    restarts, env = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0), run.env()
    if main and env and restarts > int(env.get("requeues", 0) or 0):
        run.update_env(requeues=restarts)
    part = spec.get("part", WHOLE)
    if part == PRETRAIN:  # the evaluations are a one-task job of their own, which starts when this one ends
        if run.finished_pretraining():
            return {"pretrain": "skipped (done)"}
        entry = pretrain(run, cfg, spec["tree"], spec.get("sweep"), spec.get("cell_id"), progress_bar=progress_bar)
        return {"pretrain": _scalars(entry)}
    if part == EVALUATE and not run.finished_pretraining():
        job = f" (job {spec['after']})" if spec.get("after") else ""
        raise PretrainingUnfinished(
            f"evaluation job: the cell's pre-training{job} ended before it finished; relaunch the sweep to resume it"
        )
    done = run.metrics() if (run.path / "metrics.json").exists() else {}
    results = {}
    for text in cfg.run.stages:
        stage = Stage.parse(text).resolve(cfg.eval.dataset, cfg.eval.split)
        key = stage.key()
        if stage.is_pretrain:
            if str(key) in done:
                results[str(key)] = "skipped (done)"
                continue
            entry = pretrain(run, cfg, spec["tree"], spec.get("sweep"), spec.get("cell_id"), progress_bar=progress_bar)
            results[str(key)] = _scalars(entry)
            continue
        # every evaluation reads last.pt, and also step_N.pt for each evaluated intermediate checkpoint (Figure 5's x axis)
        for checkpoint in [LAST] + [checkpoint_name(n) for n in checkpoint_steps(cfg)]:
            ckey = str(key.at(checkpoint))
            if ckey in done and not _evaluated_too_early(run, ckey, checkpoint, spec["cell_id"]):
                results[ckey] = "skipped (done)"
                continue
            if not run.finished_pretraining():
                pretrain(run, cfg, spec["tree"], spec.get("sweep"), spec.get("cell_id"), progress_bar=progress_bar)
            if not main:  # evaluations run on rank 0 alone; the other ranks only helped pre-train
                continue
            eval_cfg = dataclasses.replace(
                cfg, eval=dataclasses.replace(cfg.eval, dataset=stage.dataset, split=stage.split)
            )
            entry = evaluate(run, eval_cfg, stage.protocol, progress_bar=progress_bar, checkpoint=checkpoint)
            results[ckey] = _scalars(entry)
    if main:
        if any(r != "skipped (done)" for r in results.values()):  # the cell's end, evaluations included
            run.stamp_end()
        _hparams(run, cfg, spec)
    return results


def _evaluated_too_early(run: RunDir, ckey: str, checkpoint: str, cell_id: str) -> bool:
    """An evaluation of last.pt made before pre-training had finished (a `vssl evaluate` on an interrupted run):
    its checkpoint step is not the finished pre-training's, so it is run again rather than counted as final."""
    metrics = run.metrics()
    if checkpoint != LAST or "pretrain" not in metrics or "checkpoint_step" not in metrics.get(ckey, {}):
        return False
    seen, final = metrics[ckey]["checkpoint_step"], metrics["pretrain"].get("steps")
    if final is None or seen == final:
        return False
    log.warning("cell %s: %s read the checkpoint of step %s, pre-training ended at step %s: evaluating again",
                cell_id, ckey, seen, final)  # fmt: skip
    return True


def _hparams(run: RunDir, cfg, spec: dict) -> None:
    """TensorBoard's HParams: the cell's own values (its sweep axes and seed) against its final top-1s."""
    from benchmark.config import flatten
    from benchmark.keys import MetricsKey
    from benchmark.tracking import Tracker

    final = {}
    for key, entry in run.metrics().items():
        parsed = MetricsKey.parse(key)
        if parsed is not None and parsed.is_evaluation and parsed.step is None and "top1" in entry:
            final[f"{key}/top1"] = entry["top1"]
    tracker = Tracker(run.path, cfg, "cell", sweep=spec.get("sweep"))
    tracker.hparams({**flatten(spec.get("tree", {})), "run.seed": cfg.run.seed}, final)
    tracker.close()


def _scalars(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if isinstance(v, (int, float, str, bool)) or v is None}


def write_error(run_path: Path, text: str) -> None:
    path = Path(run_path) / ERROR
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _bump_requeues(run_path: Path) -> None:
    run = RunDir(Path(run_path))
    if run.path.exists():
        env = run.env()
        run.update_env(requeues=int(env.get("requeues", 0)) + 1, last_requeue=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


try:  # submitit is a dependency, but keep this module importable (and `vssl status` fast) without it
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover
    _Checkpointable = object  # type: ignore[assignment,misc]


class CellJob(_Checkpointable):
    """The callable a submitit job runs: one cell, on one or (DDP) several tasks.

    Requeue-safe: ``checkpoint`` (called by submitit on timeout/preemption, after
    pre-training saved its state) records the requeue in env.json and resubmits
    the same spec; the next attempt skips finished stages and resumes pre-training.
    """

    def __call__(self, spec: dict) -> dict:
        from benchmark import distributed

        _threads_from_slurm()
        if os.environ.get("SLURM_PROCID", "0") == "0":  # first, so a failing DDP set-up leaves no stale traceback
            clear_error(spec)
        if distributed.slurm_world_size() > 1:
            distributed.init_from_slurm()
        try:
            return run_cell(spec, progress_bar=False)
        except PretrainingUnfinished as exc:  # under the pre-training job's own traceback, if it left one
            with open(Path(spec["run_path"]) / ERROR, "a") as f:
                f.write(f"{exc}\n")
            raise
        except Exception:
            if distributed.is_main():
                write_error(Path(spec["run_path"]), traceback.format_exc())
            raise
        finally:
            distributed.shutdown()

    def checkpoint(self, spec: dict):  # type: ignore[override]
        from submitit.helpers import DelayedSubmission

        _bump_requeues(Path(spec["run_path"]))
        return DelayedSubmission(self, spec)


def _threads_from_slurm() -> None:
    """torch's intra-op threads = the CPUs SLURM gave this task (without cgroups torch would take every core)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and int(cpus) > 0:
        import torch

        torch.set_num_threads(int(cpus))
