"""Generated run directories, written with the real RunDir API: for the
collector benchmark (``vssl bench collect``) and the results tests.

Accuracies are drawn per test video: each video has a fixed difficulty shared
by every method and seed, and a method's expected accuracy moves all videos
together, so paired tests behave as they do on real runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import ExperimentConfig, flatten, set_dotted, to_dict
from benchmark.keys import Stage, checkpoint_name
from benchmark.rundir import RunDir, atomic_write_text


@dataclass
class FakeRun:
    method: str = "tce"
    seed: int = 0
    accuracy: float = 0.30  # expected linear top-1 as a fraction
    backbone: str = "resnet10t"
    pretrain_dataset: str = "synthetic-pool"
    eval_dataset: str = "synthetic"
    split: int = 1
    sweep: str | None = "fake"
    stages: tuple[str, ...] = ("pretrain", "linear", "knn")
    test_videos: int = 144
    num_classes: int = 12
    steps: int = 100
    params_millions: float = 4.9
    backbone_kind: str = "2d"
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config values, e.g. {"method.mining_r": 5}
    # resolved-only values: what the code's defaults were when the run ran (not the cell's own values, so not
    # in its id), e.g. {"method.temperature": 0.1} for a cell relaunched after a default changed
    defaults: dict[str, Any] = field(default_factory=dict)
    budget_selection: str | None = None  # the sweep row's note on how its budget was chosen (sweep.json only)
    step_evals: tuple[int, ...] = ()  # extra linear evaluations of checkpoints/step_N.pt
    smooth: bool = False  # log smooth_* scalars
    scalars: dict[str, float] = field(default_factory=dict)  # extra per-step scalars, e.g. {"hard_found": 3.0}
    learned: bool | None = True  # the pretext check's verdict (metrics.json pretrain.pretext); controls are exempt
    wall_s: float = 120.0


def _rng(*parts: Any) -> np.random.Generator:
    digest = hashlib.sha1(json.dumps(parts, default=str).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _difficulty(n: int) -> np.ndarray:
    return _rng("difficulty", n).normal(0.0, 1.5, n)


def per_video(spec: FakeRun, accuracy: float, salt: str) -> tuple[list[str], list[int]]:
    logit = math.log(accuracy / (1 - accuracy))
    p = 1 / (1 + np.exp(-(logit + _difficulty(spec.test_videos))))
    correct = (_rng(spec.method, spec.seed, spec.overrides, salt).random(spec.test_videos) < p).astype(int)
    ids = [f"class{i % spec.num_classes:02d}/v_{i:04d}" for i in range(spec.test_videos)]
    return ids, correct.tolist()


def resolved_config(spec: FakeRun) -> tuple[dict, dict]:
    """(resolved, explicit) config trees, as a sweep cell would write them."""
    explicit: dict = {}
    values = {
        "method.name": spec.method,
        "backbone.name": spec.backbone,
        "data.dataset": spec.pretrain_dataset,
        "eval.dataset": spec.eval_dataset,
        "eval.split": spec.split,
        "optim.steps": spec.steps,
        "run.seed": spec.seed,
        "run.stages": list(spec.stages),
        "run.epoch_checkpoints": list(spec.step_evals),
        **spec.overrides,
    }
    resolved = to_dict(ExperimentConfig())
    for key, value in spec.defaults.items():
        set_dotted(resolved, key, value)
    for key, value in values.items():
        set_dotted(resolved, key, value)
        set_dotted(explicit, key, value)
    return resolved, explicit


def test_view_fields(spec: FakeRun, ev: dict) -> dict:
    """The test-sampling fields an entry records: the evaluation's own ViewSpec.entry_fields, from eval.*."""
    from benchmark.config import EvalConfig
    from benchmark.evaluation.features import view_spec

    known = {f.name for f in dataclasses.fields(EvalConfig)}
    return view_spec(EvalConfig(**{k: v for k, v in ev.items() if k in known}), 64, spec.backbone_kind).entry_fields()


def _eval_entry(spec: FakeRun, protocol: str, accuracy: float, salt: str, step: int, ev: dict) -> dict:
    ids, correct = per_video(spec, accuracy, salt)
    top1 = round(100.0 * sum(correct) / len(correct), 3)
    entry = {
        "protocol": protocol,
        "dataset": spec.eval_dataset,
        "split": spec.split,
        "frozen": protocol != "finetune",
        "selection": "none (fixed recipe, no model selection)",
        "checkpoint": "last.pt" if step == spec.steps else f"step_{step}.pt",
        "checkpoint_step": step,
        "train_videos": 432,
        "test_videos": spec.test_videos,
        "num_classes": spec.num_classes,
        "backbone_kind": spec.backbone_kind,
        **test_view_fields(spec, ev),
        "top1": top1,
        "test_video_ids": ids,
        "per_video_correct": correct,
        "wall_s": 3.0,
        "read_splits": ["train", "test"],
        "test_reads": 1,
    }
    if protocol == "knn":
        entry.update(
            {"k": 10, "r@1": top1, "r@5": min(100.0, round(top1 + 20, 3)), "r@10": min(100.0, round(top1 + 30, 3))}
        )
    else:
        entry["top5"] = min(100.0, round(top1 + 25, 3))
    return entry


def _pretext(spec: FakeRun) -> dict:
    if spec.method in ("random_init", "random_init_bn"):
        return {"exempt": "control (no learned features to check)"}
    if spec.method == "motion_stats":  # a regression: held-out R^2, no closed-form chance loss
        r2 = 0.3 if spec.learned else -0.01
        return {"measure": "r2", "chance": {"loss": None, "accuracy": None, "measure": "r2"},
                "step0": {"value": -4.0, "loss": 25.0, "samples": 256},
                "final": {"value": r2, "loss": round(5.0 * (1 - r2), 4), "samples": 256},
                "learned": spec.learned, "margin": 0.1, "rule": "held-out R^2 >= 0.1"}  # fmt: skip
    final = 0.5 if spec.learned else 0.1
    return {"measure": "accuracy", "chance": {"loss": 2.0, "accuracy": 0.1, "measure": "accuracy"},
            "step0": {"value": 0.1, "samples": 256}, "final": {"value": final, "samples": 256},
            "learned": spec.learned, "margin": 0.056}  # fmt: skip


def write_fake_run(path: Path, spec: FakeRun) -> RunDir:
    run = RunDir(Path(path)).create()
    resolved, explicit = resolved_config(spec)
    run.write_config(resolved, explicit)
    run.update_env(
        git_commit="0" * 40,
        git_dirty=False,
        packages={"vssl-bench": "0.1.0", "torch": "2.14.1"},
        host="fakehost",
        platform="Linux-fake",
        python="3.12",
        cpu_count=2,
        device="cpu",
        autocast="None",
        seed=spec.seed,
        sweep=spec.sweep,
        cell_id=Path(path).name,
        config_hash="f" * 12,
        start_time="2025-01-01T00:00:00+0000",
        end_time="2025-01-01T00:02:00+0000",
    )
    trains = spec.method != "random_init"
    if trains:
        rng = _rng("loss", spec.method, spec.seed)
        records = []
        for step in range(10, spec.steps + 1, 10):
            rec = {
                "stage": "pretrain",
                "step": step,
                "epoch": step // 50,
                "lr": 1e-3,
                "loss": round(float(4.0 * math.exp(-step / spec.steps) + 0.05 * rng.standard_normal()), 4),
            }
            if spec.smooth:
                rec["smooth_same_video_cos"] = round(0.2 + 0.6 * step / spec.steps, 4)
                rec["smooth_other_video_cos"] = round(0.1 - 0.05 * step / spec.steps, 4)
            rec.update(spec.scalars)
            records.append(rec)
        run.log_scalars(records)
    if "pretrain" in spec.stages:
        run.add_metrics(
            "pretrain",
            {
                "steps": spec.steps if trains else 0,
                "trained": trains,
                "wall_s": spec.wall_s if trains else 0.5,
                "final_loss": 1.2 if trains else None,
                "params_millions": spec.params_millions,
                "backbone_init": {"zero_init_last": True, "seed": spec.seed},
                "pretext": _pretext(spec),
            },
        )
    for step in spec.step_evals:  # accuracy rising towards the final one
        acc = spec.accuracy * (0.6 + 0.4 * step / max(spec.steps, 1))
        run.add_metrics(
            str(Stage("linear").key(spec.eval_dataset, spec.split).at(checkpoint_name(step))),
            _eval_entry(spec, "linear", acc, f"linear@{step}", step, resolved["eval"]),
        )
    for protocol in (s for s in spec.stages if s != "pretrain"):
        acc = {"linear": spec.accuracy, "knn": spec.accuracy * 0.8, "finetune": min(0.95, spec.accuracy * 1.3)}[
            protocol
        ]
        run.add_metrics(
            str(Stage(protocol).key(spec.eval_dataset, spec.split)),
            _eval_entry(spec, protocol, acc, protocol, spec.steps, resolved["eval"]),
        )
    return run


def cell_overrides(spec: FakeRun) -> dict[str, Any]:
    """The cell's own values, as a sweep cell records them in sweep.json (what its id hashes)."""
    return {
        "method.name": spec.method,
        "backbone.name": spec.backbone,
        "data.dataset": spec.pretrain_dataset,
        "eval.dataset": spec.eval_dataset,
        **flatten(spec.overrides),
        "run.seed": spec.seed,
    }


def cell_name(spec: FakeRun) -> str:
    return hashlib.sha1(json.dumps(cell_overrides(spec), sort_keys=True, default=str).encode()).hexdigest()[:10]


def write_fake_sweep(root: Path, specs: list[FakeRun], name: str = "fake") -> Path:
    """A sweep folder (sweep.json + cells/<id>/) holding one run per spec; every run records sweep ``name``."""
    root = Path(root)
    cells = {}
    specs = [replace(spec, sweep=name) for spec in specs]
    for spec in specs:
        cid = cell_name(spec)
        if cid in cells:
            raise ValueError(f"two specs make the same cell ({cell_overrides(spec)})")
        write_fake_run(root / "cells" / cid, spec)
        cells[cid] = {
            "label": f"{spec.method} seed={spec.seed}",
            "overrides": cell_overrides(spec),
            **({"budget_selection": spec.budget_selection} if spec.budget_selection else {}),
        }
    atomic_write_text(
        root / "sweep.json",
        json.dumps(
            {
                "name": name,
                "description": f"generated runs ({len(specs)})",
                "stages": list(specs[0].stages),
                "cells": cells,
            },
            indent=2,
        ),
    )
    return root


def table1_specs(seeds: tuple[int, ...] = (0, 1, 2), sweep: str | None = "fake", **kw: Any) -> list[FakeRun]:
    """A small Table-1-like sweep: random init, TCE (clearly better), arrow of time (near random), supervised."""
    accuracies = {"random_init": 0.25, "tce": 0.40, "arrow_of_time": 0.26, "supervised": 0.70}
    return [FakeRun(method=m, seed=s, accuracy=a, sweep=sweep, **kw) for m, a in accuracies.items() for s in seeds]
