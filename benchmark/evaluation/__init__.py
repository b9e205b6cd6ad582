"""Downstream evaluation: one function per protocol, one entry per protocol in metrics.json.

Protocols (docs: ../shared/reference/protocol.md):

* ``linear``   -- frozen backbone, cached per-video features, BatchNorm without affine + linear layer
                  (benchmark.evaluation.linear);
* ``knn``      -- frozen backbone, cosine kNN retrieval of test videos in the train split (VCOP, CoCLR)
                  and kNN classification (benchmark.evaluation.knn);
* ``finetune`` -- all layers trained, TSN-style for 2D backbones, random clips for 3D; epoch chosen on a
                  held-out part of the train split (benchmark.evaluation.finetune).

Every entry carries what a table needs to label the number: protocol,
dataset, split, frozen, frames/clips/crops at test, selection rule, train /
test video counts, the checkpoint and its step, skipped (undecodable) videos,
``config_overrides`` when the evaluation's config differs from the run's config.yaml in a field that is not
bookkeeping (``vssl evaluate RUN eval.linear_epochs=50``: tables never pool it with entries made with the run's
own settings), and ``test_video_ids`` with ``per_video_correct`` (paired tests across runs), and what it read:
``read_splits`` (["train", "test"]) and ``test_reads`` (1), so reports count test-split reads.
Keys are ``<protocol>/<dataset>/split<N>``, with ``@step_N`` appended when an
intermediate checkpoint (``checkpoints/step_N.pt``) is evaluated.

A protocol is a function ``fn(run, cfg, *, checkpoint, progress_bar) -> entry``
registered with ``@register_protocol(name)`` (benchmark.registry); one protocol is one module here.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from benchmark.config import BOOKKEEPING_FIELDS, ExperimentConfig, differences
from benchmark.errors import UserError
from benchmark.keys import LAST, Stage
from benchmark.registry import METHODS, PROTOCOLS
from benchmark.rundir import RunDir


def labelled_splits(cfg: ExperimentConfig):
    """(train, test) VideoIndex of eval.dataset / eval.split. Videos the split files list but the disk lacks are
    named on stderr and counted in the entry (:func:`missing_fields`); past data.max_bad_fraction the stage
    stops with their list."""
    from benchmark.data.index import build_index

    train = build_index(cfg.eval.dataset, split=cfg.eval.split, subset="train")
    test = build_index(cfg.eval.dataset, split=cfg.eval.split, subset="test")
    if not train.records or not test.records:
        raise UserError(
            f"dataset '{cfg.eval.dataset}' split {cfg.eval.split} needs labelled train and test videos "
            f"(found {len(train.records)} / {len(test.records)})"
        )
    if any(r.label < 0 for r in (*train.records, *test.records)):
        raise UserError(f"dataset '{cfg.eval.dataset}' has unlabelled videos; evaluation needs a labelled set")
    for subset, index in (("train", train), ("test", test)):
        warning = index.missing_warning(
            f"{subset} videos of '{cfg.eval.dataset}' split {cfg.eval.split}", cfg.data.max_bad_fraction
        )
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
    return train, test


def missing_fields(train, test) -> dict:
    """Entry fields counting and naming the listed videos that were missing on disk (left out of the numbers)."""
    return {"missing_videos": len(train.missing) + len(test.missing), "missing": {"train": train.missing,
            "test": test.missing}}  # fmt: skip


def check_bad(bad: list, total: int, subset: str, cfg: ExperimentConfig) -> None:
    """Too many undecodable videos make a number meaningless: stop (the data needs fixing first)."""
    if total and len(bad) / total > cfg.data.max_bad_fraction:
        raise UserError(
            f"{len(bad)} of {total} {subset} videos of '{cfg.eval.dataset}' failed to decode "
            f"(> data.max_bad_fraction={cfg.data.max_bad_fraction}); first: {bad[0]['path']}: {bad[0]['reason']}"
        )


def skipped_fields(**bad_by_subset: list) -> dict:
    """Entry fields naming the videos that were skipped because they failed to decode."""
    skipped = [{"subset": subset, **b} for subset, bad in bad_by_subset.items() for b in bad]
    return {"skipped_videos": len(skipped), "skipped": skipped}


@dataclass
class FrozenFeatures:
    """Cached per-video features of a frozen backbone on the train and test splits (bad videos left out)."""

    train: object  # features.Outputs
    test: object
    train_records: list  # the records of train.x's rows, in order
    classes: list[str]
    provenance: dict  # checkpoint, checkpoint_step, backbone_kind, test sampling fields, skipped videos


def runtime(cfg: ExperimentConfig):
    from benchmark.device import resolve_runtime

    return resolve_runtime(cfg.run.device, cfg.run.precision, cfg.run.channels_last, cfg.run.threads)


def frozen_features(
    run: RunDir, cfg: ExperimentConfig, checkpoint: str = "last.pt", progress_bar: bool = True
) -> FrozenFeatures:
    """Features of both splits from the run's checkpoint, extracted once and cached under RUN/cache."""
    from benchmark.evaluation.features import extract, view_spec
    from benchmark.evaluation.selection import label_subset
    from benchmark.train import load_eval_encoder

    backbone, ckpt_path, step = load_eval_encoder(run, cfg, checkpoint)  # CMC: both encoders, as an option
    train, test = labelled_splits(cfg)
    ctx = runtime(cfg)
    # an encoder that reads each frame with its motion (CMC's flow view) names the frames it needs per view
    spec = view_spec(cfg.eval, cfg.data.resolution, backbone.kind, getattr(backbone, "frame_offsets", (0,)))
    common = dict(
        frames_per_batch=cfg.eval.batch_size,
        decoder=cfg.data.decoder,
        num_workers=cfg.eval.num_workers,
        progress_bar=progress_bar,
    )
    cache = run.path / "cache"
    ftr = extract(backbone, train.records, spec, ctx, ckpt_path, cache, desc="features train", **common)
    fte = extract(backbone, test.records, spec, ctx, ckpt_path, cache, desc="features test", **common)
    check_bad(ftr.bad, len(train.records), "train", cfg)
    check_bad(fte.bad, len(test.records), "test", cfg)
    by_id = {r.video_id: r for r in train.records}
    train_records = [by_id[i] for i in ftr.video_ids]
    if cfg.eval.label_fraction < 1:
        from benchmark.evaluation.features import Outputs

        kept = label_subset(train_records, cfg.eval.label_fraction, cfg.run.seed)
        keep_ids = {r.video_id for r in kept}
        rows = [i for i, v in enumerate(ftr.video_ids) if v in keep_ids]
        ftr = Outputs(ftr.x[rows], ftr.y[rows], [ftr.video_ids[i] for i in rows], ftr.bad)
        train_records = kept
    prov = {
        "checkpoint": ckpt_path,
        "checkpoint_step": step,
        "backbone_kind": backbone.kind,
        **spec.entry_fields(),
        **skipped_fields(train=ftr.bad, test=fte.bad),
        **missing_fields(train, test),
    }
    return FrozenFeatures(ftr, fte, train_records, list(train.classes), prov)


def counts(train_videos: int, test_videos: int, num_classes: int, cfg: ExperimentConfig) -> dict:
    return {
        "train_videos": train_videos,
        "test_videos": test_videos,
        "num_classes": num_classes,
        "label_fraction": cfg.eval.label_fraction,
    }


def entry_key(name: str, cfg: ExperimentConfig, checkpoint: str = LAST) -> str:
    """metrics.json key: '<protocol>/<dataset>/split<N>', plus '@step_N' for an intermediate checkpoint."""
    return str(Stage(name).key(cfg.eval.dataset, cfg.eval.split).at(checkpoint))


def config_overrides(run: RunDir, cfg: ExperimentConfig, protocol: str | None = None) -> str:
    """'eval.linear_epochs=50, data.resolution=64': the fields an evaluation may set (eval.*, data.*, run.*
    and the method's ``eval_only_fields``) that ``cfg`` sets differently from the run's config.yaml, bookkeeping
    fields (seed, workers, which set) left out; '' when none. The trained model's fields are not compared: the
    run's config.yaml records them as resolved on its data (TCE's K for 'auto'). A field the run's config.yaml
    does not record (added to the code after the run) is not a difference. With ``protocol``, another protocol's
    own fields (eval.linear_* for a kNN entry) are left out too: they did not make this entry. A protocol's own
    fields are those named after it or after a protocol its name extends (eval.knn_* for 'knn_cosine')."""
    evaluable = {f"method.{f}" for f in METHODS.get(cfg.method.name).eval_only_fields}
    # eval.knn_* belongs to knn, and to a plugin protocol 'knn_cosine' that reads them too
    others = tuple(f"eval.{p}_" for p in PROTOCOLS.names() if not protocol.startswith(p)) if protocol else ()
    return ", ".join(
        f"{k}={new}"
        for k, (_, new) in differences(run.config(), cfg).items()
        if (k.split(".", 1)[0] in ("eval", "data", "run") or k in evaluable)
        and k not in BOOKKEEPING_FIELDS
        and not (others and k.startswith(others))
    )


def evaluate(run: RunDir, cfg: ExperimentConfig, name: str, progress_bar: bool = True, checkpoint: str = LAST) -> dict:
    """Run protocol ``name`` on a run directory and record its metrics entry (atomically)."""
    run_protocol = PROTOCOLS.get(name)
    key = entry_key(name, cfg, checkpoint)  # a malformed checkpoint name fails here, before any work
    t0 = time.perf_counter()
    entry = run_protocol(run, cfg, checkpoint=checkpoint, progress_bar=progress_bar)
    entry.update(
        {
            "protocol": name,
            "dataset": cfg.eval.dataset,
            "split": cfg.eval.split,
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    )
    # what the entry read, for reports that count test-split reads: every protocol here fits on the train split
    # (its held-out part included) and predicts the test split once
    entry.setdefault("read_splits", ["train", "test"])
    entry.setdefault("test_reads", entry["read_splits"].count("test"))
    overrides = config_overrides(run, cfg, name)
    if overrides:  # made with other settings than the run's recipe: tables keep it apart from its row's entries
        entry["config_overrides"] = overrides
    run.add_metrics(key, entry)
    from benchmark.tracking import Tracker

    tracker = Tracker(run.path, cfg, key)
    tracker.entry(key, entry, step=int(entry.get("checkpoint_step") or 0))
    tracker.close()
    return entry
