"""Downstream evaluation: one function per protocol, one entry per protocol in metrics.json.

Every entry carries what a table needs to label the number: protocol,
dataset, split, frames/clips at test, selection rule, and the checkpoint it
came from.
"""

from __future__ import annotations

import time
from typing import Callable

from benchmark.config import ExperimentConfig
from benchmark.errors import UserError
from benchmark.rundir import RunDir, stage_key

PROTOCOLS: dict[str, Callable[[RunDir, ExperimentConfig], dict]] = {}


def protocol(name: str):
    def deco(fn):
        PROTOCOLS[name] = fn
        return fn

    return deco


def labelled_splits(cfg: ExperimentConfig):
    from benchmark.data.datasets import build_index

    train = build_index(cfg.eval.dataset, split=cfg.eval.split, subset="train")
    test = build_index(cfg.eval.dataset, split=cfg.eval.split, subset="test")
    if not train.records or not test.records:
        raise UserError(f"dataset '{cfg.eval.dataset}' split {cfg.eval.split} needs labelled train and test videos "
                        f"(found {len(train.records)} / {len(test.records)})")
    return train, test


def cached_features(run: RunDir, cfg: ExperimentConfig, checkpoint: str = "last.pt", progress_bar: bool = True):
    from benchmark.evaluation.features import extract
    from benchmark.train import load_backbone

    backbone, ckpt_path, step = load_backbone(run, cfg, checkpoint)
    train, test = labelled_splits(cfg)
    cache = run.path / "cache"
    ftr = extract(backbone, train.records, cfg, ckpt_path, cache, desc="features train", progress_bar=progress_bar)
    fte = extract(backbone, test.records, cfg, ckpt_path, cache, desc="features test", progress_bar=progress_bar)
    return ftr, fte, train, test, {"checkpoint": ckpt_path, "checkpoint_step": step, "backbone_kind": backbone.kind}


def _test_sampling(cfg: ExperimentConfig, kind: str) -> dict:
    if kind == "2d":
        return {"frames_at_test": cfg.eval.frames, "clips_at_test": None, "crops_at_test": 1}
    return {"frames_at_test": None, "clips_at_test": cfg.eval.clips, "clip_len": cfg.eval.clip_len, "crops_at_test": 1}


@protocol("linear")
def run_linear(run: RunDir, cfg: ExperimentConfig, progress_bar: bool = True) -> dict:
    from benchmark.evaluation.linear import LinearProbeConfig, linear_probe

    ftr, fte, train, test, prov = cached_features(run, cfg, progress_bar=progress_bar)
    probe = LinearProbeConfig(cfg.eval.linear_epochs, cfg.eval.linear_lr, cfg.eval.linear_weight_decay, cfg.run.seed)
    metrics = linear_probe(ftr.x, ftr.y, fte.x, fte.y, len(train.classes), probe)
    return {
        **metrics,
        "test_video_ids": fte.video_ids,
        "frozen": True,
        "selection": "none (fixed recipe, no model selection)",
        "train_videos": len(ftr.y),
        "test_videos": len(fte.y),
        "num_classes": len(train.classes),
        **_test_sampling(cfg, prov["backbone_kind"]),
        **prov,
    }


def evaluate(run: RunDir, cfg: ExperimentConfig, name: str, progress_bar: bool = True) -> dict:
    """Run protocol ``name`` on a run directory and record its metrics entry (atomically)."""
    if name not in PROTOCOLS:
        from benchmark.errors import nearest

        raise UserError(f"unknown protocol '{name}'{nearest(name, PROTOCOLS)}; known: {', '.join(PROTOCOLS)}")
    t0 = time.perf_counter()
    entry = PROTOCOLS[name](run, cfg, progress_bar=progress_bar)
    entry.update({"protocol": name, "dataset": cfg.eval.dataset, "split": cfg.eval.split,
                  "wall_s": round(time.perf_counter() - t0, 2)})
    run.add_metrics(stage_key(name, cfg.eval.dataset, cfg.eval.split), entry)
    return entry


def _register_builtin() -> None:
    # Protocol modules register themselves on import; missing optional ones are simply absent.
    import importlib

    for mod in ("benchmark.evaluation.knn", "benchmark.evaluation.finetune"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


_register_builtin()
