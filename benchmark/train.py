"""Pre-training: config -> data -> method -> steps -> run directory.

Resumable exactly: ``checkpoints/last.pt`` holds the model (with buffers
such as a memory bank), optimiser, scheduler, RNG states and the step; the
data order is a pure function of (seed, step) (benchmark.data.loader), so a
resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.config import ExperimentConfig, OptimConfig, config_hash, to_dict
from benchmark.errors import UserError
from benchmark.method import DataInfo, Method, Progress
from benchmark.registry import METHODS
from benchmark.rundir import RunDir, base_env


@dataclass
class Built:
    method: Method
    info: DataInfo
    records: list
    classes: list[str]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_compatible(method_cls: type[Method], backbone_kind: str, method_name: str, backbone_name: str) -> None:
    want = getattr(method_cls, "backbone_kind", "either")
    if want != "either" and want != backbone_kind:
        raise UserError(
            f"method '{method_name}' needs a {want.upper()} backbone, but '{backbone_name}' is {backbone_kind.upper()} (set backbone.name or backbone.inflate)"
        )


def build_method(cfg: ExperimentConfig, num_videos: int, num_classes: int = 0, meta: bool = False) -> Method:
    """Seeded construction of backbone + method (the same init every stage and every resume starts from)."""
    from benchmark.backbones import build_backbone

    method_cls = METHODS.get(cfg.method.name)
    seed_everything(cfg.run.seed)
    backbone = build_backbone(cfg.backbone, device_meta=meta)
    check_compatible(method_cls, backbone.kind, cfg.method.name, cfg.backbone.name)
    info = DataInfo(num_videos=max(1, num_videos), num_classes=num_classes, resolution=cfg.data.resolution)
    if meta:
        with torch.device("meta"):
            return method_cls(cfg.method, backbone, info)
    return method_cls(cfg.method, backbone, info)


def build_for_pretraining(cfg: ExperimentConfig) -> Built:
    from benchmark.data.index import build_index

    method_cls = METHODS.get(cfg.method.name)
    index = build_index(cfg.data.dataset, split=cfg.data.split, subset="train", storage=cfg.data.storage)
    if not index.records:
        raise UserError(f"dataset '{cfg.data.dataset}' has no videos in split {cfg.data.split} train ({index.root})")
    num_classes = len(index.classes) if method_cls.needs_labels else 0
    method = build_method(cfg, len(index.records), num_classes)
    return Built(method, method.info, index.records, index.classes)


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: OptimConfig) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))
    if cfg.schedule == "step":
        return 0.1 ** sum(step >= m * cfg.steps for m in cfg.step_milestones)
    return 1.0


class CheckpointRequest:
    """Set by SLURM's pre-timeout/preemption signal (submitit's USR2) so the loop checkpoints at the next step.

    Inside a submitit job the signal's own handler (checkpoint the callable, requeue, exit) is kept
    and run right after our checkpoint is on disk (:meth:`hand_over`), so a requeued job resumes
    from the exact step it stopped at. Without a previous handler the run checkpoints and goes on.
    """

    def __init__(self) -> None:
        self.requested = False
        self.stop = False
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @staticmethod
    def signals() -> tuple[int, ...]:
        name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
        return (getattr(signal, name, signal.SIGUSR2),)

    def install(self, stop_after: bool = False) -> None:
        def handler(signum, frame):
            self.requested = True
            self.signum = signum
            self.stop = stop_after or callable(self._previous.get(signum))

        for sig in self.signals():
            try:
                self._previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not in the main thread
                pass

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def hand_over(self) -> None:
        """After the checkpoint: run the handler we displaced (submitit requeues and exits there)."""
        previous = self._previous.get(self.signum) if self.signum is not None else None
        self.uninstall()
        if callable(previous):
            previous(self.signum, None)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: Path, method: Method, optimizer, step: int, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": method.state_dict(),
        "backbone": method.backbone.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "method_extra": method.extra_checkpoint_state(),
        "rng": rng_state(),
        **(extra or {}),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def pretrain(
    run: RunDir,
    cfg: ExperimentConfig,
    explicit: dict,
    sweep: str | None = None,
    cell_id: str | None = None,
    progress_bar: bool = True,
    stop_at_step: int | None = None,
) -> dict:
    """Run (or resume) the pre-training stage; returns its metrics entry. ``stop_at_step`` simulates an interruption.

    In a multi-process job (benchmark.launch.distributed) every rank trains on its shard of each
    global batch under DDP and rank 0 alone writes the run directory.
    """
    from benchmark import distributed
    from benchmark.data.loader import SampledVideos, StepBatches, make_loader
    from benchmark.data.samplers import build_sampler
    from benchmark.device import resolve_runtime

    rank = distributed.info()
    main = rank.is_main
    run.create()
    if main:
        run.write_config(to_dict(cfg), explicit)
    ctx = resolve_runtime(
        distributed.rank_device(cfg.run.device), cfg.run.precision, cfg.run.channels_last, cfg.run.threads
    )
    if main:
        env = run.env() or base_env(cfg.run.seed, str(ctx.device), sweep, cell_id, config_hash(cfg))
        run.update_env(
            **{**env, "device": str(ctx.device), "autocast": str(ctx.dtype_autocast), "world_size": rank.world_size}
        )

    method_cls = METHODS.get(cfg.method.name)
    total = cfg.optim.steps if method_cls.trains else 0
    built = build_for_pretraining(cfg) if method_cls.trains else None
    if built is None:  # random init: the seeded initialisation, saved so every evaluation reads the same weights
        method = build_method(cfg, 1)
        entry = {
            "steps": 0,
            "trained": False,
            "backbone_init": getattr(method.backbone, "init", {}),
            "params_millions": _params_m(method.backbone),
        }
        if main:
            save_checkpoint(run.checkpoint_path(), method, None, 0)
            run.add_metrics("pretrain", entry)
            run.update_env(end_time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        return entry

    method = ctx.prepare(built.method)
    optimizer = make_optimizer([p for p in method.parameters() if p.requires_grad], cfg.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.optim))

    start = 0
    bad_total, seen = 0, 0
    step_losses: list[float] = []
    ckpt_path = run.checkpoint_path()
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=ctx.device, weights_only=False)
        method.load_state_dict(state["model"])
        if state.get("optimizer"):
            optimizer.load_state_dict(state["optimizer"])
        method.load_extra_checkpoint_state(state.get("method_extra", {}))
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start = state["step"]
        # the loss window behind final_loss and the sample counters continue, so a resumed run reports as one
        loop = state.get("loop", {})
        step_losses = list(loop.get("recent_losses", []))
        bad_total, seen = int(loop.get("bad_samples", 0)), int(loop.get("samples", 0))
    if main:  # lines logged after the checkpoint (or, without one, by a killed first attempt) come again
        run.truncate_scalars("pretrain", start)

    sampler = build_sampler(
        method_cls.sampler,
        cfg.data.resolution,
        train=True,
        short_video=cfg.data.short_video,
        **method_cls.sampler_options(cfg.method, built.info),
    )
    dataset = SampledVideos(built.records, sampler, cfg.data.decoder, cfg.run.seed, with_labels=method_cls.needs_labels)
    if rank.enabled and cfg.optim.batch_size % rank.world_size:
        raise UserError(f"optim.batch_size={cfg.optim.batch_size} must be divisible by the {rank.world_size} DDP ranks")
    batches = StepBatches(len(built.records), cfg.optim.batch_size, total, cfg.run.seed, start_step=start)
    loader = make_loader(dataset, distributed.shard(batches), num_workers=cfg.data.num_workers)
    train_step = distributed.training_step_fn(method)

    def checkpoint(path: Path, step: int) -> None:
        if main:
            loop = {"recent_losses": step_losses[-10:], "bad_samples": bad_total, "samples": seen}
            save_checkpoint(path, method, optimizer, step, {"scheduler": scheduler.state_dict(), "loop": loop})

    request = CheckpointRequest()
    request.install()
    t0, data_wait = time.perf_counter(), 0.0
    pending: list[dict] = []
    method.train()
    bar = tqdm(
        total=total,
        initial=start,
        desc=f"pretrain {cfg.method.name}",
        disable=not (progress_bar and main),
        dynamic_ncols=True,
    )
    step = start
    t_wait = time.perf_counter()
    try:
        for batch in loader:
            data_wait += time.perf_counter() - t_wait
            bad = batch.pop("bad")
            bad_total += len(bad)
            seen += cfg.optim.batch_size
            for b in bad:
                tqdm.write(f"warning: skipped bad sample {b}")
            if seen >= 10 * cfg.optim.batch_size and bad_total / seen > cfg.data.max_bad_fraction:
                raise UserError(
                    f"{bad_total} of {seen} samples failed to decode (> data.max_bad_fraction={cfg.data.max_bad_fraction}); run `vssl check-data`"
                )
            batch = {k: ctx.to_input(v) if torch.is_tensor(v) else v for k, v in batch.items()}
            progress = Progress(step=step, total_steps=total, epoch=batches.epoch_of(step))
            with ctx.autocast():
                out = train_step(batch, progress)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(method.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            loss = float(out.loss.detach())
            if rank.enabled:  # one collective per step: the mean loss, and whether any rank was signalled
                (loss,) = distributed.all_reduce_mean([loss])
                request.requested, request.stop = distributed.any_rank(request.requested, request.stop)
            step_losses.append(loss)
            del step_losses[:-10]
            if not math.isfinite(loss):
                raise RuntimeError(f"loss is {loss} at step {step}")
            if main and (step % cfg.run.log_every == 0 or step == total):
                pending.append(
                    {
                        "stage": "pretrain",
                        "step": step,
                        "epoch": progress.epoch,
                        "lr": scheduler.get_last_lr()[0],
                        **out.scalars,
                    }
                )
                run.log_scalars(pending)
                pending = []
                bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)
            if step in cfg.run.epoch_checkpoints:
                checkpoint(run.checkpoint_path(f"step_{step}.pt"), step)
            if step % cfg.run.checkpoint_every == 0 or request.requested or step == total:
                checkpoint(ckpt_path, step)
                request.requested = False
            if request.stop:
                bar.close()
                print(
                    f"pretrain: checkpoint at step {step} on signal {request.signum}; handing over to the job's handler",
                    file=sys.stderr,
                    flush=True,
                )
                request.hand_over()  # submitit: requeue this job and exit; otherwise go on
                request.stop = False
                request.install()
            if stop_at_step is not None and step >= stop_at_step:
                bar.close()
                return {"interrupted_at": step}
            t_wait = time.perf_counter()
    finally:
        request.uninstall()
    bar.close()
    wall = time.perf_counter() - t0
    entry = {
        "steps": total,
        "trained": True,
        "resumed_from": start,
        "final_loss": float(np.mean(step_losses[-10:])) if step_losses else None,
        "wall_s": round(wall, 2),
        "samples_per_s": round((seen - start * cfg.optim.batch_size) / wall, 2) if wall > 0 else None,
        "data_wait_fraction": round(data_wait / wall, 4) if wall > 0 else None,
        "bad_samples": bad_total,
        "num_videos": len(built.records),
        "dataset": cfg.data.dataset,
        "world_size": rank.world_size,
        "backbone_init": getattr(method.backbone, "init", {}),
        "params_millions": _params_m(method.backbone),
    }
    if main:
        run.add_metrics("pretrain", entry)
        run.update_env(end_time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return entry


def _params_m(module: torch.nn.Module) -> float:
    from benchmark.backbones import param_count_millions

    return round(param_count_millions(module), 3)


def load_backbone(run: RunDir, cfg: ExperimentConfig, checkpoint: str = "last.pt"):
    """The pre-trained (or random-init) backbone of a run, for evaluation."""
    from benchmark.backbones import build_backbone

    path = run.checkpoint_path(checkpoint)
    seed_everything(cfg.run.seed)
    backbone = build_backbone(cfg.backbone)
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: run the pretrain stage first")
    state = torch.load(path, map_location="cpu", weights_only=False)
    backbone.load_state_dict(state["backbone"])
    return backbone, str(path), int(state.get("step", 0))
