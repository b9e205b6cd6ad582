"""gpu: the GPU check -- method steps, TCE's mining at Kinetics scale, data wait, a short TCE run, host syncs.

Made for a lent GPU machine (one H200, 15 minutes in all): `scripts/gpu_check.sh OUT` runs it there with that
machine's python3 plus carried wheels (av, submitit) in at most ~5 minutes, and writes OUT/results/perf/gpu.md
and gpu.json, each stage's figures as soon as the stage ends (a stage that fails is recorded and the next runs).

Stages (measured in one run; bf16 autocast and channels_last):

1. ``method_2d``: TCE's step (ResNet-18, 224 px, 64 pairs) against the bare backbone's forward+backward on the
   same frames (goal: within 1.2x);
2. ``method_3d``: 3D RotNet's step (r3d_18, 112 px, 16 clips of 16 frames) against its bare backbone;
3. ``mining``: TCE's hard-negative mining over a 240k-slot bank (Kinetics-400), K = 8192, on the GPU, as a
   share of the 2D step;
4. ``data_wait``: the share of a 224-px TCE step spent waiting for data, with 2, 4 and 8 decoding workers
   reading mpeg4 videos written for the check (goal: under 10% with 8 workers; the bottleneck is named);
5. ``tce_run``: 200 TCE steps on the built-in synthetic set through the harness, then its linear probe;
6. ``host_syncs``: TCE steps under ``torch.cuda.set_sync_debug_mode('warn')``: host syncs per step.

With one GPU, multi-GPU NCCL DDP stays unverified. On a machine without CUDA it says so in one line, resolves
every stage on the meta device (model, input shape, parameters printed) and marks each "skipped: no CUDA"; it
never replaces a gpu.json that holds measured figures. ``--stages`` re-runs some stages: the stages an earlier
gpu.json measured on the same GPU stay in the files (each with its own ``date``), others are dropped.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

STAGES = ("method_2d", "method_3d", "mining", "data_wait", "tce_run", "host_syncs")
PLAN = {  # stage -> (method, backbone, input shape per step)
    "method_2d": ("tce", "resnet18", [128, 3, 224, 224]),
    "method_3d": ("rotnet3d", "r3d_18", [16, 16, 3, 112, 112]),
    "mining": ("tce", "resnet18", [64, 128]),
    "data_wait": ("tce", "resnet18", [128, 3, 224, 224]),
    "tce_run": ("tce", "resnet10t", [64, 3, 32, 32]),
    "host_syncs": ("tce", "resnet18", [32, 3, 224, 224]),
}
GOAL_STEP_RATIO = 1.2
GOAL_DATA_WAIT = 0.10


ALWAYS_WRITES = True  # a lent GPU's time is short: each stage's figures are written as soon as it ends


def add_arguments(p) -> None:
    p.add_argument("--out", default=".", help="folder under which results/perf/gpu.md and .json are written")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run (default all)")


def resolve(stage: str) -> dict:
    """The stage's model on the meta device: what it would run, and its size."""
    from benchmark.backbones import param_count_millions
    from benchmark.config import load_config
    from benchmark.train import build_method

    name, backbone, shape = PLAN[stage]
    cfg = load_config(None, [f"method.name={name}", f"backbone.name={backbone}"])
    model = build_method(cfg, num_videos=240_000 if stage == "mining" else 9537, meta=True)
    return {"method": name, "backbone": backbone, "input_shape": shape,
            "params_millions": round(param_count_millions(model.backbone), 3)}  # fmt: skip


def run(args) -> int:
    import torch

    out = Path(args.out) / "results" / "perf"
    cuda = torch.cuda.is_available()
    earlier = _earlier(out)
    measured = any(str(e.get("status")) != "skipped: no CUDA" for e in earlier.get("stages", {}).values())
    if not cuda:
        print("gpu check: no CUDA on this machine; every stage resolved on the meta device and skipped"
              + (f" ({out / 'gpu.md'} holds measured figures and is left as it is)" if measured else ""))  # fmt: skip
    gpu = torch.cuda.get_device_name(0) if cuda else None
    kept = {  # stages this call does not run, measured earlier on the same GPU
        stage: {**entry, "date": entry.get("date") or earlier.get("date")}
        for stage, entry in earlier.get("stages", {}).items()
        if cuda and earlier.get("gpu") == gpu and stage in STAGES and stage not in args.stages
    }
    figures: dict = {"stages": kept}  # (the mining stage reads the 2D step's time from here)
    for stage in args.stages:
        plan = resolve(stage)
        print(f"{stage}: {plan['method']} on {plan['backbone']} ({plan['params_millions']} M parameters), "
              f"input {'x'.join(map(str, plan['input_shape']))}", flush=True)  # fmt: skip
        entry = {**plan, "status": "skipped: no CUDA"}
        if cuda:
            t0 = time.perf_counter()
            try:
                entry.update(STAGE_FUNCTIONS[stage](figures), status="done")
            except Exception as exc:  # noqa: BLE001 (one failing stage must not lose the others' figures)
                entry.update(status=f"failed: {type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"  {entry['status']} in {entry['seconds']} s: "
                  f"{ {k: v for k, v in entry.items() if k not in plan and k not in ('traceback',)} }", flush=True)  # fmt: skip
        entry["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        figures["stages"][stage] = entry
        if cuda or not measured:  # after every stage: a later stage that runs out of time loses nothing
            figures["stages"] = {s: figures["stages"][s] for s in STAGES if s in figures["stages"]}
            write(out, figures)
    return 0


def _earlier(out: Path) -> dict:
    """An earlier run's gpu.json ({} when absent or unreadable)."""
    try:
        data = json.loads((out / "gpu.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("stages"), dict) else {}


def write(out: Path, figures: dict) -> None:
    import platform

    import torch

    from benchmark.device import cpu_features
    from benchmark.rundir import atomic_write_text, git_state

    meta = {"machine": platform.platform(), "torch": torch.__version__, **cpu_features(), **git_state(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "ddp": "multi-GPU NCCL DDP unverified (one GPU)"}  # fmt: skip
    atomic_write_text(out / "gpu.json", json.dumps({**figures, **meta}, indent=2, default=str) + "\n")
    lines = ["# vssl bench gpu", "", f"{meta['date']}, {meta['gpu'] or 'no GPU'}, torch {meta['torch']}, "
             f"commit {meta['git_commit']}. {meta['ddp']}. A stage measured by an earlier call on the same GPU "
             "keeps its own date.", "", "| stage | status | figures |", "| --- | --- | --- |"]  # fmt: skip
    for stage, entry in figures["stages"].items():
        shown = {k: v for k, v in entry.items() if k not in ("status", "traceback")}
        lines.append(f"| {stage} | {entry['status']} | {json.dumps(shown, default=str)} |")
    atomic_write_text(out / "gpu.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- the stages (CUDA only)
class _Args:
    def __init__(self, resolution: int, batch: int):
        self.resolution, self.batch, self.warmup = resolution, batch, 3


def _step_vs_bare(name: str, resolution: int, batch: int) -> dict:
    from benchmark.device import resolve_runtime
    from benchmark.perf.methods import build_case, time_method

    ctx = resolve_runtime("cuda", "bf16", True)
    args = _Args(resolution, batch)
    method, case_batch, _, _, _, _ = build_case(name, args, ctx)
    timing = time_method(method, case_batch, 10, args, ctx)
    return {"step_ms": timing["step_s"] * 1e3, "bare_ms": timing["bare_s"] * 1e3, "ratio": timing["ratio"],
            "goal_ratio": GOAL_STEP_RATIO, "meets_goal": timing["ratio"] <= GOAL_STEP_RATIO}  # fmt: skip


def stage_method_2d(figures: dict) -> dict:
    return _step_vs_bare("tce", 224, 64)


def stage_method_3d(figures: dict) -> dict:
    return _step_vs_bare("rotnet3d", 112, 16)


def stage_mining(figures: dict) -> dict:
    import torch

    from benchmark.mining import init_bank, mine_negatives

    dev = torch.device("cuda")
    bank = init_bank(240_000, 128).to(dev)
    anchor = torch.nn.functional.normalize(torch.randn(64, 128, device=dev), dim=1)
    own = torch.randint(0, 240_000, (64,), device=dev)
    for _ in range(3):
        mine_negatives(anchor, bank, own, 8192, 0.3)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        mine_negatives(anchor, bank, own, 8192, 0.3)
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / 20
    step = figures["stages"].get("method_2d", {}).get("step_ms")
    return {"mining_ms": ms, "share_of_2d_step": ms / step if step else None}


def stage_data_wait(figures: dict) -> dict:
    """Real TCE steps (ResNet-18, 224 px, 64 pairs) fed by 2, 4 and 8 decoding workers from mpeg4 videos."""
    import tempfile

    import numpy as np
    import torch

    from benchmark.config import load_config
    from benchmark.data.index import VideoRecord
    from benchmark.data.loader import SampledVideos, StepBatches, make_loader
    from benchmark.data.samplers import build_sampler
    from benchmark.data.synthetic import encode_avi
    from benchmark.device import resolve_runtime
    from benchmark.method import Progress
    from benchmark.train import Trainer, build_method

    folder = Path(tempfile.mkdtemp(prefix="vssl-gpu-"))
    rng = np.random.default_rng(0)
    records = []
    for i in range(32):  # 64 frames of 256x256 mpeg4 each: a moving random texture, keyframe every 8
        base = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
        frames = np.stack([np.roll(base, shift=t * 2, axis=1) for t in range(64)])
        path = folder / f"v{i:02d}.avi"
        encode_avi(path, frames, fps=25, gop_size=8, qscale=4)
        records.append(VideoRecord(str(path), -1, f"v{i:02d}"))
    cfg = load_config(None, ["method.name=tce", "backbone.name=resnet18", "data.resolution=224", "optim.steps=100"])
    ctx = resolve_runtime("cuda", "bf16", True)
    trainer = Trainer(ctx.prepare(build_method(cfg, num_videos=len(records))), cfg, ctx)
    sampler = build_sampler("frame_pair", 224, train=True)
    out = {}
    for workers in (2, 4, 8):
        steps = StepBatches(len(records), 64, 12, 0)
        loader = make_loader(SampledVideos(records, sampler, "pyav"), steps, num_workers=workers, pin_memory=True)
        waited = stepped = 0.0
        t_wait = time.perf_counter()
        for i, batch in enumerate(loader):
            got = time.perf_counter()
            batch.pop("bad")
            batch = {k: ctx.to_input(v) if torch.is_tensor(v) else v for k, v in batch.items()}
            trainer.train_step(batch, Progress(i, 100))
            torch.cuda.synchronize()
            if i >= 2:  # the first batches pay for starting the workers
                waited += got - t_wait
                stepped += time.perf_counter() - got
            t_wait = time.perf_counter()
        out[f"workers_{workers}_wait_fraction"] = waited / max(1e-9, waited + stepped)
        out[f"workers_{workers}_step_ms"] = stepped / 10 * 1e3
    sample_s = _sample_seconds(sampler, records)
    fraction = out["workers_8_wait_fraction"]
    out.update({"sample_ms": sample_s * 1e3, "goal_wait_fraction": GOAL_DATA_WAIT,
                "meets_goal": fraction < GOAL_DATA_WAIT,
                "bottleneck": "decoding + augmentation in the workers" if fraction >= GOAL_DATA_WAIT else
                f"none at 8 workers: decode + augment {sample_s * 1e3:.1f} ms per pair, 64 pairs per step"})  # fmt: skip
    return out


def _sample_seconds(sampler, records) -> float:
    import numpy as np

    from benchmark.data.video import open_video

    t0 = time.perf_counter()
    for i, record in enumerate(records[:16]):
        with open_video(record.path, "pyav") as video:
            sampler(video, np.random.default_rng(i))
    return (time.perf_counter() - t0) / 16


def stage_tce_run(figures: dict) -> dict:
    import tempfile

    from benchmark.config import load_config
    from benchmark.data.synthetic import SynthConfig, generate
    from benchmark.evaluation import evaluate
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    home = Path(tempfile.mkdtemp(prefix="vssl-gpu-data-"))
    generate(home / "synthetic", SynthConfig(), workers=8, progress=False)
    import os

    os.environ["VSSL_DATA"] = str(home)
    cfg = load_config({}, ["method.name=tce", "optim.steps=200", "optim.batch_size=64", "data.num_workers=4",
                           "run.device=cuda", "run.log_every=50"])  # fmt: skip
    run = RunDir(home / "run")
    t0 = time.perf_counter()
    entry = pretrain(run, cfg, {}, progress_bar=False)
    pretrain_s = time.perf_counter() - t0
    linear = evaluate(run, cfg, "linear", progress_bar=False)
    return {"pretrain_s": pretrain_s, "samples_per_s": entry.get("samples_per_s"),
            "data_wait_fraction": entry.get("data_wait_fraction"), "linear_top1": linear.get("top1"),
            "pretext_learned": (entry.get("pretext") or {}).get("learned")}  # fmt: skip


def stage_host_syncs(figures: dict) -> dict:
    import warnings

    import torch

    from benchmark.device import resolve_runtime
    from benchmark.method import Progress
    from benchmark.perf.methods import build_case
    from benchmark.train import Trainer

    ctx = resolve_runtime("cuda", "bf16", True)
    method, batch, _, _, _, _ = build_case("tce", _Args(224, 32), ctx)
    trainer = Trainer(method, _cfg_for_trainer(), ctx)
    trainer.train_step(batch, Progress(0, 10))
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for step in range(1, 6):
                trainer.train_step(batch, Progress(step, 10))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]
    return {"host_syncs_per_step": len(syncs) / 5, "first": syncs[:3]}


def _cfg_for_trainer():
    from benchmark.config import load_config

    return load_config(None, ["method.name=tce", "backbone.name=resnet18", "optim.steps=10"])


STAGE_FUNCTIONS = {
    "method_2d": stage_method_2d,
    "method_3d": stage_method_3d,
    "mining": stage_mining,
    "data_wait": stage_data_wait,
    "tce_run": stage_tce_run,
    "host_syncs": stage_host_syncs,
}
