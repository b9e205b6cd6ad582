"""Pre-training: config -> data -> method -> steps -> run directory.

Resumable exactly: ``checkpoints/last.pt`` holds the model (with buffers
such as a memory bank), optimiser, scheduler, RNG states and the step; the
data order is a pure function of (seed, step) (benchmark.data.loader), so a
resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark import checkpoint as ckpt
from benchmark.config import ExperimentConfig, OptimConfig, config_hash, to_dict
from benchmark.errors import UserError
from benchmark.method import (
    Chance,
    DataInfo,
    Method,
    Pretraining,
    Progress,
    StepOutput,
    check_loss_has_gradient,
    check_step_output,
    method_label,
    pretext_verdict,
)
from benchmark.registry import METHODS
from benchmark.rundir import RunDir, base_env


@dataclass
class Built:
    method: Method
    info: DataInfo
    records: list  # the videos pre-training reads
    classes: list[str]
    heldout: list = field(default_factory=list)  # videos kept out of pre-training, for the pretext check


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_compatible(method_cls: type[Method], backbone_kind: str, method_name: str, backbone_name: str) -> None:
    want = getattr(method_cls, "backbone_kind", "either")
    if want not in ("2d", "3d", "either"):  # a plugin's "2D" would read "needs a 2D backbone, but ... is 2D"
        raise UserError(f"method '{method_name}' ({method_cls.__module__}) declares backbone_kind = {want!r}: one of "
                        "'2d', '3d', 'either'")  # fmt: skip
    if want != "either" and want != backbone_kind:
        raise UserError(
            f"method '{method_name}' needs a {want.upper()} backbone, but '{backbone_name}' is {backbone_kind.upper()} (set backbone.name or backbone.inflate)"
        )


def data_info(cfg: ExperimentConfig, num_videos: int, num_classes: int = 0) -> DataInfo:
    return DataInfo(num_videos=max(1, num_videos), num_classes=num_classes, resolution=cfg.data.resolution)


def build_method(cfg: ExperimentConfig, num_videos: int, num_classes: int = 0, meta: bool = False) -> Method:
    """Seeded construction of backbone + method (the same init every stage and every resume starts from).

    Runs the method's data-dependent check first, so a bad combination fails with one line."""
    from benchmark.backbones import build_backbone

    method_cls = METHODS.get(cfg.method.name)
    info = data_info(cfg, num_videos, num_classes)
    if not meta:
        method_cls.check(cfg.method, info)
    method_cfg = method_cls.resolve(cfg.method, info)
    seed_everything(cfg.run.seed)
    backbone = build_backbone(cfg.backbone, device_meta=meta)
    check_compatible(method_cls, backbone.kind, cfg.method.name, cfg.backbone.name)
    if meta:
        with torch.device("meta"):
            return method_cls(method_cfg, backbone, info)
    return method_cls(method_cfg, backbone, info)


def pretraining_index(cfg: ExperimentConfig):
    """The index pre-training reads (the labelled split for methods that need labels)."""
    from benchmark.data.index import build_index

    index = build_index(cfg.data.dataset, split=cfg.data.split, subset="train", storage=cfg.data.storage)
    if not index.records:
        raise UserError(f"dataset '{cfg.data.dataset}' has no videos in split {cfg.data.split} train ({index.root})")
    # said, never fatal: most Kinetics copies lack a good share of their listed clips, and pre-training on the rest is
    # the field's practice (evaluations stop past data.max_bad_fraction: their test sets must be whole)
    warning = index.missing_warning(f"pre-training videos of '{cfg.data.dataset}'", max_fraction=1.0)
    if warning:
        _warn_once(warning)
    return index


def validate(cfg: ExperimentConfig, data: bool = True, evaluation: bool = True) -> DataInfo | None:
    """The load-time check of one run, before anything is written or submitted (``vssl pretrain``,
    ``vssl sweep`` local, --dry-run and SLURM submissions alike). Static checks already ran when the config
    was built (each section's ``__post_init__``); this adds what needs the registry and the data:

    - the backbone exists and suits the method; a method that pre-trains has at least one step; a trainable
      method implements ``training_step`` and ``chance``;
    - with ``data``: every dataset a stage reads is named in the paths file and exists (``evaluation``: the
      downstream sets too, with the split files of each evaluated split), the method's
      :meth:`~benchmark.method.Method.check` passes on the pre-training set, and its training sampler builds from
      its config (:func:`check_sampler`); the DataInfo is returned.
    """
    from benchmark.backbones import backbone_kind, check_resolution
    from benchmark.keys import Stage
    from benchmark.tracking import check_wandb

    method_cls = METHODS.get(cfg.method.name)
    check_compatible(method_cls, backbone_kind(cfg.backbone), cfg.method.name, cfg.backbone.name)
    check_resolution(cfg.backbone, cfg.data.resolution)
    check_wandb(cfg.run.wandb)
    pretrains = method_cls.pretraining is not Pretraining.NONE
    if pretrains and cfg.optim.steps < 1:
        raise UserError(
            f"optim.steps = {cfg.optim.steps}: method '{cfg.method.name}' pre-trains, so it needs at least one step"
        )
    if method_cls.pretraining is Pretraining.WEIGHTS and cfg.optim.lr <= 0:
        raise UserError(f"optim.lr = {cfg.optim.lr}: method '{cfg.method.name}' trains, so it needs a positive lr")
    if method_cls.pretraining is Pretraining.WEIGHTS and cfg.optim.warmup_steps >= cfg.optim.steps:
        raise UserError(  # the learning rate would never reach optim.lr: the schedule is not the one asked for
            f"optim.warmup_steps = {cfg.optim.warmup_steps} is not below optim.steps = {cfg.optim.steps}: the "
            "learning rate would never finish warming up"
        )
    if method_cls.pretraining is Pretraining.WEIGHTS:
        missing = [
            f"{name}()" for name in ("training_step", "chance") if getattr(method_cls, name) is getattr(Method, name)
        ]
        if missing:
            raise UserError(
                f"method '{cfg.method.name}' ({method_cls.__module__}.{method_cls.__name__}) does not implement "
                f"{' or '.join(missing)}, which every trainable method must (docs/adding-a-method.md)"
            )
    if not data:
        return None
    checked = set()
    for text in cfg.run.stages if evaluation else ():
        stage = Stage.parse(text).resolve(cfg.eval.dataset, cfg.eval.split)
        if not stage.is_pretrain and (stage.dataset, stage.split) not in checked:
            # its split files too, indexed as the evaluation will read them (the index is cached for it): a missing
            # split fails here, not after pre-training
            check_evaluation_set(stage.dataset, stage.split)
            checked.add((stage.dataset, stage.split))
    if not pretrains:
        return None
    index = pretraining_index(cfg)
    records, _ = split_pretext(index.records, cfg, method_cls)
    info = data_info(cfg, len(records), len(index.classes) if method_cls.needs_labels else 0)
    if cfg.optim.batch_size > len(records):
        # legal (the tests' tiny sets do it), but a video twice in a batch is a false negative for a contrastive
        # method, and 100000 for 100 was most likely a typo: said once per message, not once per sweep cell
        _warn_once(
            f"optim.batch_size = {cfg.optim.batch_size} is more than the {len(records)} videos '{cfg.method.name}' "
            f"pre-trains on (dataset '{cfg.data.dataset}'): each batch holds videos twice"
        )
    method_cls.check(cfg.method, info)
    check_sampler(cfg, method_cls, info)
    return info


_WARNED: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"warning: {text}", file=sys.stderr, flush=True)


def check_evaluation_set(dataset: str, split: int) -> None:
    """The downstream set exists with both subsets of the split (indexed as the evaluation will read them: the index
    is cached), and its test videos are not its train videos (a class-per-folder set such as the unlabelled pool
    has no split: a probe would be scored on the videos it was fit on)."""
    from benchmark.data.index import build_index
    from benchmark.paths import resolve_dataset

    location = resolve_dataset(dataset, must_exist=True)
    train, test = (build_index(dataset, split=split, subset=subset) for subset in ("train", "test"))
    if {r.path for r in train.records} & {r.path for r in test.records}:
        raise UserError(
            f"eval.dataset '{dataset}' (format {location.format}) has no separate test split: its train and test "
            "videos overlap, so a probe would be scored on videos it was fit on; evaluate on a set with splits "
            "(synthetic, ucf101, hmdb51)"
        )


def check_sampler(cfg: ExperimentConfig, method_cls, info: DataInfo) -> None:
    """Build the method's training sampler once from its resolved config, so that a mis-wired method (a typo in
    ``sampler_fields``, an option its sampler does not take, an unknown sampler) fails here, in one line, before a
    run folder is written or a job queued."""
    try:
        training_sampler(method_cls, method_cls.resolve(cfg.method, info), cfg, info)
    except UserError as exc:
        raise UserError(f"method '{cfg.method.name}': {exc}") from None
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise UserError(
            f"method '{cfg.method.name}' cannot build its sampler '{method_cls.sampler}' from its config: "
            f"{type(exc).__name__}: {exc}"
        ) from None


# settings a resumed run may change: where, how fast and how verbosely it runs, and how it is evaluated, not what
# it learns from (run.seed, the data, the method, the backbone and the schedule must match)
RESUME_MAY_CHANGE = (
    "eval.", "data.num_workers", "data.decoder", "data.storage", "data.max_bad_fraction",
    *(f"run.{k}" for k in ("device", "precision", "channels_last", "threads", "log_every", "checkpoint_every",
                          "epoch_checkpoints", "evaluate_epoch_checkpoints", "time_budget_s", "pretext_samples",
                          "wandb", "compile", "stages")),
)  # fmt: skip


def check_resumable(run: RunDir, cfg: ExperimentConfig) -> None:
    """A run directory that already holds a run takes only the same settings (it resumes): another method, backbone,
    data or schedule would load the old checkpoint into a different model, or continue it under a new schedule,
    and overwrite its config.yaml. Values left ``auto`` match what the first launch resolved them to."""
    if not (run.path / "config.yaml").exists():
        return
    changes = setting_changes(run, cfg)
    if changes:
        raise UserError(
            f"{run.path} already holds a run with other settings ({changes}): choose another --out, or rerun "
            "with its settings to resume it"
        )


def setting_changes(
    run: RunDir | Mapping, cfg: ExperimentConfig, evaluated: bool = False, may_change: tuple = RESUME_MAY_CHANGE
) -> str:
    """'optim.steps 2 -> 4, ...': the fields ``cfg`` sets differently from the run's config.yaml (or a recorded
    config: a queued job's) outside ``may_change`` (default: what a resume may change; '' when none).
    ``evaluated``: the run's evaluations are done, so the evaluation settings they were made with count too
    (bookkeeping such as eval.batch_size aside)."""
    from benchmark.config import BOOKKEEPING_FIELDS, describe_changes, differences

    recorded = run.config() if isinstance(run, RunDir) else run
    differ = [
        f"{key} {old!r} -> {new!r}"
        for key, (old, new) in differences(recorded, cfg).items()
        if new != "auto"  # an 'auto' matches what the first launch resolved it to
        and (
            not key.startswith(may_change) or (evaluated and key.startswith("eval.") and key not in BOOKKEEPING_FIELDS)
        )
    ]
    return describe_changes(differ)


def training_sampler(method_cls, method_cfg, cfg: ExperimentConfig, info: DataInfo):
    """The method's training sampler from its resolved config: the one pre-training, the held-out pretext check
    and the load-time check all use."""
    from benchmark.data.samplers import build_sampler

    options = method_cls.sampler_options(method_cfg, info)
    return build_sampler(
        method_cls.sampler, cfg.data.resolution, train=True, short_video=cfg.data.short_video, **options
    )


def split_pretext(records: list, cfg: ExperimentConfig, method_cls) -> tuple[list, list]:
    """(pre-training videos, held-out videos): an objective's pretext is checked on videos it never trained on.
    The held-out ones are the first by a hash of their id -- the same for every method and seed -- at most
    data.pretext_heldout and a fifth of the set; controls hold out none."""
    if method_cls.pretraining is not Pretraining.WEIGHTS:
        return list(records), []
    count = min(cfg.data.pretext_heldout, len(records) // 5)
    # surrogateescape: a file name that is not UTF-8 (bytes kept as surrogates by the OS layer) hashes too
    ranked = sorted(records, key=lambda r: hashlib.sha1(r.video_id.encode("utf-8", "surrogateescape")).hexdigest())
    held = {r.video_id for r in ranked[:count]}
    return [r for r in records if r.video_id not in held], [r for r in records if r.video_id in held]


def build_for_pretraining(cfg: ExperimentConfig) -> Built:
    method_cls = METHODS.get(cfg.method.name)
    index = pretraining_index(cfg)
    records, heldout = split_pretext(index.records, cfg, method_cls)
    num_classes = len(index.classes) if method_cls.needs_labels else 0
    method = build_method(cfg, len(records), num_classes)
    return Built(method, method.info, records, index.classes, heldout)


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)


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


def save_checkpoint(path: Path, method: Method, optimizer, step: int, extra: dict | None = None) -> None:
    """The state a stage resumes from, written atomically with the previous file kept (benchmark.checkpoint)."""
    state = {
        "step": step,
        "model": method.state_dict(),
        "backbone": method.backbone.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "method_extra": method.extra_checkpoint_state(),
        "rng": ckpt.rng_state(),
        **(extra or {}),
    }
    ckpt.save(path, state)


def step_seed(seed: int, step: int) -> int:
    """The seed of training step ``step``: a step's randomness (dropout, shuffled orders, mining's random fill)
    is a function of (seed, step), whatever ran before it -- a resumed run, any number of data workers."""
    from benchmark.data.loader import sample_seed

    return sample_seed(seed, step, -1)


def log_values(scalars: dict) -> dict[str, float]:
    """A step's scalars as numbers, for the log (a host sync: logging steps only). NaN means 'not measured this
    step' (e.g. no hard negative was found) and is left out."""
    out = {}
    for name, value in scalars.items():
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError):  # a plugin's string, vector or object
            raise UserError(f"training_step's scalar '{name}' is {value!r:.40}: StepOutput.scalars takes numbers or "
                            "one-element tensors") from None  # fmt: skip
        if not math.isnan(number):
            out[name] = number
    return out


# --------------------------------------------------------------------------- the training step
class Trainer:
    """A method with its optimiser, schedule and runtime: :meth:`train_step` is one optimiser step.

    The step never waits for the device: the loss and the method's scalars stay tensors, and the loop turns
    them into numbers on logging and checkpoint steps only (:func:`log_values`)."""

    def __init__(self, method: Method, cfg: ExperimentConfig, ctx):
        from benchmark import distributed

        self.method, self.cfg, self.ctx = method, cfg, ctx
        self.optimizer = make_optimizer([p for p in method.parameters() if p.requires_grad], cfg.optim)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg.optim))
        self.step_fn = distributed.training_step_fn(method)

    def train_step(self, batch: dict, progress: Progress) -> StepOutput:
        with self.ctx.autocast():
            out = self.step_fn(batch, progress)
        check_step_output(out, self.method)
        check_loss_has_gradient(out, self.method)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return out

    def save(self, path: Path, step: int, loop_record: dict) -> None:
        extra = {"scheduler": self.scheduler.state_dict(), "loop": loop_record}
        save_checkpoint(path, self.method, self.optimizer, step, extra)

    def resume(self, folder: Path) -> LoopState:
        """Load the run's checkpoint (model, optimiser, schedule, RNG) and return where the loop stood; a fresh
        LoopState when there is none. A damaged last.pt falls back to last.prev.pt or the newest step_N.pt."""
        state = ckpt.load_latest(folder, map_location=self.ctx.device)
        if state is None:
            return LoopState()
        self.method.load_state_dict(state["model"])
        if state.get("optimizer"):
            self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_extra_checkpoint_state(state.get("method_extra", {}))
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        # the loss window behind final_loss and the sample counters continue, so a resumed run reports as one
        loop = state.get("loop", {})
        return LoopState(
            step=state["step"],
            recent_losses=list(loop.get("recent_losses", [])),
            bad_samples=int(loop.get("bad_samples", 0)),
            samples=int(loop.get("samples", 0)),
            pretext_step0=loop.get("pretext_step0"),
        )


@dataclass
class LoopState:
    """Where the loop stands; checkpoints carry it so a resumed run reports as one."""

    step: int = 0
    recent_losses: list = field(default_factory=list)  # the last 10 step losses (tensors until a sync point)
    bad_samples: int = 0
    samples: int = 0
    pretext_step0: dict | None = None  # the held-out pretext score before the first step

    def add_loss(self, loss: torch.Tensor) -> None:
        self.recent_losses.append(loss.detach())
        del self.recent_losses[:-10]

    def losses(self) -> list[float]:
        """The recent losses as numbers, averaged over DDP ranks (a host sync)."""
        from benchmark import distributed

        values = [float(x) for x in self.recent_losses]
        return distributed.all_reduce_mean(values) if values else values

    def checkpoint_record(self) -> dict:
        return {"recent_losses": self.losses(), "bad_samples": self.bad_samples, "samples": self.samples,
                "pretext_step0": self.pretext_step0}  # fmt: skip


# --------------------------------------------------------------------------- the stage
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

    In a multi-process job (benchmark.distributed) every rank trains on its shard of each global batch under
    DDP and rank 0 alone writes the run directory. Everything that can fail on the config or the data fails
    before the run directory is created.
    """
    from benchmark import distributed
    from benchmark.device import resolve_runtime

    if run.finished_pretraining():
        # a finished run keeps its entry (cost figures included), config.yaml and checkpoint as they are
        return run.metrics()["pretrain"]
    rank = distributed.info()
    method_cls = METHODS.get(cfg.method.name)
    validate(cfg, data=False)  # the data-dependent checks run when the method is built, below
    ctx = resolve_runtime(
        distributed.rank_device(cfg.run.device), cfg.run.precision, cfg.run.channels_last, cfg.run.threads
    )
    if method_cls.pretraining is Pretraining.NONE:
        method = build_method(cfg, 1)  # random init: the seeded initialisation, saved for every evaluation
        _open_run(run, cfg, explicit, ctx, sweep, cell_id, rank)
        return _save_initialisation(run, method, rank.is_main)
    built = build_for_pretraining(cfg)
    if method_cls.pretraining is Pretraining.WEIGHTS:
        stated_chance(built.method, cfg.optim.batch_size)
    if rank.enabled and cfg.optim.batch_size % rank.world_size:
        raise UserError(f"optim.batch_size={cfg.optim.batch_size} must be divisible by the {rank.world_size} DDP ranks")
    # the run's config.yaml records the method config as resolved on this data (e.g. TCE's K for 'auto');
    # its hash stays the one of the config as given, which relaunches compare against
    _open_run(run, dataclasses.replace(cfg, method=built.method.cfg), explicit, ctx, sweep, cell_id, rank,
              config_hash(cfg))  # fmt: skip
    trainer = Trainer(ctx.prepare(built.method), cfg, ctx)
    loop = trainer.resume(run.checkpoint_path().parent)
    if rank.is_main:  # lines logged after the checkpoint (or, without one, by a killed first attempt) come again
        run.truncate_scalars("pretrain", loop.step)
    if loop.step == 0 and built.heldout:  # before any step (a resumed run has it in its checkpoint)
        loop.pretext_step0 = pretext_score(trainer.method, built, cfg, trainer.ctx, method_cls)
    loader, batches = _training_loader(cfg, built, method_cls, loop.step, ctx.device)
    if cfg.run.compile != "off":  # in place: the state_dict keeps its keys, so checkpoints load either way
        trainer.method.backbone.compile(backend=cfg.run.compile)
    from benchmark.tracking import Tracker

    tracker = Tracker(run.path, cfg, "pretrain", resume_step=loop.step, sweep=sweep, enabled=rank.is_main)
    t0 = time.perf_counter()
    try:
        data_wait = _train(run, cfg, trainer, loader, batches, loop, rank, progress_bar, stop_at_step, tracker)
    except BaseException:
        tracker.close()
        raise
    if data_wait is None:
        tracker.close()
        return {"interrupted_at": loop.step}
    wall = time.perf_counter() - t0
    recent = loop.losses()
    entry = {
        "steps": cfg.optim.steps,
        "trained": True,
        "resumed_from": batches.start,
        "final_loss": float(np.mean(recent)) if recent else None,
        "wall_s": round(wall, 2),
        "samples_per_s": round((loop.samples - batches.start * cfg.optim.batch_size) / wall, 2) if wall > 0 else None,
        "data_wait_fraction": round(data_wait / wall, 4) if wall > 0 else None,
        "bad_samples": loop.bad_samples,
        "num_videos": len(built.records),
        "dataset": cfg.data.dataset,
        "world_size": rank.world_size,
        "backbone_init": getattr(trainer.method.backbone, "init", {}),
        "params_millions": _params_m(trainer.method.backbone),
        "pretext": pretext_entry(trainer.method, built, cfg, trainer.ctx, method_cls, loop.pretext_step0),
    }
    if rank.is_main:
        run.add_metrics("pretrain", entry)
        run.stamp_end()
    tracker.entry("pretrain", entry, step=cfg.optim.steps)
    tracker.close()
    return entry


# --------------------------------------------------------------------------- did it learn its pretext task?
PRETEXT_SEED = 20_201  # the held-out samples are the same for every run: a fixed seed, not the run's


def _snapshot(method: Method) -> dict[str, torch.Tensor]:
    """Copies of the method's dense, materialised state tensors (extra state, sparse, meta and lazy entries are not
    compared)."""
    out = {}
    for key, value in method.state_dict().items():
        if not torch.is_tensor(value) or value.is_sparse or value.is_meta:
            continue
        try:
            out[key] = value.detach().clone()
        except (ValueError, RuntimeError):  # an uninitialised lazy parameter
            continue
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaN equal to NaN (a buffer may hold NaN for 'not measured')."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return torch.equal(a, b) or (
        a.is_floating_point() and bool(torch.isclose(a, b, rtol=0, atol=0, equal_nan=True).all())
    )


def pretext_score(method: Method, built: Built, cfg: ExperimentConfig, ctx, method_cls) -> dict:
    """The pretext measured on run.pretext_samples samples of the held-out videos (each batch of distinct
    videos where it can be), without touching the method: no_grad, eval mode, its own RNG, state restored."""
    from benchmark.data.loader import SampledVideos, UndecodableVideos, make_loader

    heldout, batch_size = built.heldout, cfg.optim.batch_size
    sampler = training_sampler(method_cls, method.cfg, cfg, built.info)
    dataset = SampledVideos(heldout, sampler, cfg.data.decoder, PRETEXT_SEED, with_labels=method_cls.needs_labels)
    n_batches = max(1, math.ceil(cfg.run.pretext_samples / batch_size))
    addresses = [
        [(-1 - b, j, (b * batch_size + j) % len(heldout)) for j in range(batch_size)] for b in range(n_batches)
    ]
    was_training = method.training
    before = _snapshot(method)
    totals = {"value": 0.0, "loss": 0.0, "chance_accuracy": 0.0}
    seen_chance, samples, bad, class_counts = False, 0, set(), None
    method.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(PRETEXT_SEED)
            for batch in make_loader(dataset, addresses, num_workers=0):
                bad.update(b.split(": ")[0] for b in batch.pop("bad"))
                batch = {k: ctx.to_input(v) if torch.is_tensor(v) else v for k, v in batch.items()}
                with ctx.autocast():
                    out = method.pretext_eval(batch, Progress(step=0, total_steps=cfg.optim.steps))
                if (
                    not isinstance(out, dict)
                    or "loss" not in out
                    or not ({"accuracy"} <= out.keys() or {"sse", "sst"} <= out.keys())
                ):
                    raise UserError(f"{method_label(method)}: pretext_eval returned "
                                    f"{out!r:.60}; it must return a dict with 'loss' and 'accuracy' (or 'sse' and "
                                    "'sst' for a regression) (docs/adding-a-method.md)")  # fmt: skip
                n = len(batch["index"])
                value = out["accuracy"] if "accuracy" in out else 1 - out["sse"] / out["sst"]
                totals["value"] += float(value) * n
                totals["loss"] += float(out["loss"]) * n
                if "chance_accuracy" in out:
                    totals["chance_accuracy"] += float(out["chance_accuracy"]) * n
                    seen_chance = True
                if "class_counts" in out:
                    counts = out["class_counts"].detach().cpu().long()
                    class_counts = counts if class_counts is None else class_counts + counts
                samples += n
    except UndecodableVideos:
        return {"skipped": f"the held-out videos failed to decode ({len(heldout)} videos; run `vssl check-data`)"}
    finally:
        method.train(was_training)
    after = _snapshot(method)
    changed = [k for k, v in after.items() if k not in before or not _same(v, before[k])]
    if changed:  # training would start from (or the run end with) what the check left behind
        from benchmark.config import describe_changes

        which = describe_changes([f"'{k}'" for k in changed], shown=1)
        raise UserError(f"{method_label(method)}: pretext_eval changed its state "
                        f"({which}); it must leave the method untouched: no_grad, no buffer or bank "
                        "updates (docs/adding-a-method.md)")  # fmt: skip
    if bad:
        tqdm.write(f"warning: {len(bad)} held-out video(s) failed to decode; the pretext check replaced them")
    score = {"value": totals["value"] / samples, "loss": totals["loss"] / samples, "samples": samples,
             "videos": len(heldout)}  # fmt: skip
    if seen_chance:
        score["chance_accuracy"] = totals["chance_accuracy"] / samples
    if class_counts is not None:  # the best constant guess on these samples: the most frequent class
        score["chance_accuracy"] = float(class_counts.max()) / max(1, int(class_counts.sum()))
    return score


def stated_chance(method: Method, batch_size: int) -> Chance:
    """The method's chance level, checked: a Chance whose accuracy is a fraction in (0, 1] (or None), whose loss is a
    finite number (or None; a negative-cosine loss may be negative) and whose measure is a name. Asked when the
    method is built, before any step, so a plugin's slip costs no training."""
    chance = method.chance(batch_size)
    if not isinstance(chance, Chance):
        raise UserError(f"{method_label(method)}: chance() returned {chance!r:.40}, not a Chance(loss, accuracy[, "
                        "measure]) (docs/adding-a-method.md)")  # fmt: skip
    accuracy_ok = chance.accuracy is None or (isinstance(chance.accuracy, numbers.Real) and 0 < chance.accuracy <= 1)
    loss_ok = chance.loss is None or (isinstance(chance.loss, numbers.Real) and math.isfinite(chance.loss))
    if not (accuracy_ok and loss_ok and isinstance(chance.measure, str) and chance.measure):
        raise UserError(f"{method_label(method)}: chance({batch_size}) returned {chance}: its accuracy must be a "
                        "fraction in (0, 1] (1/12 for 12 classes, not 8.3) or None, its loss a finite number or None, "
                        "its measure a name ('accuracy', 'r2' or the method's own) (docs/adding-a-method.md)")  # fmt: skip
    return chance


def pretext_entry(method: Method, built: Built, cfg: ExperimentConfig, ctx, method_cls, step0: dict | None) -> dict:
    """metrics["pretrain"]["pretext"]: the held-out score at step 0 and at the end, the chance level, the verdict."""
    if method_cls.pretraining is not Pretraining.WEIGHTS:
        return {"exempt": "control (no learned features to check)"}
    if not built.heldout or step0 is None:
        return {"learned": None, "skipped": f"no held-out videos (data.pretext_heldout={cfg.data.pretext_heldout})"}
    if "skipped" in step0:
        return {"learned": None, "skipped": step0["skipped"]}
    final = pretext_score(method, built, cfg, ctx, method_cls)
    if "skipped" in final:
        return {"learned": None, "skipped": final["skipped"]}
    chance = stated_chance(method, cfg.optim.batch_size)
    if "chance_accuracy" in final:  # chance measured on the held-out samples (in-batch retrieval, majority class)
        chance = dataclasses.replace(chance, accuracy=final["chance_accuracy"])
    return {"measure": chance.measure, "chance": dataclasses.asdict(chance), "step0": step0, "final": final,
            **pretext_verdict(step0, final, chance)}  # fmt: skip


def _open_run(
    run: RunDir, cfg: ExperimentConfig, explicit: dict, ctx, sweep, cell_id, rank, hash_: str | None = None
) -> None:
    """Create the run directory and write its config and provenance (rank 0)."""
    run.create()
    if not rank.is_main:
        return
    run.write_config(to_dict(cfg), explicit)
    env = run.env() or base_env(cfg.run.seed, str(ctx.device), sweep, cell_id, hash_ or config_hash(cfg))
    fields = {"device": str(ctx.device), "autocast": str(ctx.dtype_autocast), "world_size": rank.world_size}
    run.update_env(**{**env, **fields, "code": code_provenance(cfg)})


def code_provenance(cfg: ExperimentConfig) -> dict:
    """Which code the run's method and sampler come from (a plugin: its distribution, version, git state)."""
    from benchmark.registry import METHODS, SAMPLERS, provenance

    method_cls = METHODS.get(cfg.method.name)
    out = {"method": provenance(METHODS, cfg.method.name)}
    if method_cls.sampler:
        out["sampler"] = provenance(SAMPLERS, method_cls.sampler)
    return out


def _save_initialisation(run: RunDir, method: Method, main: bool) -> dict:
    entry = {
        "steps": 0,
        "trained": False,
        "pretext": {"exempt": "control (no learned features to check)"},
        "backbone_init": getattr(method.backbone, "init", {}),
        "params_millions": _params_m(method.backbone),
    }
    if main:
        save_checkpoint(run.checkpoint_path(), method, None, 0)
        run.add_metrics("pretrain", entry)
        run.stamp_end()
    return entry


def _training_loader(cfg: ExperimentConfig, built: Built, method_cls, start: int, device=None):
    """Batches for steps start..total-1: each a pure function of (seed, step), so a resume sees the same ones."""
    from benchmark import distributed
    from benchmark.data.loader import SampledVideos, StepBatches, make_loader

    sampler = training_sampler(method_cls, built.method.cfg, cfg, built.info)
    dataset = SampledVideos(
        built.records, sampler, cfg.data.decoder, cfg.run.seed, with_labels=method_cls.needs_labels, keep_decoded=True
    )
    batches = StepBatches(len(built.records), cfg.optim.batch_size, cfg.optim.steps, cfg.run.seed, start_step=start)
    from benchmark.device import resolve_workers

    device = device if device is not None else torch.device("cpu")
    workers = resolve_workers(cfg.data.num_workers, device)
    loader = make_loader(dataset, distributed.shard(batches), num_workers=workers, pin_memory=device.type == "cuda")
    return loader, batches


def _train(run, cfg, trainer: Trainer, loader, batches, loop: LoopState, rank, progress_bar, stop_at_step, tracker):
    """The loop: steps, bad-sample accounting, logging, checkpoints and SLURM's checkpoint signal.

    Returns the seconds spent waiting for data, or None when ``stop_at_step`` interrupted it. Host syncs happen
    on logging and checkpoint steps only: there the loss becomes a number (averaged over DDP ranks), is checked
    for NaN, and -- under DDP -- the ranks agree whether a checkpoint signal arrived."""
    from benchmark import distributed

    total, main, bs = cfg.optim.steps, rank.is_main, cfg.optim.batch_size
    request = CheckpointRequest()
    request.install()
    trainer.method.train()
    bar = tqdm(
        total=total,
        initial=loop.step,
        desc=f"pretrain {cfg.method.name}",
        disable=not (progress_bar and main),
        dynamic_ncols=True,
    )
    data_wait = 0.0
    first_loss = None  # step 1's loss (a fresh run only)
    t_wait = time.perf_counter()
    try:
        for batch in loader:
            data_wait += time.perf_counter() - t_wait
            _count_bad(batch.pop("bad"), loop, bs, cfg.data.max_bad_fraction)
            batch = {k: trainer.ctx.to_input(v) if torch.is_tensor(v) else v for k, v in batch.items()}
            progress = Progress(step=loop.step, total_steps=total, epoch=batches.epoch_of(loop.step))
            torch.manual_seed(step_seed(cfg.run.seed, loop.step))
            out = trainer.train_step(batch, progress)
            loop.step += 1
            step = loop.step
            if step == 1:  # kept as a tensor (no sync): read only if the loss turns out not finite
                first_loss = out.loss.detach()
            _kill_hook(step)
            loop.add_loss(out.loss)
            logging = step % cfg.run.log_every == 0 or step == total
            last_due = step % cfg.run.checkpoint_every == 0 or step == total
            keep_due = step in cfg.run.epoch_checkpoints
            # the sync point: on steps every rank agrees on (a collective), plus a local signal without DDP
            if logging or last_due or keep_due or (request.requested and not rank.enabled):
                (loss,) = distributed.all_reduce_mean([float(out.loss.detach())])
                if not math.isfinite(loss):  # the checkpoints before this step stay
                    # every rank is here (the loss above is their mean), so they agree on step 1's loss too
                    first = distributed.all_reduce_mean([float(first_loss)])[0] if first_loss is not None else 0.0
                    if not math.isfinite(first):  # no learning rate makes the loss of step 1 (before any update) NaN
                        raise UserError(
                            f"the loss is {loss} at step {step} and was {first} already at step 1, before "
                            f"any update: {method_label(trainer.method)} computes a loss that is not finite on its "
                            "batches (a log of 0, a division by zero, an empty selection?); not a learning-rate problem"
                        )
                    raise UserError(
                        f"the loss is {loss} at step {step}: training diverged; lower optim.lr (now {cfg.optim.lr}) "
                        "or raise optim.warmup_steps, and rerun into a new --out"
                    )
                if rank.enabled and logging:  # every rank checkpoints and stops at the same step
                    request.requested, request.stop = distributed.any_rank(request.requested, request.stop)
                if main and logging:
                    values = {"lr": trainer.scheduler.get_last_lr()[0], **log_values(out.scalars)}
                    run.log_scalars([{"stage": "pretrain", "step": step, "epoch": progress.epoch, **values}])
                    tracker.scalars(step, values)
                    bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)
            agreed = not rank.enabled or logging  # under DDP a signal is acted on at the next logging step
            save_last = last_due or (request.requested and agreed)
            if keep_due or save_last:
                record = loop.checkpoint_record()  # on every rank: the loss window is averaged over ranks
                if main and keep_due:
                    trainer.save(run.checkpoint_path(f"step_{step}.pt"), step, record)
                if main and save_last:
                    trainer.save(run.checkpoint_path(), step, record)
                request.requested = False if save_last else request.requested
            if request.stop and agreed:
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
                return None
            t_wait = time.perf_counter()
    finally:
        request.uninstall()
    bar.close()
    return data_wait


def _kill_hook(step: int) -> None:
    """Test hook (tests/launch/test_resume_kill.py): VSSL_TEST_KILL_AT_STEP=N kills this process with SIGKILL
    right after step N, as a preemption without warning would."""
    if os.environ.get("VSSL_TEST_KILL_AT_STEP") == str(step):
        os.kill(os.getpid(), signal.SIGKILL)


def too_many_bad(bad: int, samples: int, batch_size: int, max_fraction: float, final: bool = False) -> bool:
    """The loaders' rule for replaced (undecodable) samples: past ``max_fraction`` of them, judged once ten batches
    are in (or at the ``final`` step of a shorter training), so one early bad video does not stop a run."""
    return (samples >= 10 * batch_size or final) and bad / samples > max_fraction


def _count_bad(bad: list, loop: LoopState, batch_size: int, max_fraction: float) -> None:
    """Undecodable samples were replaced by the loader: count and name them; stop past the allowed fraction."""
    loop.bad_samples += len(bad)
    loop.samples += batch_size
    for b in bad:
        tqdm.write(f"warning: skipped bad sample {b}")
    if too_many_bad(loop.bad_samples, loop.samples, batch_size, max_fraction):
        raise UserError(
            f"{loop.bad_samples} of {loop.samples} samples failed to decode "
            f"(> data.max_bad_fraction={max_fraction}); run `vssl check-data`"
        )


def _params_m(module: torch.nn.Module) -> float:
    from benchmark.backbones import param_count_millions

    return round(param_count_millions(module), 3)


def load_backbone(run: RunDir, cfg: ExperimentConfig, checkpoint: str = "last.pt"):
    """The pre-trained (or random-init) backbone of a run, for evaluation."""
    backbone, path, step, _ = _load_checkpoint(run, cfg, checkpoint)
    return backbone, path, step


def load_eval_encoder(run: RunDir, cfg: ExperimentConfig, checkpoint: str = "last.pt"):
    """What the frozen-feature protocols read: the method's ``eval_encoder`` over the run's backbone (the
    backbone itself unless the method says otherwise), its checkpoint path and step."""
    backbone, path, step, state = _load_checkpoint(run, cfg, checkpoint)
    method_cls = METHODS.get(cfg.method.name)
    return method_cls.eval_encoder(cfg.method, backbone, state.get("model") or {}), path, step


def _load_checkpoint(run: RunDir, cfg: ExperimentConfig, checkpoint: str):
    from benchmark.backbones import build_backbone

    path = run.checkpoint_path(checkpoint)
    seed_everything(cfg.run.seed)
    backbone = build_backbone(cfg.backbone)
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: run the pretrain stage first")
    try:
        state = ckpt.load(path)
    except ckpt.CorruptCheckpoint as exc:
        raise UserError(f"{exc}: pre-train again, or restore the file") from None
    # every key, every shape: a backbone missing weights would be evaluated on partly random ones
    mismatch = f"{path} does not hold the weights of this run's backbone ({cfg.backbone.name})"
    try:
        keys = backbone.load_state_dict(state["backbone"], strict=False)
    except RuntimeError as exc:  # shapes differ: torch's message lists them, one per line after its first
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise UserError(f"{mismatch}: {lines[1] if len(lines) > 1 else lines[0]}") from None
    if keys.missing_keys or keys.unexpected_keys:
        from benchmark.config import describe_changes

        parts = [f"{len(v)} {what} ({describe_changes(v)})"
                 for what, v in (("missing", keys.missing_keys), ("unexpected", keys.unexpected_keys)) if v]  # fmt: skip
        raise UserError(f"{mismatch}: {'; '.join(parts)}")
    return backbone, str(path), int(state.get("step", 0)), state
