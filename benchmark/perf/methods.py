"""methods: every trainable method's training step as a ratio to its bare backbone's forward+backward (goal: overhead < 15%).

Measured in one run, per registered trainable method (in-tree and plugins):

- the batch: built with the method's own sampler (its ``sampler_options``) from an in-memory random
  video, so decoding is excluded (the sampler's augmentation time is shown separately, per sample;
  it runs in the loader's workers, not in the step);
- the method step: ``training_step`` (heads, loss, in-step glue such as shuffling clips or rotating
  them) + ``loss.backward()``, under the run policy's autocast, channels_last; no optimiser step;
- the bare step: the backbone alone, forward + backward, on exactly the tensors the method fed it
  (every ``backbone(...)`` / ``backbone.forward_features(...)`` call of the method's step is recorded
  and replayed; the loss is the mean of the outputs); a method that owns a second encoder (CMC's flow
  encoder: any other ``Backbone`` submodule) has its calls recorded and replayed too, so the encoders
  count as backbone work and only heads, losses and glue as the method's own;
- flow computed on the fly runs in the sampler (CMC, MAS): it is part of the sampler's time per sample,
  never of the step; ``vssl bench flow`` compares it with decoding, per clip;
- backbones: timm ResNet-18 for 2D methods ("either" methods count as 2D), torchvision r3d_18 for 3D
  ones, random init, at 112 px by default;
- ratio = method step / bare step, and overhead = 1 - bare / method, the share of the step that is
  the method's own. Both are warmed up, then bare and method steps alternate and the fastest of each
  is kept;
- own = the method step with the backbone replaced by its recorded outputs (fresh leaf tensors that
  take gradients): the glue, heads, loss and their backward alone, timed 5 times (it is cheap), and
  own share = own / (bare + own). On a busy CPU two multi-second timings differ by +-10% from noise
  alone, which is as large as the overheads being measured; the own share measures the same thing
  directly and is what the goal (< 15%) is checked against. Both are reported. A method's named parts
  (``Method.perf_parts``: VideoGAN's generator) are timed alone as well, forward + backward of the mean of
  their output, and shown as a share of bare + own. Timed apart from the step, a part can come out above
  own (VideoGAN's generator, measured once: 116 ms alone, own 93 ms): read it as the part's size, not a
  slice. On CPU the time is this process's CPU time (``time.process_time``), so time slices lost to
  other processes on a shared machine do not count; on CUDA, synchronised wall time;
- one CPU thread by default (``--threads``): on a busy shared CPU, two spinning OpenMP threads made
  single timings swing several-fold.

The default batch is smaller than the training default (``optim.batch_size`` = 32) so that the
whole run fits a few minutes on a laptop CPU: 4 samples for 2D methods, 1 for 3D ones (``--batch``
sets both); 2D methods are timed 3 times, 3D ones once (``--repeats``). Per-step fixed costs
(Python glue, small heads) weigh more at small batches; DPC's dense score matrix grows with the
square of the batch.
"""

from __future__ import annotations

import time
from typing import Any

GOAL_OVERHEAD = 0.15
BACKBONES = {"2d": "resnet18", "3d": "r3d_18"}
DEFAULT_BATCH = {"2d": 4, "3d": 1}
DEFAULT_REPEATS = {"2d": 3, "3d": 1}
OWN_REPEATS = 5  # the method's own work alone is cheap: time it several times  # a 3D step at 112 px costs ~5-7 CPU-s here; 2D steps are cheap enough to repeat
NUM_VIDEOS = 9537  # UCF101 split-1 train: the memory-bank size TCE would train with
NUM_CLASSES = 101


def add_arguments(p) -> None:
    p.add_argument(
        "--methods", nargs="+", default=None, help="method names (default: every trainable registered method)"
    )
    p.add_argument(
        "--batch", type=int, default=0, help="samples per step for every method (default: 4 for 2D methods, 1 for 3D)"
    )
    p.add_argument("--resolution", type=int, default=112, help="frame side in px (default 112)")
    p.add_argument("--warmup", type=int, default=1, help="untimed method steps first (default 1; 0: none)")
    p.add_argument(
        "--repeats",
        type=int,
        default=0,
        help="timed bare and method steps each, alternating; the fastest is kept (default 0: 3 for 2D methods, 1 for 3D)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument(
        "--precision",
        default="auto",
        help="auto | bf16 | fp32 (default auto: the run policy; fp32 on CPUs without native bf16)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared CPU, spinning OpenMP threads swing timings several-fold; 0: torch's default)",
    )


class InMemoryVideo:
    """Random uint8 frames held in memory: what samplers need (num_frames, get_frames), without decoding."""

    def __init__(self, seed: int, num_frames: int, height: int, width: int):
        import torch

        g = torch.Generator().manual_seed(seed)
        self.frames = torch.randint(0, 256, (num_frames, 3, height, width), dtype=torch.uint8, generator=g)
        self.num_frames, self.fps, self.height, self.width = num_frames, 25.0, height, width

    def get_frames(self, indices):
        import torch

        return self.frames[torch.as_tensor(list(indices), dtype=torch.long)]


def encoders_of(method) -> list:
    """The method's shared backbone, then every other backbone it owns (a second encoder: CMC's flow encoder)."""
    from benchmark.backbones import Backbone

    return [method.backbone] + [m for m in method.modules() if isinstance(m, Backbone) and m is not method.backbone]


class BackboneRecorder:
    """Records input and output of every outermost ``forward`` / ``forward_features`` call of one or more backbone
    instances (each call tagged with its backbone's position in the list)."""

    ENTRY_POINTS = ("forward", "forward_features")

    def __init__(self, backbones):
        self.backbones = backbones if isinstance(backbones, list) else [backbones]
        self.calls: list[tuple[int, str, Any, bool, Any]] = []  # (backbone, entry point, input, grad enabled, output)
        self._depth = 0

    def __enter__(self) -> BackboneRecorder:
        import torch

        for i, backbone in enumerate(self.backbones):
            for name in self.ENTRY_POINTS:
                original = getattr(backbone, name)

                def wrapper(x, *args, _name=name, _original=original, _i=i, **kwargs):
                    self._depth += 1
                    try:
                        out = _original(x, *args, **kwargs)
                    finally:
                        self._depth -= 1
                    if self._depth == 0:
                        self.calls.append((_i, _name, x.detach(), torch.is_grad_enabled(), out.detach()))
                    return out

                setattr(backbone, name, wrapper)  # an instance attribute shadows the class method
        return self

    def __exit__(self, *exc) -> None:
        for backbone in self.backbones:
            for name in self.ENTRY_POINTS:
                delattr(backbone, name)


class BackboneReplay:
    """Stands the backbones in with their recorded outputs (fresh leaves that take gradients), call by call:
    what is left of the step is the method's own work (glue, heads, loss, and their backward)."""

    def __init__(self, backbones, calls):
        self.backbones = backbones if isinstance(backbones, list) else [backbones]
        self.calls = calls

    def __enter__(self) -> BackboneReplay:
        for i, backbone in enumerate(self.backbones):
            outputs = iter([c for c in self.calls if c[0] == i])

            def replay(x, *args, _outputs=outputs, **kwargs):
                _, _, _, grad, out = next(_outputs)
                return out.clone().requires_grad_(grad and out.is_floating_point())

            for name in BackboneRecorder.ENTRY_POINTS:
                setattr(backbone, name, replay)
        return self

    def __exit__(self, *exc) -> None:
        for backbone in self.backbones:
            for name in BackboneRecorder.ENTRY_POINTS:
                delattr(backbone, name)


def build_case(name: str, args, ctx):
    """(method, batch on the device, backbone name, batch size, sampler seconds per sample, backbone kind)."""
    import numpy as np
    import torch

    from benchmark.config import load_config
    from benchmark.data.loader import collate
    from benchmark.data.samplers import build_sampler
    from benchmark.registry import METHODS
    from benchmark.train import build_method

    method_cls = METHODS.get(name)
    kind = "3d" if method_cls.backbone_kind == "3d" else "2d"
    backbone = BACKBONES[kind]
    cfg = load_config(None, [f"method.name={name}", f"backbone.name={backbone}", f"data.resolution={args.resolution}"])
    num_classes = NUM_CLASSES if method_cls.needs_labels else 0
    method = ctx.prepare(build_method(cfg, num_videos=NUM_VIDEOS, num_classes=num_classes))
    method.train()
    sampler = build_sampler(
        method_cls.sampler, args.resolution, train=True, **method_cls.sampler_options(cfg.method, method.info)
    )
    batch_size = args.batch or DEFAULT_BATCH[kind]
    side = args.resolution + args.resolution // 7  # a little larger than the crop, like a real video
    videos = [InMemoryVideo(i, max(64, sampler.frames_needed), side, side * 4 // 3) for i in range(batch_size)]
    t0 = time.perf_counter()
    samples = []
    for i, video in enumerate(videos):
        rng = np.random.default_rng(i)
        torch.manual_seed(i)
        sample = sampler(video, rng)
        sample["index"] = torch.tensor(i)
        if num_classes:
            sample["label"] = torch.tensor(i % num_classes)
        sample["bad"] = []
        samples.append(sample)
    sample_s = (time.perf_counter() - t0) / batch_size
    batch = collate(samples)
    batch.pop("bad")
    batch = {k: ctx.to_input(v) if torch.is_tensor(v) else v for k, v in batch.items()}
    return method, batch, backbone, batch_size, sample_s, kind


def time_method(method, batch, repeats: int, args, ctx) -> dict:
    """Warm up (recording the backbone's calls), alternate timed bare and method steps, then time the method's own work."""
    import torch

    from benchmark.method import Progress

    progress = Progress(step=0, total_steps=1)

    def method_step() -> None:
        method.zero_grad(set_to_none=True)
        with ctx.autocast():
            out = method.training_step(batch, progress)
        out.loss.backward()

    encoders = encoders_of(method)
    with BackboneRecorder(encoders) as recorder:
        method_step()
    calls = recorder.calls
    if not calls:
        raise RuntimeError("the method's step never called its backbone")

    def bare_step() -> None:
        method.zero_grad(set_to_none=True)
        total = None
        for i, entry, x, grad, _ in calls:
            with torch.set_grad_enabled(grad), ctx.autocast():
                out = getattr(encoders[i], entry)(x)
            if grad:
                term = out.float().mean()
                total = term if total is None else total + term
        if total is not None:
            total.backward()

    def own_step() -> None:
        with BackboneReplay(encoders, calls):
            method_step()

    def timed(fn) -> float:
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize(ctx.device)
            return time.perf_counter() - t0
        t0 = time.process_time()  # CPU seconds of this process: time slices lost to other processes do not count
        fn()
        return time.process_time() - t0

    for _ in range(args.warmup - 1):  # the recording step was the first warm-up
        method_step()
    for _ in range(args.warmup):  # a first bare step runs ~30% slower than later ones (measured): warm it up too
        bare_step()
    bare, step = [], []
    for _ in range(repeats):
        bare.append(timed(bare_step))
        step.append(timed(method_step))
    own_step()
    own_s = min(timed(own_step) for _ in range(OWN_REPEATS))
    bare_s, step_s = min(bare), min(step)
    parts = {}  # a method's named pieces (VideoGAN's generator), each timed alone: part of its own work
    for part, fn in method.perf_parts(batch).items():
        with ctx.autocast():
            fn()  # warm-up
            parts[part] = min(timed(fn) for _ in range(OWN_REPEATS))
        method.zero_grad(set_to_none=True)
    shapes = ", ".join(
        f"{'x'.join(map(str, x.shape))}"
        + (" (maps)" if entry == "forward_features" else "")
        + (f" (encoder {i + 1})" if i else "")
        for i, entry, x, _, _ in calls
    )
    return {
        "bare_s": bare_s,
        "step_s": step_s,
        "ratio": step_s / bare_s,
        "overhead": 1 - bare_s / step_s,
        "own_s": own_s,
        "own_share": own_s / (bare_s + own_s),
        "parts": {k: {"s": v, "share": v / (bare_s + own_s)} for k, v in parts.items()},
        "backbone_input": shapes,
    }


def run(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from benchmark.device import resolve_runtime
    from benchmark.errors import UserError
    from benchmark.method import Pretraining
    from benchmark.registry import METHODS

    if args.batch < 0 or args.resolution < 16 or args.repeats < 0 or args.warmup < 1:
        raise UserError("--batch and --repeats must be >= 0, --resolution >= 16, --warmup >= 1")
    if args.threads < 0:
        raise UserError("--threads must be >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    trainable = [e.name for e in METHODS.entries() if e.obj.pretraining is not Pretraining.NONE]
    names = args.methods or trainable
    for name in names:
        if name not in trainable:
            METHODS.get(name)  # an unknown name: one line naming the nearest
            raise UserError(f"method '{name}' does not train (nothing to time); trainable: {', '.join(trainable)}")
    ctx = resolve_runtime(args.device, args.precision, channels_last=True)
    rows = []
    bar = tqdm(names, desc="bench methods", dynamic_ncols=True)
    for name in bar:
        bar.set_postfix(method=name)
        method, batch, backbone, batch_size, sample_s, kind = build_case(name, args, ctx)
        repeats = args.repeats or DEFAULT_REPEATS[kind]
        try:
            figures = time_method(method, batch, repeats, args, ctx)
        except ValueError as exc:  # torch's BatchNorm check: one sample of a 1x1 map per channel in training mode
            if "more than 1 value per channel" not in str(exc):
                raise
            raise UserError(
                f"method '{name}' cannot train at --resolution {args.resolution} with batch {batch_size}: BatchNorm "
                f"sees one value per channel ({exc}); raise --resolution or --batch"
            ) from None
        rows.append(
            {
                "method": name,
                "backbone": backbone,
                "batch": batch_size,
                "repeats": repeats,
                **figures,
                "sampler_ms_per_sample": round(1000 * sample_s, 1),
                "meets_goal": figures["own_share"] < GOAL_OVERHEAD,
            }
        )
        del method, batch
    bar.close()
    setup = {
        "device": str(ctx.device),
        "precision": ctx.precision,
        "channels_last": True,
        "threads": torch.get_num_threads(),
        "resolution": args.resolution,
        "warmup": args.warmup,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "goal_overhead": GOAL_OVERHEAD,
    }
    print(render_table(rows))
    print(
        f"{setup['device']}, {setup['precision']} (autocast {'on' if ctx.dtype_autocast else 'off'}), channels_last, "
        f"{setup['threads']} threads, {args.resolution} px; batch from the method's sampler on an in-memory video "
        f"(no decoding); {'CPU' if ctx.device.type == 'cpu' else 'wall'} time, fastest of the alternating timed steps "
        f"(column 'timed') after {args.warmup} warm-up each; no optimiser step"
    )
    failing = [r["method"] for r in rows if not r["meets_goal"]]
    print(
        f"goal: each method's own share (own / (bare + own)) < {GOAL_OVERHEAD:.0%} of its step: "
        + ("met by all" if not failing else f"NOT met by {', '.join(failing)}")
    )
    if getattr(args, "record", False):
        record(rows, setup)
    return 0 if not failing else 1


def render_table(rows: list[dict], fmt: str = "simple") -> str:
    from tabulate import tabulate

    table = [
        [
            r["method"],
            r["backbone"],
            r["batch"],
            r["backbone_input"],
            r["repeats"],
            f"{1000 * r['bare_s']:.0f}",
            f"{1000 * r['step_s']:.0f}",
            f"{r['ratio']:.3f}",
            f"{100 * r['overhead']:.1f}%",
            f"{1000 * r['own_s']:.0f}",
            f"{100 * r['own_share']:.1f}%",
            r["sampler_ms_per_sample"],
            "yes" if r["meets_goal"] else "NO",
            ", ".join(f"{k} {1000 * v['s']:.0f} ms ({100 * v['share']:.1f}%)" for k, v in r.get("parts", {}).items())
            or "-",
        ]
        for r in rows
    ]
    headers = [
        "method",
        "backbone",
        "batch",
        "backbone input",
        "timed",
        "bare ms",
        "step ms",
        "ratio",
        "overhead",
        "own ms",
        "own share",
        "sampler ms/sample",
        "own < 15%",
        "of own: parts (share of step)",
    ]
    return tabulate(table, headers=headers, tablefmt=fmt)


def record(rows: list[dict], setup: dict) -> None:
    import json
    import os
    import platform
    from pathlib import Path

    from benchmark.rundir import atomic_write_text, git_state

    out = Path.cwd() / "results" / "perf"
    meta = {
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        **git_state(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(out / "methods.json", json.dumps({"setup": setup, "methods": rows, **meta}, indent=2) + "\n")
    lines = [
        "# vssl bench methods",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpu_count']} CPUs, {setup['cpu_capability']}), "
        f"commit {meta['git_commit']}{' (dirty)' if meta.get('git_dirty') else ''}.",
        "",
        f"{setup['device']}, {setup['precision']}, channels_last, {setup['threads']} threads, {setup['resolution']} px, "
        f"{'process CPU time' if setup['device'] == 'cpu' else 'synchronised wall time'}, fastest of the alternating "
        f"timed steps (column 'timed') after {setup['warmup']} warm-up step(s) of each. "
        "Batches come from each method's sampler on an in-memory video (decoding excluded); the step is "
        "training_step + backward (no optimiser step); the bare step is the backbone's forward + backward on the "
        "same tensors; overhead = 1 - bare/step. 'own' is the step with the backbone replaced by its recorded outputs "
        "(glue, heads, loss and their backward alone); own share = own / (bare + own). A method's named parts "
        "(Method.perf_parts: VideoGAN's generator) are timed alone too (forward + backward of the mean of their "
        "output) and shown as a share of bare + own; timed apart from the step, a part can come out above own. "
        "Goal: own share under 15% "
        "(the measured overhead is shown too; single multi-second timings on this shared CPU carry about +-10% noise).",
        "",
        render_table(rows, "github"),
        "",
    ]
    atomic_write_text(out / "methods.md", "\n".join(lines))
    print("recorded results/perf/methods.json and .md")
