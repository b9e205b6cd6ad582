"""Watching runs as this field does: TensorBoard for every run, Weights & Biases when asked.

Every stage of a run writes TensorBoard event files into ``RUN/tb/``: pre-training's loss, lr and every method
scalar (mining statistics, smoothness) under ``pretrain/``, the pretext check's verdict, each evaluation's
metrics under its metrics key (``linear/synthetic/split1/top1`` at the step of the checkpoint it read), the run's
explicit overrides against its final metrics as hparams, and figures as images. scalars.jsonl stays the source
of truth; the event files are for looking.

A resumed or requeued run continues its curves: the writer is opened with ``purge_step`` = the step the run
resumes after, so TensorBoard drops whatever a killed attempt wrote past its checkpoint (no duplicated or
out-of-order steps).

``run.wandb: offline|online`` also logs the same scalars, the config and provenance to a W&B run whose id is
kept in ``RUN/wandb_id``, so a requeued SLURM job resumes the same W&B run; a sweep is a W&B group.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

from benchmark.errors import UserError

TB_DIR = "tb"
WANDB_ID = "wandb_id"
WANDB_PROJECT = os.environ.get("VSSL_WANDB_PROJECT", "vssl-bench")


def check_wandb(mode: str) -> None:
    """At load: W&B asked for but not installed is one line saying what to do."""
    if mode == "off":
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise UserError(
            f"run.wandb = {mode} but wandb is not installed: pip install wandb (or pip install -e '.[test]'), "
            "or set run.wandb=off"
        ) from None


class Tracker:
    """One stage's writers (TensorBoard always, W&B when ``run.wandb`` asks); every call is a no-op off rank 0."""

    def __init__(self, run_path: Path, cfg, stage: str, resume_step: int = 0, sweep: str | None = None,
                 enabled: bool = True):  # fmt: skip
        self.stage = stage
        self.tb = None
        self.wandb = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(Path(run_path) / TB_DIR), purge_step=resume_step + 1 if resume_step else None)
        mode = getattr(cfg.run, "wandb", "off")
        if mode != "off":
            self.wandb = _wandb_run(Path(run_path), cfg, mode, sweep)

    def scalars(self, step: int, values: dict[str, float], prefix: str | None = None) -> None:
        prefix = self.stage if prefix is None else prefix
        finite = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(float(v))}
        if self.tb is not None:
            for name, value in finite.items():
                self.tb.add_scalar(f"{prefix}/{name}", value, step)
        if self.wandb is not None:
            self.wandb.log({f"{prefix}/{k}": v for k, v in finite.items()}, step=step)

    def entry(self, key: str, entry: dict, step: int) -> None:
        """An evaluation's (or pre-training's) numeric fields under its metrics key, at ``step``."""
        flat = _numbers(entry)
        self.scalars(step, flat, prefix=key)

    def hparams(self, explicit: dict[str, Any], final: dict[str, float]) -> None:
        """The run's explicit overrides against its final metrics (TensorBoard's HParams tab)."""
        if self.tb is None:
            return
        params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in explicit.items()}
        metrics = {f"hparams/{k}": v for k, v in final.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if metrics:
            self.tb.add_hparams(params, metrics, run_name=".")

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        if self.tb is None or not Path(png).exists():
            return
        import numpy as np
        from PIL import Image

        array = np.asarray(Image.open(png).convert("RGB"))
        self.tb.add_image(tag, array, step, dataformats="HWC")
        if self.wandb is not None:
            import wandb

            self.wandb.log({tag: wandb.Image(str(png))}, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        self.tb = self.wandb = None


def _numbers(entry: dict, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a metrics entry ('top1', 'pretext/final/value'); lists and text are left out."""
    out: dict[str, float] = {}
    for k, v in entry.items():
        if isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = float(v)
        elif isinstance(v, dict):
            out.update(_numbers(v, f"{prefix}{k}/"))
    return out


def _wandb_run(run_path: Path, cfg, mode: str, sweep: str | None):
    """The run's W&B run, resumed by the id stored in the run directory (so a requeued job continues it)."""
    check_wandb(mode)
    import wandb

    from benchmark.config import to_dict
    from benchmark.rundir import RunDir, atomic_write_text

    id_file = run_path / WANDB_ID
    run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
    if not id_file.exists():
        atomic_write_text(id_file, run_id + "\n")
    env = RunDir(run_path).env()
    return wandb.init(
        project=WANDB_PROJECT,
        id=run_id,
        resume="allow",
        mode=mode,
        dir=str(run_path),
        group=sweep,
        name=run_path.name,
        config={
            **to_dict(cfg),
            "provenance": {k: env.get(k) for k in ("git_commit", "git_dirty", "code", "cpu_model")},
        },
        reinit="finish_previous",
    )
