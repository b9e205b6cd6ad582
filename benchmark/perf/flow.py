"""flow: optical flow computed on the fly, per clip, against decoding that clip (CMC's and MAS's samplers).

Flow is computed in the loader's workers (benchmark/data/flow.py), so what matters is how it compares with the
rest of a worker's job: opening the video and decoding the clip. Per case (a video set, a resolution R and a
number of frames T), medians over ``--clips`` random clips, one thread (as in a DataLoader worker):

- decode: open the video (fresh handle) + decode T consecutive frames;
- crop: the shared random resized crop + flip to R x R on the uint8 frames;
- Farneback / DIS: the T-1 flow fields of the cropped frames (OpenCV, the harness's default parameters);
- difference: the T-1 frame differences (the explicit non-flow option);
- ratio: Farneback / decode (< 1: flow costs less than decoding the clip it is computed from).

Cases: the synthetic set (64x64 MPEG-4; CMC's 2-frame pair and MAS's 8-frame clip at 32 and 64 px) and a
generated UCF101-like set (320x240 MPEG-4; CMC's pair at 224 px and MAS's 16-frame clip at 112 px, the
table1.yaml scale). Then the full samplers per sample (open + decode + augment + flow + labels), beside the
``clip`` sampler on the same videos (decode + augment only).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

CASES = (  # (set, resolution, frames, what it is)
    ("synthetic", 32, 2, "CMC pair, CPU default"),
    ("synthetic", 32, 8, "MAS clip, CPU default"),
    ("synthetic", 64, 8, "MAS clip, 64 px"),
    ("ucf", 224, 2, "CMC pair, table1.yaml"),
    ("ucf", 112, 16, "MAS clip, table1.yaml"),
)


def add_arguments(p) -> None:
    p.add_argument("--clips", type=int, default=20, help="random clips timed per case (default 20)")
    p.add_argument("--videos", type=int, default=2, help="UCF101-like videos to generate (default 2)")
    p.add_argument("--synthetic", default=None, help="synthetic set root (default $VSSL_DATA/synthetic)")


def _median_ms(times: list[float]) -> float:
    return round(1000 * statistics.median(times), 2)


def time_case(videos: list[Path], resolution: int, frames: int, clips: int, seed: int = 0) -> dict:
    """Median ms per clip of each stage (decode, crop, Farneback, DIS, difference) on random clips."""
    import numpy as np
    import torch

    from benchmark.data.flow import FlowConfig, frame_difference, optical_flow, spatial_transform
    from benchmark.data.transforms import AugmentConfig
    from benchmark.data.video import open_video

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    crop = spatial_transform(resolution, AugmentConfig(), train=True)
    times: dict[str, list[float]] = {k: [] for k in ("decode", "crop", "farneback", "dis", "difference")}
    for k in range(clips + 1):  # the first round warms up (imports, file cache, OpenCV's first call)
        t0 = time.perf_counter()
        with open_video(videos[k % len(videos)]) as v:
            start = int(rng.integers(0, max(1, v.num_frames - frames + 1)))
            raw = v.get_frames(range(start, start + frames))
        t1 = time.perf_counter()
        cropped = crop(raw)
        t2 = time.perf_counter()
        optical_flow(cropped, FlowConfig("farneback"))
        t3 = time.perf_counter()
        optical_flow(cropped, FlowConfig("dis"))
        t4 = time.perf_counter()
        frame_difference(cropped)
        t5 = time.perf_counter()
        if k:
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                times[key].append(dt)
    out = {f"{k}_ms": _median_ms(v) for k, v in times.items()}
    out["farneback_per_decode"] = round(out["farneback_ms"] / out["decode_ms"], 2)
    out["dis_per_decode"] = round(out["dis_ms"] / out["decode_ms"], 2)
    return out


def sampler_ms(videos: list[Path], name: str, resolution: int, clips: int, **options) -> float:
    """Median ms per sample of a registered sampler: open + sample (decode, augment, flow, labels)."""
    import numpy as np

    from benchmark.data.samplers import build_sampler
    from benchmark.data.video import open_video

    sampler = build_sampler(name, resolution, train=True, **options)
    rng = np.random.default_rng(0)
    times = []
    for k in range(clips + 1):
        t0 = time.perf_counter()
        with open_video(videos[k % len(videos)]) as v:
            sampler(v, rng)
        if k:
            times.append(time.perf_counter() - t0)
    return _median_ms(times)


def run(args) -> int:
    import torch

    from benchmark.errors import UserError
    from benchmark.perf.data import _synthetic_root, write_video

    if args.clips < 1 or args.videos < 1:
        raise UserError("--clips and --videos must be at least 1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    figures: dict = {"cases": [], "samplers": []}
    try:
        with tempfile.TemporaryDirectory(prefix="vssl-bench-flow-") as tmp_name:
            tmp = Path(tmp_name)
            sets = {
                "synthetic": sorted((_synthetic_root(args.synthetic, tmp) / "pool").glob("*/*.avi"))[:32],
                "ucf": [write_video(tmp / f"u{i}.avi", "mpeg4", 12, seed=i) for i in range(args.videos)],
            }
            labels = {"synthetic": "synthetic 64x64 mpeg4", "ucf": "ucf-like 320x240 mpeg4 (gop 12)"}
            for set_name, resolution, frames, what in CASES:
                r = time_case(sets[set_name], resolution, frames, args.clips)
                row = {"set": labels[set_name], "resolution": resolution, "frames": frames, "what": what, **r}
                figures["cases"].append(row)
                print(
                    f"{labels[set_name]}, {resolution} px, {frames} frames ({what}): decode {r['decode_ms']} ms, "
                    f"crop {r['crop_ms']}, Farneback {r['farneback_ms']} ({r['farneback_per_decode']}x decode), "
                    f"DIS {r['dis_ms']} ({r['dis_per_decode']}x), difference {r['difference_ms']}"
                )
            sampler_cases = [
                ("synthetic", 32, "frame_flow", {}),
                ("synthetic", 32, "stats_clip", {"clip_len": 8}),
                ("synthetic", 32, "clip", {"clip_len": 8, "stride": 1}),
                ("ucf", 224, "frame_flow", {}),
                ("ucf", 112, "stats_clip", {"clip_len": 16}),
                ("ucf", 112, "clip", {"clip_len": 16, "stride": 1}),
            ]
            for set_name, resolution, name, options in sampler_cases:
                ms = sampler_ms(sets[set_name], name, resolution, args.clips, **options)
                shown = ", ".join(f"{k}={v}" for k, v in options.items())
                figures["samplers"].append(
                    {"set": labels[set_name], "resolution": resolution, "sampler": name, "options": shown, "ms": ms}
                )
                print(f"{labels[set_name]}, {resolution} px: sampler {name}({shown}) {ms} ms per sample")
    finally:
        torch.set_num_threads(threads)
    if getattr(args, "record", False):
        record(figures)
    return 0


def record(figures: dict) -> None:
    import platform

    from benchmark.rundir import atomic_write_text, git_state

    out = Path.cwd() / "results" / "perf"
    meta = {
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        **git_state(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(out / "flow.json", json.dumps({**figures, **meta}, indent=2) + "\n")
    lines = [
        "# vssl bench flow",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpu_count']} CPUs, shared with other jobs: "
        f"absolute times are noisy), commit {meta['git_commit']}{' (dirty)' if meta.get('git_dirty') else ''}. "
        "One thread, as in a DataLoader worker; medians over random clips.",
        "",
        "## Flow per clip against decoding the clip",
        "",
        "decode = open + decode the clip's frames (fresh handle); crop = the shared random resized crop + flip; "
        "Farneback / DIS = the clip's T-1 flow fields at the training resolution (OpenCV); difference = the T-1 "
        "frame differences; ratio = flow / decode.",
        "",
        "| set | px | frames | case | decode (ms) | crop (ms) | Farneback (ms) | ratio | DIS (ms) | ratio | difference (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['set']} | {r['resolution']} | {r['frames']} | {r['what']} | {r['decode_ms']} | {r['crop_ms']} | "
        f"{r['farneback_ms']} | {r['farneback_per_decode']}x | {r['dis_ms']} | {r['dis_per_decode']}x | "
        f"{r['difference_ms']} |"
        for r in figures["cases"]
    ]
    lines += [
        "",
        "## Whole samplers per sample (open + decode + augment + flow + labels)",
        "",
        "`frame_flow` (CMC, default options: one flow field), `stats_clip` (MAS: flow, 14 motion + 13 appearance "
        "labels), beside `clip` (decode + augment only) on the same videos.",
        "",
        "| set | px | sampler | options | ms per sample |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['set']} | {r['resolution']} | {r['sampler']} | {r['options'] or '-'} | {r['ms']} |"
        for r in figures["samplers"]
    ]
    atomic_write_text(out / "flow.md", "\n".join(lines) + "\n")
    print("recorded results/perf/flow.json and .md")
