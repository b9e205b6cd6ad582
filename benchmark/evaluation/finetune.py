"""Full fine-tuning: every layer trained with a new linear head, video-level top-1 on the test split.

* 2D backbones, TSN-style (Wang et al., ECCV 2016; TCE, Knights et al., ICPR
  2020, Table 1): per training video one random frame from each of S =
  ``eval.finetune_segments`` equal segments (sampler "segments"), the S
  per-frame logits averaged (the segmental consensus) before the loss.
* 3D backbones: one random clip of ``eval.clip_len`` frames per video
  (sampler "clip", stride ``eval.clip_stride``).
* Test: F = ``eval.frames`` evenly spaced frames (2D) or M = ``eval.clips``
  uniformly spaced clips (3D), x ``eval.crops`` spatial crops; logits averaged
  over all views into one video-level prediction.
* Model selection (VCOP, Xu et al., CVPR 2019, held out 800 UCF101 train
  videos): after every epoch the model is scored on a held-out part of the
  TRAIN split (``eval.heldout_fraction``; class-stratified, group-disjoint,
  benchmark.evaluation.selection) and the best epoch's weights are kept; the
  test split is evaluated once, with those weights. Never selected on test.

Training augmentation is crop + flip only (no colour jitter / grey, which are
pre-training augmentations): random resized crop, scale (0.5, 1).
SGD with momentum 0.9 and a per-step cosine schedule.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from benchmark import checkpoint as ckpt
from benchmark.config import ExperimentConfig
from benchmark.data.transforms import AugmentConfig
from benchmark.errors import UserError
from benchmark.evaluation import (
    check_bad,
    counts,
    entry_key,
    labelled_splits,
    missing_fields,
    runtime,
    skipped_fields,
)
from benchmark.registry import register_protocol
from benchmark.rundir import RunDir

FINETUNE_AUG = AugmentConfig(crop_scale=(0.5, 1.0), flip=True, jitter=0.0, hue=0.0, gray_p=0.0)


class VideoClassifier(nn.Module):
    """Backbone + linear head. Input [B, V, ...] (V frames or clips of each video); ``view_logits`` gives
    [B, V, K], ``forward`` their mean over V: the TSN consensus in training, the test-time average at test."""

    def __init__(self, backbone: nn.Module, num_classes: int, seed: int = 0):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, num_classes)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.head.weight.normal_(0, 0.01, generator=g)
            self.head.bias.zero_()

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.view_logits(x).mean(1)


@dataclass(frozen=True)
class FinetuneSchedule:
    epochs: int
    steps_per_epoch: int
    batch_size: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def schedule_for(num_videos: int, cfg: ExperimentConfig) -> FinetuneSchedule:
    """An epoch is ceil(N / B) steps of B videos (the loader's per-epoch permutations wrap across steps)."""
    batch = max(1, min(cfg.eval.finetune_batch_size, num_videos))
    return FinetuneSchedule(cfg.eval.finetune_epochs, max(1, math.ceil(num_videos / batch)), batch)


def training_sampler(kind: str, cfg: ExperimentConfig):
    from benchmark.data.samplers import build_sampler
    from benchmark.data.transforms import train_transform

    ev = cfg.eval
    if kind == "2d":
        sampler = build_sampler("segments", cfg.data.resolution, train=True, count=ev.finetune_segments)
    else:
        sampler = build_sampler("clip", cfg.data.resolution, train=True, clip_len=ev.clip_len, stride=ev.clip_stride)
    sampler.transform = train_transform(cfg.data.resolution, FINETUNE_AUG)
    return sampler


def training_views(batch: dict) -> torch.Tensor:
    """[B, V, ...] views of a training batch: S segments (2D) or one clip (3D, V=1)."""
    return batch["frames"] if "frames" in batch else batch["clip"].unsqueeze(1)


def predict(model: VideoClassifier, records: list, spec, ctx, cfg: ExperimentConfig, desc: str, progress_bar: bool):
    """Video-level logits (mean over views) of ``records``, from an inference copy of ``model``."""
    from benchmark.evaluation.features import inference_copy, video_outputs

    clip = (spec.clip_len,) if spec.kind == "3d" else ()
    probe = torch.randn(1, 1, *clip, 3, spec.resolution, spec.resolution, generator=torch.Generator().manual_seed(0))
    frozen = ctx.prepare(inference_copy(model, probe))
    return video_outputs(
        frozen.view_logits,
        records,
        spec,
        ctx,
        frames_per_batch=cfg.eval.batch_size,
        decoder=cfg.data.decoder,
        num_workers=cfg.eval.num_workers,
        desc=desc,
        progress_bar=progress_bar,
    )


def top1(logits: torch.Tensor, y: torch.Tensor) -> float:
    return round(100.0 * (logits.argmax(1) == y).float().mean().item(), 3) if len(y) else float("nan")


@dataclass
class FinetuneJob:
    """Everything one fine-tuning stage works with, built once by :func:`prepare`."""

    run: RunDir
    cfg: ExperimentConfig
    stage: str  # its metrics key (and the scalars' stage name)
    backbone_kind: str
    checkpoint: str
    checkpoint_step: int
    train: object  # the labelled splits' VideoIndex
    test: object
    split: object  # HeldoutSplit: fit / heldout records
    num_classes: int
    ctx: object
    model: VideoClassifier
    spec: object  # the test-time view spec
    sched: FinetuneSchedule
    optimizer: torch.optim.Optimizer
    lr_at: torch.optim.lr_scheduler.LambdaLR
    dataset: object  # SampledVideos over the fit videos
    batches: object = None  # iterator over the training batches (from :func:`start_batches`)

    @property
    def state_path(self) -> Path:
        """The stage's own resume point (written at each epoch's end, removed when the entry is complete)."""
        return self.run.checkpoint_path("finetune_" + self.stage.replace("/", "_") + ".pt")


@dataclass
class FinetuneProgress:
    """What the epochs so far produced: losses, held-out curve, the best epoch's weights."""

    best_epoch: int
    best_top1: float = -1.0
    best_state: dict | None = None
    curve: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    epoch_s: list = field(default_factory=list)
    heldout_bad: list = field(default_factory=list)
    bad_train: int = 0


@register_protocol("finetune")
def run_finetune(run: RunDir, cfg: ExperimentConfig, *, checkpoint: str = "last.pt", progress_bar: bool = True) -> dict:
    job = prepare(run, cfg, checkpoint)
    start, done = resume(job)  # after a kill or a preemption: from the end of the last finished epoch, exactly
    run.truncate_scalars(job.stage, start)
    start_batches(job, start * job.sched.steps_per_epoch)
    from benchmark.tracking import Tracker

    tracker = Tracker(run.path, cfg, job.stage + "/epochs", resume_step=start)
    for epoch in range(start + 1, job.sched.epochs + 1):
        t0 = time.perf_counter()
        loss = train_epoch(job, done, epoch, progress_bar)
        scalars = {"stage": job.stage, "step": epoch, "epoch": epoch, "lr": job.lr_at.get_last_lr()[0], "loss": loss,
                   "train_s": round(time.perf_counter() - t0, 2)}  # fmt: skip
        if job.split.heldout:
            scalars["heldout_top1"] = select(job, done, epoch, progress_bar)
        done.epoch_s.append(round(time.perf_counter() - t0, 2))
        run.log_scalars([scalars])
        tracker.scalars(epoch, {k: v for k, v in scalars.items() if k not in ("stage", "step", "epoch")})
        save_progress(job, done, epoch)
    tracker.close()
    if done.best_state is not None:
        job.model.load_state_dict(done.best_state)
    entry = evaluate_test(job, done, progress_bar)
    for path in (job.state_path, ckpt.previous_of(job.state_path)):
        path.unlink(missing_ok=True)
    return entry


def save_progress(job: FinetuneJob, done: FinetuneProgress, epoch: int) -> None:
    state = {"epoch": epoch, "model": job.model.state_dict(), "optimizer": job.optimizer.state_dict(),
             "scheduler": job.lr_at.state_dict(), "progress": dataclasses.asdict(done),
             "settings": resume_settings(job)}  # fmt: skip
    ckpt.save(job.state_path, state)


# What a fine-tune reads, by dotted prefix: another value of any of these makes other epochs. Bookkeeping (workers,
# logging, the other protocols' fields) is left out, so a requeue or a rerun with more workers resumes.
FINETUNE_READS = (
    "eval.frames", "eval.clips", "eval.clip_len", "eval.clip_stride", "eval.crops", "eval.finetune_",
    "eval.heldout_fraction", "eval.label_fraction", "data.resolution", "data.short_video", "run.seed",
    "run.precision", "run.channels_last", "backbone.", "method.",
)  # fmt: skip


def resume_settings(job: FinetuneJob) -> dict:
    """What the epochs so far were trained with: the fields a fine-tune reads and the pre-trained checkpoint (by
    name: the run folder may be spelt or placed differently on the next start)."""
    from benchmark.config import flatten, plain, to_dict

    fields = {k: plain(v) for k, v in flatten(to_dict(job.cfg)).items() if k.startswith(FINETUNE_READS)}
    return {**fields, "checkpoint": Path(job.checkpoint).name, "checkpoint_step": job.checkpoint_step}


def settings_changes(recorded: dict | None, now: dict) -> list[str]:
    """'eval.finetune_lr 0.3 -> 0.01' for each field both record differently. 'auto' matches anything (a sweep
    cell's config holds TCE's negatives: auto, config.yaml the number it resolved to); a field only one side has
    (added to the code since) is no change, and neither is a state saved before settings were recorded."""
    from benchmark.config import differences

    if recorded is None:
        return []
    return [
        f"{k} {old!r} -> {new!r}" for k, (old, new) in differences(recorded, now).items() if "auto" not in (old, new)
    ]


def resume(job: FinetuneJob) -> tuple[int, FinetuneProgress]:
    """(epochs already done, their progress): from the stage's own checkpoint, or (0, fresh) without one. A
    checkpoint left by an interrupted fine-tune of other settings (eval.finetune_lr, epochs, ...) is set aside:
    its epochs would be recorded as made with these."""
    from benchmark.config import describe_changes

    state = ckpt.load_latest(job.state_path.parent, job.state_path.name, map_location=job.ctx.device, steps=False)
    changes = settings_changes(state.get("settings"), resume_settings(job)) if state is not None else []
    if changes:
        print(f"note: {job.stage}: the interrupted fine-tune ran with other settings ({describe_changes(changes)}); "
              f"starting it again from epoch 1", file=sys.stderr, flush=True)  # fmt: skip
        for path in (job.state_path, ckpt.previous_of(job.state_path)):
            path.unlink(missing_ok=True)
        state = None
    if state is None:
        return 0, FinetuneProgress(best_epoch=job.sched.epochs)
    job.model.load_state_dict(state["model"])
    job.optimizer.load_state_dict(state["optimizer"])
    job.lr_at.load_state_dict(state["scheduler"])
    return int(state["epoch"]), FinetuneProgress(**state["progress"])


def start_batches(job: FinetuneJob, start_step: int) -> None:
    """The training batches from ``start_step`` on: a pure function of (seed, step), so a resume sees the rest."""
    from benchmark.data.loader import StepBatches, make_loader
    from benchmark.evaluation.features import single_threaded

    cfg, sched = job.cfg, job.sched
    steps = StepBatches(len(job.split.fit), sched.batch_size, sched.total_steps, cfg.run.seed, start_step=start_step)
    from benchmark.device import resolve_workers

    workers = resolve_workers(cfg.data.num_workers, job.ctx.device)
    loader = make_loader(job.dataset, steps, num_workers=workers, pin_memory=job.ctx.device.type == "cuda")
    job.batches = single_threaded(loader) if workers == 0 else iter(loader)


def prepare(run: RunDir, cfg: ExperimentConfig, checkpoint: str) -> FinetuneJob:
    """The pre-trained backbone with a new head, the fit / held-out / test videos, the optimiser and the batches."""
    from benchmark.data.loader import SampledVideos
    from benchmark.evaluation.features import view_spec
    from benchmark.evaluation.selection import heldout_split, label_subset
    from benchmark.train import load_backbone, seed_everything

    ev = cfg.eval
    backbone, ckpt_path, ckpt_step = load_backbone(run, cfg, checkpoint)
    train, test = labelled_splits(cfg)
    records = label_subset(train.records, ev.label_fraction, cfg.run.seed)
    split = heldout_split(records, ev.heldout_fraction, cfg.run.seed)
    if ev.heldout_fraction > 0 and not split.heldout:
        from benchmark.errors import UserError

        few = (
            f"eval.label_fraction={ev.label_fraction} keeps {len(records)} of {len(train.records)} train videos"
            if ev.label_fraction < 1
            else "every class has a single group?"
        )
        raise UserError(
            f"eval.heldout_fraction={ev.heldout_fraction} holds out no train video of '{ev.dataset}' ({few}); "
            "set eval.heldout_fraction=0 to train without selection"
            + (", or raise eval.label_fraction" if ev.label_fraction < 1 else "")
        )
    ctx = runtime(cfg)
    seed_everything(cfg.run.seed)
    model = ctx.prepare(VideoClassifier(backbone, len(train.classes), cfg.run.seed))
    sched = schedule_for(len(split.fit), cfg)
    dataset = SampledVideos(
        split.fit, training_sampler(backbone.kind, cfg), cfg.data.decoder, cfg.run.seed, with_labels=True
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=ev.finetune_lr, momentum=0.9, weight_decay=ev.finetune_weight_decay
    )
    lr_at = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / sched.total_steps))
    )
    return FinetuneJob(
        run, cfg, entry_key("finetune", cfg, checkpoint), backbone.kind, ckpt_path, ckpt_step, train, test, split,
        len(train.classes), ctx, model, view_spec(ev, cfg.data.resolution, backbone.kind), sched, optimizer, lr_at,
        dataset,
    )  # fmt: skip


def train_epoch(job: FinetuneJob, done: FinetuneProgress, epoch: int, progress_bar: bool) -> float:
    """One epoch of SGD steps; returns (and records) its mean training loss."""
    from benchmark.train import step_seed, too_many_bad

    job.model.train()
    total_loss = 0.0
    bar = tqdm(
        range(job.sched.steps_per_epoch),
        desc=f"finetune epoch {epoch}/{job.sched.epochs}",
        disable=not progress_bar,
        dynamic_ncols=True,
        leave=False,
    )
    for i in bar:
        batch = next(job.batches)
        torch.manual_seed(step_seed(job.cfg.run.seed, (epoch - 1) * job.sched.steps_per_epoch + i))
        done.bad_train += len(batch.pop("bad"))
        seen = ((epoch - 1) * job.sched.steps_per_epoch + i + 1) * job.sched.batch_size
        limit = job.cfg.data.max_bad_fraction
        last = epoch == job.sched.epochs and i == job.sched.steps_per_epoch - 1
        if too_many_bad(done.bad_train, seen, job.sched.batch_size, limit, final=last):
            raise UserError(
                f"{done.bad_train} undecodable videos were replaced in {seen} fine-tuning samples "
                f"(> data.max_bad_fraction={limit}); run `vssl check-data` on '{job.cfg.eval.dataset}'"
            )
        x, y = job.ctx.to_input(training_views(batch)), batch["label"].to(job.ctx.device)
        with job.ctx.autocast():
            loss = F.cross_entropy(job.model(x).float(), y)
        job.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        job.optimizer.step()
        job.lr_at.step()
        value = float(loss.detach())
        total_loss += value
        bar.set_postfix(loss=f"{value:.3f}")
    bar.close()
    done.losses.append(round(total_loss / job.sched.steps_per_epoch, 5))
    if not math.isfinite(done.losses[-1]):
        raise UserError(
            f"the fine-tuning loss is {done.losses[-1]} in epoch {epoch}: training diverged; lower "
            f"eval.finetune_lr (now {job.cfg.eval.finetune_lr})"
        )
    return done.losses[-1]


def select(job: FinetuneJob, done: FinetuneProgress, epoch: int, progress_bar: bool) -> float:
    """Score the epoch on the held-out train videos; keep the first best epoch's weights. Returns its top-1."""
    out = predict(job.model, job.split.heldout, job.spec, job.ctx, job.cfg, "held-out", progress_bar)
    done.heldout_bad = out.bad
    done.curve.append(top1(out.x, out.y))
    if done.curve[-1] > done.best_top1:  # the first best epoch
        done.best_epoch, done.best_top1 = epoch, done.curve[-1]
        done.best_state = copy.deepcopy(job.model.state_dict())
    return done.curve[-1]


def evaluate_test(job: FinetuneJob, done: FinetuneProgress, progress_bar: bool) -> dict:
    """The test split, read once, with the selected weights: the metrics entry."""
    from benchmark.evaluation.linear import topk_accuracy

    ev, cfg, split = job.cfg.eval, job.cfg, job.split
    out = predict(job.model, job.test.records, job.spec, job.ctx, cfg, "test", progress_bar)
    check_bad(out.bad, len(job.test.records), "test", cfg)
    if split.heldout:
        selection = (
            f"epoch with the best held-out top-1 on {len(split.heldout)} train videos (class-stratified, "
            f"group-disjoint); test evaluated once, at that epoch"
        )
    else:
        selection = "none: last epoch (eval.heldout_fraction=0); test evaluated once"
    return {
        **topk_accuracy(out.x, out.y),
        "per_video_correct": (out.x.argmax(1) == out.y).int().tolist(),
        "test_video_ids": out.video_ids,
        "frozen": False,
        "selection": selection,
        "epochs": job.sched.epochs,
        "selected_epoch": done.best_epoch,
        "heldout_top1": done.best_top1 if split.heldout else None,
        "heldout_curve": done.curve,
        "heldout_videos": len(split.heldout),
        "heldout_video_ids": split.heldout_ids,
        "train_loss": done.losses,
        "epoch_wall_s": done.epoch_s,
        "steps_per_epoch": job.sched.steps_per_epoch,
        "batch_size": job.sched.batch_size,
        "lr": ev.finetune_lr,
        "weight_decay": ev.finetune_weight_decay,
        "segments": ev.finetune_segments if job.backbone_kind == "2d" else None,
        "train_clip_len": ev.clip_len if job.backbone_kind == "3d" else None,
        "bad_train_samples": done.bad_train,
        **counts(len(split.fit), len(out.y), job.num_classes, cfg),
        "checkpoint": job.checkpoint,
        "checkpoint_step": job.checkpoint_step,
        "backbone_kind": job.backbone_kind,
        **job.spec.entry_fields(),
        **skipped_fields(heldout=done.heldout_bad, test=out.bad),
        **missing_fields(job.train, job.test),
    }
