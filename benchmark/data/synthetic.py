"""The built-in synthetic action dataset (``vssl synth``), written as real .avi files in UCF101's layout.

Output (``generate(OUT, cfg)``)::

    OUT/<Class>/v_<Class>_gGG_cCC.avi           labelled set (mpeg4 in .avi, yuv420p, short GOP)
    OUT/ucfTrainTestlist/classInd.txt           "1 BouncingSolidCircle"
    OUT/ucfTrainTestlist/trainlist01.txt        "BouncingSolidCircle/v_BouncingSolidCircle_g09_c01.avi 1"
    OUT/ucfTrainTestlist/testlist01.txt         "BouncingSolidCircle/v_BouncingSolidCircle_g01_c01.avi"
    OUT/pool/<Class>/k_<Class>_NNNN.avi         unlabelled "Kinetics-like" pre-training pool (fresh draws)
    OUT/synth.json                              config, class specs and counts; a matching file skips a re-run

Design (see the synthetic findings: a video-discrimination objective learns
the easiest *stable per-video* cue first, so that cue must be the class):

* A class is an object category -- shape x fill (6 shapes x {Solid, Hollow}
  at 12 classes: Circle, Square, Triangle, Star, Cross, Arrow; no Hexagon,
  which cannot be told from a Circle at 32 px) -- and each class also has its
  own characteristic motion (spinning clockwise, bouncing, orbiting,
  approaching, ...), so temporal order carries class information for
  order-based objectives.
* The world has an "up" and an arrow of time, as real footage does: objects
  stand upright (tilt within +-20 degrees, so a triangle points up and an
  arrow sideways), light comes from above (a soft drop shadow below the
  object), and periodic motions lose energy (bounce and hop apexes decay over a
  fixed floor, swings and orbits shrink, spins slow down), so a clip played
  backwards is physically implausible.
* Every nuisance is either drawn from a pool shared by *all* classes (object
  colour from one palette, size, position, speed, direction, phase, tilt,
  damping, blur, noise level, camera-jitter strength, background textures)
  or changes *within* the video (the background cross-fades between two
  textures and scrolls, the object's hue drifts, the lighting flickers,
  per-frame noise and camera jitter). Nothing but the class is constant
  within a video and distinctive across videos.
* Objects are large (diameter ~30-45% of the frame) and rendered
  anti-aliased (4x supersampled masks drawn with Pillow). Frames are 32 px by
  default: measured on a 2-core CPU, class recognition is as good as at 64 px
  and rendering, decoding and every network step are 2-4x cheaper.

Every video's randomness comes from its own seed (seed, set, class, group,
clip), so files are byte-identical across runs and independent of worker
scheduling; the encoder runs single-threaded with bitexact flags (no
library-version strings or timestamps in the files).
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import UserError

GENERATOR_VERSION = 2  # bump when the rendering changes: a stored synth.json then no longer matches
LIST_DIR = "ucfTrainTestlist"
POOL_DIR = "pool"
SUMMARY_FILE = "synth.json"
SUPERSAMPLE = 4

SHAPES = ("Circle", "Square", "Triangle", "Star", "Cross", "Hexagon", "Diamond", "Arrow")
FILLS = ("Solid", "Hollow", "Striped")
MOTIONS = (
    "Bouncing",
    "Sliding",
    "Orbiting",
    "Spinning",
    "Whirling",
    "Pulsing",
    "Zigzagging",
    "Approaching",
    "Receding",
    "Looping",
    "Rocking",
    "Hopping",
)

# The first 12 classes: 6 shapes x {Solid, Hollow}, each with its own motion (no spinning circles). Hexagon is
# not among them: at 32 px it is indistinguishable from a Circle (generator v1 had it; supervised 93% -> 100%).
_DEFAULT_CLASSES = (
    ("Circle", "Solid", "Bouncing"),
    ("Square", "Solid", "Spinning"),
    ("Triangle", "Solid", "Rocking"),
    ("Star", "Solid", "Whirling"),
    ("Cross", "Solid", "Sliding"),
    ("Arrow", "Solid", "Hopping"),
    ("Circle", "Hollow", "Orbiting"),
    ("Square", "Hollow", "Zigzagging"),
    ("Triangle", "Hollow", "Approaching"),
    ("Star", "Hollow", "Pulsing"),
    ("Cross", "Hollow", "Receding"),
    ("Arrow", "Hollow", "Looping"),
)


@dataclass(frozen=True)
class ClassSpec:
    shape: str
    fill: str
    motion: str
    order: int  # position in the fixed class ordering: part of every video's seed

    @property
    def name(self) -> str:
        return f"{self.motion}{self.fill}{self.shape}"


def class_specs(count: int) -> list[ClassSpec]:
    """The first ``count`` classes of a fixed ordering (so classes=3 reuses the first 3 of classes=12)."""
    combos = list(_DEFAULT_CLASSES)
    used = {shape for shape, _, _ in combos}
    combos += [(s, f, None) for f in FILLS[:2] for s in SHAPES if s not in used]
    combos += [(s, FILLS[2], None) for s in SHAPES]
    if not 2 <= count <= len(combos):
        raise UserError(f"synthetic classes must be in 2..{len(combos)}, got {count}")
    out = []
    for i, (shape, fill, motion) in enumerate(combos[:count]):
        out.append(ClassSpec(shape, fill, motion or MOTIONS[i % len(MOTIONS)], i))
    return out


@dataclass
class SynthConfig:
    """What ``vssl synth`` generates. Defaults: 12 classes, 384 test / 576 train videos, a 600-video pool.

    ``videos_per_class`` are spread over ``groups`` UCF-style groups (gGG);
    groups 1..test_groups form the test split (as UCF101's split 1 uses groups
    1-7). With fewer videos than groups, the groups (and test groups,
    proportionally) shrink so both splits stay non-empty.
    """

    seed: int = 0
    classes: int = 12
    videos_per_class: int = 80  # train + test; 4 clips per group; 32 test videos per class
    groups: int = 20
    test_groups: int = 8
    size: int = 32  # px, square (v2: 32; rendering, decoding and training are 2-4x cheaper than at 64)
    frames: int = 32
    fps: int = 25
    pool_videos: int = 600  # unlabelled pre-training pool, class-per-folder; 0 = none
    backgrounds: int = 8  # smooth textures in the shared background pool
    gop_size: int = 8  # keyframe interval: cheap random access
    qscale: int = 2  # mpeg4 quantiser (2 = near-lossless at this size)

    def validate(self) -> None:
        class_specs(self.classes)
        checks = [
            (self.videos_per_class >= 2, "videos_per_class must be >= 2"),
            (self.groups >= 2, "groups must be >= 2"),
            (1 <= self.test_groups < self.groups, "test_groups must be in 1..groups-1"),
            # the upper bounds keep one video's frames (rendered in float32) within ~1.5 GB: a typo, not a set
            (16 <= self.size <= 1024 and self.size % 2 == 0, "size must be even and in 16..1024"),
            (2 <= self.frames <= 1000, "frames must be in 2..1000"),
            (self.seed >= 0, "seed must be >= 0"),
            (1 <= self.fps <= 1000, "fps must be in 1..1000 (MPEG-4's time base)"),
            (self.pool_videos >= 0, "pool_videos must be >= 0"),
            (self.backgrounds >= 2, "backgrounds must be >= 2"),
            (self.gop_size >= 1, "gop_size must be >= 1"),
            (1 <= self.qscale <= 31, "qscale must be in 1..31"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"synthetic config: {message}")

    # ------------------------------------------------------------------ derived layout
    @property
    def effective_groups(self) -> tuple[int, int]:
        """(groups, test groups) actually used: shrunk when there are fewer videos than groups."""
        g = min(self.groups, self.videos_per_class)
        if g == self.groups:
            return g, self.test_groups
        tg = max(1, round(self.test_groups * g / self.groups))
        return g, min(tg, g - 1)

    @property
    def clips_per_group(self) -> int:
        g, _ = self.effective_groups
        return math.ceil(self.videos_per_class / g)

    def group_clips(self) -> list[tuple[int, int]]:
        """(group, clip) pairs of one class, 1-based. Leftover clips go to the last (train) groups."""
        g, _ = self.effective_groups
        base, extra = divmod(self.videos_per_class, g)
        return [(grp, clip) for grp in range(1, g + 1) for clip in range(1, base + (grp > g - extra) + 1)]

    def is_test_group(self, group: int) -> bool:
        return group <= self.effective_groups[1]


# ====================================================================== rendering
def _unit_polygon(shape: str) -> np.ndarray | None:
    """Vertices (x, y) of a shape of 'radius' ~1 centred at 0 (y points down). None = circle."""
    if shape == "Circle":
        return None
    if shape in ("Square", "Triangle", "Hexagon"):
        n = {"Square": 4, "Triangle": 3, "Hexagon": 6}[shape]
        a = np.arange(n) * 2 * np.pi / n - np.pi / 2 + (np.pi / 4 if n == 4 else 0)
        r = {"Square": 0.9, "Triangle": 1.05, "Hexagon": 0.95}[shape]
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if shape == "Star":
        a = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.1, 0.48)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if shape == "Cross":
        w, length = 0.34, 1.0
        return np.array(
            [
                (-w, -length),
                (w, -length),
                (w, -w),
                (length, -w),
                (length, w),
                (w, w),
                (w, length),
                (-w, length),
                (-w, w),
                (-length, w),
                (-length, -w),
                (-w, -w),
            ]
        )
    if shape == "Diamond":
        return np.array([(0, -1.1), (0.65, 0), (0, 1.1), (-0.65, 0)])
    if shape == "Arrow":
        return np.array([(1.0, 0), (0.1, -0.8), (0.1, -0.35), (-0.9, -0.35), (-0.9, 0.35), (0.1, 0.35), (0.1, 0.8)])
    raise ValueError(shape)


_POLYGONS = {s: _unit_polygon(s) for s in SHAPES}


def _object_alpha(shape: str, fill: str, size: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1], [size, size] float32."""
    from PIL import Image, ImageDraw

    k = SUPERSAMPLE
    ring = max(1, int(round(0.3 * radius * k)))
    poly = _POLYGONS[shape]
    if poly is not None:
        c, s = math.cos(angle), math.sin(angle)
        x = (poly[:, 0] * c - poly[:, 1] * s) * radius + cx
        y = (poly[:, 0] * s + poly[:, 1] * c) * radius + cy
        pts = [(float(a) * k, float(b) * k) for a, b in zip(x, y, strict=True)]
    box = [(cx - radius) * k, (cy - radius) * k, (cx + radius) * k, (cy + radius) * k]

    def draw(outline: bool) -> np.ndarray:
        img = Image.new("L", (size * k, size * k), 0)
        pen = ImageDraw.Draw(img)
        if poly is None:
            pen.ellipse(box, outline=255, width=ring) if outline else pen.ellipse(box, fill=255)
        else:
            pen.polygon(pts, outline=255, width=ring) if outline else pen.polygon(pts, fill=255)
        return np.asarray(img.reduce(k), dtype=np.float32) / 255.0

    if fill != "Striped":
        return draw(outline=fill == "Hollow")
    # striped: a thin outline plus stripes across the body, turning with the object
    ring = max(1, ring // 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    stripes = np.clip(0.5 + 1.5 * np.sin(u * (2 * np.pi / max(4.0, 0.7 * radius))), 0, 1)
    return np.maximum(draw(outline=True), draw(outline=False) * stripes)


def _background_pool(seed: int, count: int, size: int) -> np.ndarray:
    """``count`` smooth, periodic (tileable) colour textures [count, size, size, 3] float32 in 0..255."""
    rng = np.random.default_rng([seed, 2, size])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((count, size, size, 3), np.float32)
    for i in range(count):
        h, s, v = (i + rng.uniform(0.1, 0.9)) / count, rng.uniform(0.15, 0.45), rng.uniform(0.3, 0.65)
        base = np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255
        tex = np.zeros((size, size, 3), np.float32)
        for _ in range(6):
            kx, ky = rng.integers(-3, 4, size=2)
            if kx == 0 and ky == 0:
                kx = 1
            wave = np.sin(2 * np.pi * (kx * xx + ky * yy) + rng.uniform(0, 2 * np.pi))
            tex += wave[..., None] * (rng.normal(0, 1, 3).astype(np.float32) * 6 + rng.normal(0, 9))
        out[i] = base + tex
    return np.clip(out, 0, 255)


_BG_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _backgrounds(seed: int, count: int, size: int) -> np.ndarray:
    key = (seed, count, size)
    if key not in _BG_CACHE:
        _BG_CACHE[key] = np.tile(_background_pool(seed, count, size), (1, 2, 2, 1))  # [count, 2s, 2s, 3]
    return _BG_CACHE[key]


# Object colours: one palette shared by all classes (vivid hues; backgrounds are muted).
PALETTE_HUES = (0.0, 0.08, 0.15, 0.28, 0.38, 0.5, 0.6, 0.72, 0.82, 0.92)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _triangle(x: np.ndarray) -> np.ndarray:
    """Triangle wave in [-1, 1] with period 1."""
    return 4 * np.abs(x - np.floor(x + 0.5)) - 1


DAMPING = (1.0, 2.0)  # periodic motions decay as exp(-k t) over the video, k uniform in this range
TILT = 0.35  # radians: objects stand upright within +-20 degrees
SHADOW = (0.1, 0.03, 0.6)  # drop shadow offset down, right (fractions of the frame) and opacity: light from above


def _trajectory(motion: str, t: np.ndarray, rng: np.random.Generator, size: int):
    """Per-frame (dx, dy, angle offset, scale) for a class motion; speed, phase, direction, damping are nuisances.

    Irreversible (v2): periodic motions lose energy as exp(-k t); bounces and hops keep their floor (the
    apex decays), spins slow down. Approaching/Receding are monotonic already.
    """
    n = len(t)
    zero, one = np.zeros(n), np.ones(n)
    amp = rng.uniform(0.1, 0.17) * size
    phase = rng.uniform(0, 2 * np.pi)
    sign = rng.choice([-1.0, 1.0])
    drift = rng.uniform(-0.05, 0.05, size=2) * size  # slow shared drift over the whole video
    k = rng.uniform(*DAMPING)
    decay = np.exp(-k * t)
    dx, dy, rot, scale = drift[0] * (t - 0.5), drift[1] * (t - 0.5), zero, one
    if motion == "Bouncing":  # floor at +amp (y points down), the apex decays
        c = rng.uniform(1.5, 2.5)
        dy = dy + amp * (1 - 2 * decay * np.abs(np.sin(np.pi * c * t + phase)))
    elif motion == "Sliding":
        c = rng.uniform(0.8, 1.5)
        dx = dx + amp * decay * np.sin(2 * np.pi * c * t + phase)
    elif motion == "Orbiting":  # clockwise on screen, spiralling inwards
        c = rng.uniform(0.7, 1.3)
        th = 2 * np.pi * c * t + phase
        dx, dy = amp * decay * np.cos(th), amp * decay * np.sin(th)
    elif motion in ("Spinning", "Whirling"):  # clockwise / counter-clockwise, slowing down: w (1 - e^-kt) / k
        w = 2 * np.pi * rng.uniform(0.6, 1.2) * (1 if motion == "Spinning" else -1)
        rot = w * (1 - decay) / k
    elif motion == "Pulsing":
        c = rng.uniform(1.5, 2.5)
        scale = 0.95 + 0.25 * decay * np.sin(2 * np.pi * c * t + phase)
    elif motion == "Zigzagging":
        c = rng.uniform(2.0, 3.0)
        dx = sign * amp * (2 * t - 1)
        dy = 0.8 * amp * decay * _triangle(c * t + phase / (2 * np.pi))
    elif motion == "Approaching":
        scale = 0.65 + 0.55 * _smoothstep((t - rng.uniform(0, 0.15)) / rng.uniform(0.7, 0.95))
    elif motion == "Receding":
        scale = 1.2 - 0.55 * _smoothstep((t - rng.uniform(0, 0.15)) / rng.uniform(0.7, 0.95))
    elif motion == "Looping":  # figure of eight, shrinking
        c = rng.uniform(0.7, 1.2)
        dx = amp * decay * np.sin(2 * np.pi * c * t + phase)
        dy = 0.6 * amp * decay * np.sin(4 * np.pi * c * t + 2 * phase)
    elif motion == "Rocking":
        c = rng.uniform(1.5, 2.5)
        rot = 0.6 * decay * np.sin(2 * np.pi * c * t + phase)
    elif motion == "Hopping":  # hops (getting lower) with rests on the floor while travelling sideways
        c = rng.uniform(2.0, 3.0)
        dx = sign * amp * (2 * t - 1)
        dy = amp * (0.6 - 1.6 * decay * np.maximum(0.0, np.sin(2 * np.pi * c * t + phase)))
    else:
        raise ValueError(motion)
    return dx, dy, rot, scale


def _blur3(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur over the H, W axes of an [N, H, W, C] array (edges replicated)."""
    p = np.pad(img, ((0, 0), (1, 1), (0, 0), (0, 0)), mode="edge")
    img = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) * 0.25
    p = np.pad(img, ((0, 0), (0, 0), (1, 1), (0, 0)), mode="edge")
    return (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) * 0.25


def render_video(spec: ClassSpec, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """One video as uint8 [frames, size, size, 3] RGB."""
    size, n = cfg.size, cfg.frames
    t = np.linspace(0.0, 1.0, n)
    bgs = _backgrounds(cfg.seed, cfg.backgrounds, size)

    # --- object: class = shape x fill x motion; everything else from shared pools
    radius = rng.uniform(0.18, 0.25) * size  # visible extent ~30-45% of the frame
    centre = size / 2 + rng.uniform(-0.05, 0.05, size=2) * size
    angle0 = rng.uniform(-TILT, TILT)  # upright
    dx, dy, rot, scale = _trajectory(spec.motion, t, rng, size)
    hue0 = PALETTE_HUES[rng.integers(len(PALETTE_HUES))] + rng.uniform(-0.02, 0.02)
    hue_drift = rng.uniform(-0.15, 0.15)  # the colour changes within the video
    sat, val = rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.0)

    # --- background: cross-fade between two pool textures, scrolling; lighting, camera, blur, noise
    a, b = rng.choice(cfg.backgrounds, size=2, replace=False)
    fade_mid, fade_width = rng.uniform(0.25, 0.75), rng.uniform(0.2, 0.6)
    fade = _smoothstep((t - fade_mid) / fade_width + 0.5)
    scroll0 = rng.uniform(0, size, size=2)
    scroll_v = rng.uniform(-1.0, 1.0, size=2)  # px per frame
    flicker = 1.0 + rng.uniform(0, 0.12) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 2 * np.pi))
    flicker = flicker + rng.normal(0, 0.02, n)
    jitter = rng.integers(0, 3)
    shake = rng.integers(-jitter, jitter + 1, size=(n, 2)) if jitter else np.zeros((n, 2), int)
    blur = rng.random() < 0.5
    noise_sigma = rng.uniform(1.0, 6.0)

    # vectorised over frames: background crops, composite, lighting, blur, noise
    shift = (scroll0 + scroll_v * np.arange(n)[:, None] + shake).astype(int) % size  # [n, (x, y)]
    tex_a, tex_b = np.empty((2, n, size, size, 3), np.float32)
    for i, (sx, sy) in enumerate(shift):  # textures are tiled 2x2: a wrapped shift is a plain crop
        tex_a[i] = bgs[a, size - sy : 2 * size - sy, size - sx : 2 * size - sx]
        tex_b[i] = bgs[b, size - sy : 2 * size - sy, size - sx : 2 * size - sx]
    w = fade.astype(np.float32)[:, None, None, None]
    bg = tex_a * (1 - w) + tex_b * w
    alpha = np.empty((n, size, size, 1), np.float32)
    for i in range(n):
        cx, cy = centre[0] + dx[i] + shake[i, 0], centre[1] + dy[i] + shake[i, 1]
        alpha[i, ..., 0] = _object_alpha(spec.shape, spec.fill, size, cx, cy, radius * scale[i], angle0 + rot[i])
    # light from above: a soft drop shadow of the object, below and slightly right of it
    oy, ox = int(round(SHADOW[0] * size)), int(round(SHADOW[1] * size))
    shadow = np.zeros_like(alpha)
    shadow[:, oy:, ox:] = alpha[:, : size - oy, : size - ox]
    bg = bg * (1 - np.float32(SHADOW[2]) * _blur3(shadow))
    colour = np.array([colorsys.hsv_to_rgb((hue0 + hue_drift * ti) % 1.0, sat, val) for ti in t], np.float32) * 255
    frames = (bg * (1 - alpha) + colour[:, None, None, :] * alpha) * flicker.astype(np.float32)[:, None, None, None]
    if blur:
        frames = _blur3(frames)
    noise = np.frombuffer(rng.bytes(frames.size), np.uint8).reshape(frames.shape)  # uniform, cheap
    frames += (noise.astype(np.float32) - 127.5) * np.float32(noise_sigma / 73.9)  # std = noise_sigma
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8)


# ====================================================================== encoding
def encode_avi(path: Path, frames: np.ndarray, fps: int, gop_size: int = 8, qscale: int = 2) -> None:
    """uint8 [T, H, W, 3] RGB -> mpeg4 (part 2) in .avi, yuv420p, fixed quantiser, bit-exact output."""
    import av

    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="avi", container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        ctx = stream.codec_context
        ctx.gop_size = gop_size
        ctx.max_b_frames = 0
        ctx.thread_count = 1
        ctx.qscale = True
        ctx.global_quality = qscale * 118  # FF_QP2LAMBDA
        ctx.flags |= av.codec.context.Flags.bitexact
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    os.replace(tmp, path)


# ====================================================================== generation
@dataclass(frozen=True)
class _Job:
    relpath: str
    spec: ClassSpec
    seed_key: tuple[int, ...]


def _video_seed(cfg: SynthConfig, kind: int, spec: ClassSpec, a: int, b: int) -> tuple[int, ...]:
    return (cfg.seed, kind, spec.order, a, b)


def _plan(cfg: SynthConfig) -> tuple[list[ClassSpec], list[_Job], list[_Job], list[_Job]]:
    specs = class_specs(cfg.classes)
    train, test, pool = [], [], []
    for spec in specs:
        for group, clip in cfg.group_clips():
            rel = f"{spec.name}/v_{spec.name}_g{group:02d}_c{clip:02d}.avi"
            job = _Job(rel, spec, _video_seed(cfg, 0, spec, group, clip))
            (test if cfg.is_test_group(group) else train).append(job)
    for i in range(cfg.pool_videos):  # round-robin over classes: balanced, labels unused
        spec = specs[i % len(specs)]
        k = i // len(specs)
        pool.append(_Job(f"{POOL_DIR}/{spec.name}/k_{spec.name}_{k:04d}.avi", spec, _video_seed(cfg, 1, spec, k, 0)))
    return specs, train, test, pool


def _make_one(args: tuple[str, _Job, SynthConfig]) -> int:
    root, job, cfg = args
    rng = np.random.default_rng(list(job.seed_key))
    frames = render_video(job.spec, cfg, rng)
    path = Path(root) / job.relpath
    encode_avi(path, frames, cfg.fps, cfg.gop_size, cfg.qscale)
    return path.stat().st_size


def _config_record(cfg: SynthConfig) -> dict[str, Any]:
    return {"version": GENERATOR_VERSION, **dataclasses.asdict(cfg)}


def _existing_summary(out: Path, cfg: SynthConfig) -> dict | None:
    """The stored summary when it was made from exactly this config and its files are all there."""
    path = out / SUMMARY_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not stored.get("complete") or stored.get("config") != _config_record(cfg):
        return None
    _, train, test, pool = _plan(cfg)
    if not all((out / j.relpath).is_file() for j in train + test + pool):
        return None
    return stored


def _clear_previous(out: Path) -> None:
    """Remove what an earlier ``generate`` wrote here (named by its synth.json)."""
    try:
        stored = json.loads((out / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return
    names = [str(c) for c in stored.get("classes", [])] + [LIST_DIR, POOL_DIR]
    for name in names:
        if name and "/" not in name and name not in (".", ".."):
            shutil.rmtree(out / name, ignore_errors=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)


def generate(
    out: Path, cfg: SynthConfig | None = None, workers: int = 2, progress: bool = True, force: bool = False
) -> dict:
    """Write the dataset to ``out``; returns a summary (counts, seconds, bytes, skipped).

    Returns quickly (``skipped: True``) when ``out/synth.json`` records the same
    config and generator version and all files exist, unless ``force``.
    """
    cfg = cfg or SynthConfig()
    cfg.validate()
    out = Path(out)
    if not force:
        stored = _existing_summary(out, cfg)
        if stored is not None:
            return {**stored["counts"], "root": str(out), "seconds": 0.0, "bytes": stored["bytes"], "skipped": True}
    if out.exists() and any(out.iterdir()) and not (out / SUMMARY_FILE).exists() and not force:
        raise UserError(
            f"{out} is not empty and was not written by `vssl synth`; choose another directory, or pass --force to write into it anyway (it deletes nothing of yours)"
        )
    _clear_previous(out)

    start = time.perf_counter()
    specs, train, test, pool = _plan(cfg)
    jobs = train + test + pool
    classes = sorted(s.name for s in specs)  # classInd order = label order (alphabetical, like UCF101)
    out.mkdir(parents=True, exist_ok=True)
    # written first (incomplete) so that an interrupted run is recognised, cleared and redone next time
    summary: dict[str, Any] = {"complete": False, "config": _config_record(cfg), "classes": classes}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    for d in {(out / j.relpath).parent for j in jobs}:
        d.mkdir(parents=True, exist_ok=True)

    tasks = [(str(out), j, cfg) for j in jobs]
    total_bytes = 0
    bar = _progress(len(tasks), progress)
    if workers <= 1 or len(tasks) < 8:
        for task in tasks:
            total_bytes += _make_one(task)
            bar(1)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from benchmark.data.pool import ignore_sigint

        # an executor, not multiprocessing.Pool: a worker killed (out of memory, kill -9) raises BrokenProcessPool
        # here instead of leaving its videos pending forever; Ctrl-C: the parent's alone
        with ProcessPoolExecutor(workers, initializer=ignore_sigint) as pool_:
            for future in as_completed([pool_.submit(_make_one, task) for task in tasks]):
                total_bytes += future.result()
                bar(1)
    bar(None)

    lists = out / LIST_DIR
    lists.mkdir(parents=True, exist_ok=True)
    label = {name: i for i, name in enumerate(classes)}
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(classes)))
    (lists / "trainlist01.txt").write_text(
        "".join(f"{j.relpath} {label[j.spec.name] + 1}\n" for j in sorted(train, key=lambda j: j.relpath))
    )
    (lists / "testlist01.txt").write_text("".join(f"{j.relpath}\n" for j in sorted(test, key=lambda j: j.relpath)))

    seconds = time.perf_counter() - start
    groups, test_groups = cfg.effective_groups
    counts = {"classes": len(specs), "train": len(train), "test": len(test), "pool": len(pool), "videos": len(jobs)}
    summary.update(
        {
            "complete": True,
            "class_specs": {s.name: {"shape": s.shape, "fill": s.fill, "motion": s.motion} for s in specs},
            "layout": {"groups": groups, "test_groups": test_groups, "test_split": f"groups 1-{test_groups}"},
            "counts": counts,
            "bytes": total_bytes,
            "seconds": round(seconds, 2),
        }
    )
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return {**counts, "root": str(out), "seconds": seconds, "bytes": total_bytes, "skipped": False}


def _progress(total: int, enabled: bool) -> Callable[[int | None], None]:
    if not enabled:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="video", desc="synth", leave=False)

    def update(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return update
