"""data: clip decoding speed per decoder and sampler, seek vs full decode vs JPEG frames, and data wait in training.

Two sets: the synthetic set (64x64 mpeg4, ``$VSSL_DATA/synthetic``, generated
small in a temp folder when absent) and a generated UCF101-like set: a few
10 s 320x240 25 fps videos written with PyAV in a temp folder, as MPEG-4 part 2
in AVI (keyframe every 12 frames, like UCF's xvid files) and as h264 in MP4
with sparse keyframes (one per 250 frames, B-frames) -- the slow case.

Figures (medians; one run, so ratios compare and absolute timings are noisy on a shared machine):

* clips/s per decoder for each registered sampler (open + sample + augment, as the loader does);
* random 8-frame clip (fresh open, keyframe seek) vs decoding the whole 10 s video: the ratio (target >= 5x);
* the same clip read from pre-extracted JPEG frames (target: the video clip is no slower);
* the h264 set re-encoded by ``vssl prepare`` (MPEG-4, keyframe every 8 frames, same size);
* the demo configuration (sweeps/demo.yaml: TCE, resnet10t, 64 px, batch 32) pre-trained for a few steps
  with ``data.num_workers`` 0, 1, 2: the fraction of each step spent waiting for data (target < 10%).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

CLIP_LEN = 8
UCF_SIZE = (320, 240)
UCF_SECONDS = 10
FPS = 25
SEEK_TARGET_RATIO = 5.0
WAIT_TARGET = 0.10


def add_arguments(p) -> None:
    p.add_argument("--videos", type=int, default=4, help="UCF101-like videos to generate (default 4)")
    p.add_argument("--clips", type=int, default=40, help="random clips timed per case (default 40)")
    p.add_argument(
        "--steps", type=int, default=30, help="demo pre-training steps per worker setting (default 30; 0 skips)"
    )
    p.add_argument("--workers", default="0,1,2", help="data.num_workers values for the data-wait runs (default 0,1,2)")
    p.add_argument("--decoders", default="auto", help="comma list, or auto: pyav plus torchcodec where importable")
    p.add_argument("--synthetic", default=None, help="synthetic set root (default $VSSL_DATA/synthetic)")


# ---------------------------------------------------------------------- generated videos
def _frames(n: int, size: tuple[int, int], seed: int):
    """Smooth moving content (a scrolling gradient, two moving blocks, light noise): realistic file sizes."""
    import numpy as np

    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 6.28, 3)
    for i in range(n):
        img = np.empty((h, w, 3), np.float32)
        for c in range(3):
            img[..., c] = 128 + 60 * np.sin((xx + 2 * i) / (25 + 9 * c) + phase[c]) * np.cos((yy - i) / 31)
        for k, (vx, vy) in enumerate(((3, 1), (-2, 2))):
            x, y = int((40 + vx * i + 90 * k) % (w - 40)), int((30 + vy * i + 60 * k) % (h - 40))
            img[y : y + 40, x : x + 40] = (220 - 80 * k, 60 + 100 * k, 90)
        img += rng.normal(0, 3, img.shape)
        yield np.clip(img, 0, 255).astype(np.uint8)


def write_video(path: Path, codec: str, gop: int, size=UCF_SIZE, seconds=UCF_SECONDS, seed=0) -> Path:
    import av

    fmt = "avi" if path.suffix == ".avi" else "mp4"
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        ctx = s.codec_context
        ctx.gop_size = gop
        if codec == "libx264":
            s.options = {"keyint": str(gop), "min-keyint": str(gop), "scenecut": "0", "bframes": "2", "preset": "fast"}
        else:
            ctx.max_b_frames = 0
            ctx.qscale = True
            ctx.global_quality = 4 * 118
        for i, rgb in enumerate(_frames(seconds * FPS, size, seed)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


def extract_jpegs(video: Path, folder: Path, quality: int = 90) -> Path:
    from PIL import Image

    from benchmark.data.video import open_video

    folder.mkdir(parents=True, exist_ok=True)
    with open_video(video, "pyav") as v:
        for start in range(0, v.num_frames, 32):
            frames = v.get_frames(range(start, min(v.num_frames, start + 32)))
            for k, f in enumerate(frames):
                Image.fromarray(f.permute(1, 2, 0).numpy()).save(
                    folder / f"frame{start + k + 1:06d}.jpg", quality=quality
                )
    return folder


# ---------------------------------------------------------------------- timing
def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def clip_vs_full(videos: list[Path], decoder: str, clips: int, seed: int = 0) -> dict:
    """Median ms: a random 8-frame clip (fresh handle: open + seek + decode) and a whole-video decode."""
    import numpy as np

    from benchmark.data.video import open_video

    rng = np.random.default_rng(seed)
    starts = []

    def one_clip():
        path = videos[int(rng.integers(len(videos)))]
        with open_video(path, decoder) as v:
            s = int(rng.integers(0, v.num_frames - CLIP_LEN + 1))
            starts.append((path, s))
            v.get_frames(range(s, s + CLIP_LEN))

    def one_full(path):
        with open_video(path, decoder) as v:
            for s in range(0, v.num_frames, 50):
                v.get_frames(range(s, min(v.num_frames, s + 50)))

    one_clip()  # warm-up (imports, file cache)
    clip_ms = _median_ms(one_clip, clips)
    full_ms = statistics.median(_median_ms(lambda p=p: one_full(p), 2) for p in videos)
    return {"clip_ms": round(clip_ms, 2), "full_ms": round(full_ms, 1), "ratio": round(full_ms / clip_ms, 1)}


def video_vs_jpeg(videos: list[Path], folders: list[Path], decoder: str, clips: int, seed: int = 1) -> dict:
    """The same random 8-frame clip from the video (fresh handle, seek) and from its JPEG frames, timed
    alternately so that load changes on a shared machine hit both alike. Median ms of each."""
    import numpy as np

    from benchmark.data.video import open_video

    rng = np.random.default_rng(seed)
    video_ms, jpeg_ms = [], []
    for k in range(clips + 1):
        i = int(rng.integers(len(videos)))
        with open_video(folders[i], decoder) as f:
            start = int(rng.integers(0, f.num_frames - CLIP_LEN + 1))
        for path, out in ((videos[i], video_ms), (folders[i], jpeg_ms))[:: 1 if k % 2 else -1]:
            t0 = time.perf_counter()
            with open_video(path, decoder) as v:
                v.get_frames(range(start, start + CLIP_LEN))
            if k:  # the first round warms up
                out.append(1000 * (time.perf_counter() - t0))
    return {"video_ms": round(statistics.median(video_ms), 2), "jpeg_ms": round(statistics.median(jpeg_ms), 2)}


def sampler_rates(videos: list[Path], decoder: str, resolution: int, seconds: float = 1.5) -> dict[str, float]:
    """Samples/s of every registered sampler with its default options (open + sample + augment)."""
    import numpy as np
    import torch

    from benchmark.data.samplers import build_sampler
    from benchmark.data.video import open_video
    from benchmark.registry import SAMPLERS

    out = {}
    rng = np.random.default_rng(0)
    for name in SAMPLERS.names():
        try:
            sampler = build_sampler(name, resolution=resolution, train=True)
        except TypeError:
            continue
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 3:
            with open_video(videos[n % len(videos)], decoder) as v:
                with torch.no_grad():
                    sampler(v, rng)
            n += 1
        out[name] = round(n / (time.perf_counter() - t0), 1)
    return out


def kept_decoded_rates(videos: list[Path], decoder: str, resolution: int = 32, reads: int = 8) -> dict:
    """Training samples/s (TCE's frame_pair sampler, open + sample + augment, as the loader does) with videos
    decoded on demand vs kept decoded (``SampledVideos(keep_decoded=True)``, what training uses): every video is
    read ``reads`` times, as a pool is during pre-training (TCE 600 x 64 on the CPU table: ~72 reads per video)."""
    from benchmark.data.loader import SampledVideos
    from benchmark.data.samplers import build_sampler

    records = [SimpleNamespace(path=str(path), label=0) for path in videos]  # what SampledVideos reads of a record
    sampler = build_sampler("frame_pair", resolution=resolution, train=True)
    addresses = [(step, 0, step % len(records)) for step in range(reads * len(records))]
    out = {}
    for keep in (False, True):
        dataset = SampledVideos(records, sampler, decoder, seed=0, keep_decoded=keep)
        t0 = time.perf_counter()
        for address in addresses:
            dataset[address]
        out["kept" if keep else "on_demand"] = round(len(addresses) / (time.perf_counter() - t0), 1)
    out["ratio"] = round(out["kept"] / out["on_demand"], 2)
    out["reads_per_video"], out["resolution"] = reads, resolution
    return out


def demo_data_wait(workers: list[int], steps: int, data_home: Path) -> list[dict]:
    """Pre-train the demo configuration for ``steps`` steps per ``data.num_workers`` value."""
    from benchmark.config import build_experiment, read_yaml
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    base = read_yaml(Path(__file__).resolve().parents[2] / "sweeps" / "demo.yaml")["base"]
    rows = []
    for w in workers:
        tree = json.loads(json.dumps(base))
        tree.setdefault("data", {})["num_workers"] = w
        tree.setdefault("method", {})["name"] = "tce"
        tree.setdefault("optim", {})["steps"] = steps
        tree.setdefault("run", {}).update(checkpoint_every=10**6, log_every=10**6, stages=["pretrain"])
        old = os.environ.get("VSSL_DATA")
        os.environ["VSSL_DATA"] = str(data_home)
        try:
            with tempfile.TemporaryDirectory(prefix="vssl-bench-data-run-") as tmp:
                entry = pretrain(RunDir(Path(tmp) / "run"), build_experiment(tree), tree, progress_bar=False)
        finally:
            if old is None:
                os.environ.pop("VSSL_DATA", None)
            else:
                os.environ["VSSL_DATA"] = old
        rows.append(
            {
                "num_workers": w,
                "data_wait_fraction": entry["data_wait_fraction"],
                "samples_per_s": entry["samples_per_s"],
                "wall_s": entry["wall_s"],
            }
        )
        print(
            f"  demo, num_workers={w}: data wait {100 * entry['data_wait_fraction']:.1f}% of step time, "
            f"{entry['samples_per_s']} samples/s"
        )
    return rows


# ---------------------------------------------------------------------- the benchmark
def _decoders(spec: str) -> list[str]:
    from benchmark.data.video import resolve_decoder, torchcodec_status

    if spec == "auto":
        return ["pyav"] + (["torchcodec"] if torchcodec_status()[0] else [])
    names = [d.strip() for d in spec.split(",") if d.strip()]
    for d in names:
        resolve_decoder(d)
    return names


def _frame_size(path: Path) -> tuple[int, int]:
    from benchmark.data.video import open_video

    with open_video(path, "pyav") as v:
        return v.width, v.height


def _synthetic_root(arg: str | None, tmp: Path) -> Path:
    from benchmark.data.synthetic import SynthConfig, generate
    from benchmark.paths import data_home

    root = Path(arg) if arg else data_home() / "synthetic"
    if (root / "pool").is_dir():
        return root
    root = tmp / "synthetic"
    generate(root, SynthConfig(videos_per_class=8, pool_videos=120), workers=1, progress=False)
    return root


def run(args) -> int:
    from benchmark.errors import UserError

    if args.videos < 1 or args.clips < 1:
        raise UserError("--videos and --clips must be at least 1")
    try:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        raise UserError(f"--workers must be a comma list of integers, got '{args.workers}'") from None
    import torch

    decoders = _decoders(args.decoders)
    figures: dict = {"decoders": decoders, "clip_len": CLIP_LEN}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # decoding figures with one thread, as in a DataLoader worker
    with tempfile.TemporaryDirectory(prefix="vssl-bench-data-") as tmp_name:
        tmp = Path(tmp_name)
        synth = _synthetic_root(args.synthetic, tmp)
        synth_videos = sorted((synth / "pool").glob("*/*.avi"))[:64]
        synth_size = _frame_size(synth_videos[0])  # (width, height): 64x64 by default; `make demo` writes 32x32
        print(f"generating {args.videos} UCF101-like videos ({UCF_SECONDS} s, {UCF_SIZE[0]}x{UCF_SIZE[1]}) ...")
        sets = {
            f"synthetic {synth_size[0]}x{synth_size[1]} mpeg4": synth_videos,
            "ucf-like mpeg4 avi (gop 12)": [
                write_video(tmp / f"u{i}.avi", "mpeg4", 12, seed=i) for i in range(args.videos)
            ],
            "ucf-like h264 mp4 (gop 250)": [
                write_video(tmp / f"h{i}.mp4", "libx264", 250, seed=i) for i in range(args.videos)
            ],
        }
        from benchmark.data.prepare import PrepareConfig, encode_video

        prepared = []
        for i, src in enumerate(sets["ucf-like h264 mp4 (gop 250)"]):  # what `vssl prepare --short-side 0` writes
            encode_video(src, tmp / f"p{i}.avi", PrepareConfig(short_side=0, gop=8))
            prepared.append(tmp / f"p{i}.avi")
        sets["h264 set after vssl prepare (mpeg4 gop 8)"] = prepared
        ucf = sets["ucf-like mpeg4 avi (gop 12)"]
        jpeg = [extract_jpegs(v, tmp / f"jpeg{i}") for i, v in enumerate(ucf)]
        figures["video_vs_jpeg"] = {}
        for decoder in decoders:
            r = figures["video_vs_jpeg"][decoder] = video_vs_jpeg(ucf, jpeg, decoder, args.clips)
            print(
                f"same 8-frame clip, 320x240: {r['video_ms']} ms from the mpeg4 AVI ({decoder}), "
                f"{r['jpeg_ms']} ms from JPEG frames"
            )

        figures["access"], figures["samplers"] = {}, {}
        for set_name, videos in sets.items():
            for decoder in decoders:
                key = f"{set_name} / {decoder}"
                r = clip_vs_full(videos if "synthetic" not in set_name else videos[:16], decoder, args.clips)
                figures["access"][key] = r
                print(f"{key}: random 8-frame clip {r['clip_ms']} ms, whole video {r['full_ms']} ms -> {r['ratio']}x")
                if "h264" not in set_name:
                    res = min(64, synth_size[0]) if "synthetic" in set_name else 112
                    figures["samplers"][key] = sampler_rates(videos, decoder, res)
                    print(f"  samples/s at {res}px: {figures['samplers'][key]}")
        figures["kept_decoded"] = {}
        for decoder in decoders:
            r = figures["kept_decoded"][decoder] = kept_decoded_rates(synth_videos, decoder)
            print(
                f"synthetic / {decoder}, training samples at 32 px, each video read {r['reads_per_video']} times: "
                f"{r['on_demand']} samples/s decoded on demand, {r['kept']} kept decoded -> {r['ratio']}x"
            )
        torch.set_num_threads(threads)
        from benchmark.data.video import resolve_decoder

        figures["demo_decoder"] = resolve_decoder("auto")
        if args.steps > 0:
            print(f"demo configuration, {args.steps} steps per setting ...")
            figures["demo_data_wait"] = demo_data_wait(workers, args.steps, synth.parent)
    verdict = _verdict(figures)
    for line in verdict:
        print(line)
    figures["verdict"] = verdict
    if getattr(args, "record", False):
        record(figures)
    return 0


def _verdict(f: dict) -> list[str]:
    out = []
    for key, r in f["access"].items():
        if "mpeg4 avi" in key:
            ok = r["ratio"] >= SEEK_TARGET_RATIO
            out.append(
                f"{key}: clip {r['ratio']}x faster than a full decode (target >= {SEEK_TARGET_RATIO:g}x: "
                f"{'met' if ok else 'NOT met'})"
            )
    for decoder, r in f["video_vs_jpeg"].items():
        ok = r["video_ms"] <= r["jpeg_ms"]
        out.append(
            f"{decoder}: same clip {r['video_ms']} ms from video vs {r['jpeg_ms']} ms from JPEGs "
            f"(target: no slower: {'met' if ok else 'NOT met'})"
        )
    for row in f.get("demo_data_wait", []):
        ok = row["data_wait_fraction"] < WAIT_TARGET
        out.append(
            f"demo num_workers={row['num_workers']}: data wait {100 * row['data_wait_fraction']:.1f}% "
            f"(target < {100 * WAIT_TARGET:.0f}%: {'met' if ok else 'NOT met'})"
        )
    return out


def record(figures: dict, meta: dict | None = None) -> None:
    """Write results/perf/data.json and .md (``meta``: machine, commit and date of an earlier measurement)."""
    import platform

    from benchmark.rundir import atomic_write_text, git_state

    out = Path.cwd() / "results" / "perf"
    meta = meta or {
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        **git_state(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(out / "data.json", json.dumps({**figures, **meta}, indent=2) + "\n")
    lines = [
        "# vssl bench data",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpu_count']} CPUs, "
        f"shared with other jobs: absolute times are noisy, ratios are from one run), commit {meta['git_commit']}.",
        "",
        "## Random 8-frame clip vs whole-video decode",
        "",
        "| set / decoder | clip (ms) | whole video (ms) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {k} | {r['clip_ms']} | {r['full_ms']} | {r['ratio']}x |" for k, r in figures["access"].items()]
    lines += [
        "",
        "## The same clip from video vs pre-extracted JPEG frames (320x240, quality 90; timed alternately)",
        "",
        "| decoder | from the mpeg4 AVI (ms) | from JPEG frames (ms) |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {d} | {r['video_ms']} | {r['jpeg_ms']} |" for d, r in figures["video_vs_jpeg"].items()]
    lines += ["", "## Samples/s per sampler (open + sample + augment, one process, one thread)", ""]
    names = sorted({n for rates in figures["samplers"].values() for n in rates})
    lines += ["| set / decoder | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    lines += [f"| {k} | " + " | ".join(str(r.get(n, "")) for n in names) + " |" for k, r in figures["samplers"].items()]
    if figures.get("kept_decoded"):
        lines += [
            "",
            "## Training samples/s: small videos decoded on demand vs kept decoded (frame_pair, 32 px, one thread)",
            "",
            "Training keeps each video of <= 1 MiB decoded after its first read (benchmark.data.video."
            "SmallVideoCache; the samples are bit-identical). Each of the synthetic set's videos is read "
            f"{next(iter(figures['kept_decoded'].values()))['reads_per_video']} times here.",
            "",
            "| decoder | on demand (samples/s) | kept decoded (samples/s) | ratio |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {d} | {r['on_demand']} | {r['kept']} | {r['ratio']}x |" for d, r in figures["kept_decoded"].items()
        ]
    if figures.get("demo_data_wait"):
        lines += [
            "",
            "## Demo configuration: data wait (TCE, resnet10t, 64 px, batch 32)",
            "",
            f"data.decoder=auto (here: {figures.get('demo_decoder', '?')}); wait = time the loop waits for "
            "the next batch / wall time. Samples/s is dominated by the shared machine's load (other jobs): "
            "compare the wait fractions.",
            "",
            "| data.num_workers | data wait | samples/s | wall (s) |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r['num_workers']} | {100 * r['data_wait_fraction']:.1f}% | {r['samples_per_s']} | {r['wall_s']} |"
            for r in figures["demo_data_wait"]
        ]
    lines += ["", "## Verdict", ""] + [f"- {v}" for v in figures["verdict"]]
    atomic_write_text(out / "data.md", "\n".join(lines) + "\n")
    print("recorded results/perf/data.json and .md")
