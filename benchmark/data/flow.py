"""Optical flow for the objectives that need motion (CMC's second view, MAS's motion statistics), and their samplers.

Flow is computed **on the fly, in the loader's workers**, with OpenCV (``opencv-python-headless``): dense
Farneback flow (default) or DIS (``algorithm: dis``, faster above ~100 px). TV-L1, the papers' flow, is only in
the contrib build (``cv2.optflow``) and ~100x slower; it is not offered. Frame differences are a separate,
explicit option (``algorithm: difference``), never a silent fallback.

Why on the fly rather than pre-computed files beside the videos (``vssl prepare --flow`` is not implemented):
the samplers crop, resize and flip the frames before the flow is computed, so the flow always matches the pixels
the network sees, with no sign or scale fix-ups; and at the resolutions this harness pre-trains at it costs about
as much as decoding the clip it is computed from (``vssl bench flow`` measures both per clip;
results/perf/flow.md). A 16-frame 112-px clip (15 flow fields) is the expensive case: there DIS is several times
cheaper than Farneback.

Conventions
    ``optical_flow(frames)``: uint8 ``[T, 3, H, W]`` RGB -> float32 ``[T-1, 2, H, W]``, field k from frame k to
    frame k+1, channel 0 = u (horizontal, + right), 1 = v (vertical, + down), in pixels, such that
    ``frame_k(y, x) ~ frame_{k+1}(y + v, x + u)``. Frames are turned grey with OpenCV's RGB2GRAY (ITU-R 601).
    ``encode_flow(flow, bound, "uv")``: each component divided by ``bound`` pixels and clipped to [-1, 1]
    (the two-stream convention of clipping at +-20 px on ~256-px frames, scaled to the frame: bound ~ R / 13);
    ``"uvm"`` adds the magnitude as a third channel, 2 * min(|f| / bound, 1) - 1, so a 3-channel encoder
    reads it unchanged. ``bound`` defaults to 20 * R / 256 px (2.5 px at 32 px, 14 px at 224 px).

Samplers registered here (the registry loads this module by name: ``registry.IN_TREE``):

================  ================================================================  ==========
name              sample                                                            used by
================  ================================================================  ==========
``frame_flow``    frame [3,R,R] (RGB at t), view2 [C2,R,R] (flow, frame or difference)  CMC
``stats_clip``    clip [T,3,R,R], motion_label [M], app_label [A], static (0/1)     MAS
================  ================================================================  ==========

OpenCV runs single-threaded here (``cv2.setNumThreads(1)``): the loader's workers are the parallelism.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from benchmark.data.samplers import Sampler, loop_index, random_start
from benchmark.data.statistics import PATTERNS, clip_statistics
from benchmark.data.transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig, RandomGray, per_frame
from benchmark.registry import register_sampler

FLOW_ALGORITHMS = ("farneback", "dis")
MOTION_SOURCES = ("flow", "difference")
FLOW_ENCODINGS = ("uv", "uvm")


@functools.cache
def _cv2():
    """OpenCV, imported on first use (every ``vssl`` command imports this module) and kept single-threaded."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


@dataclass(frozen=True)
class FlowConfig:
    """Dense optical flow: the algorithm and Farneback's parameters (OpenCV's names; tutorial values in brackets).

    ``levels`` [3] pyramid levels, each ``pyr_scale`` [0.5] the size of the one below; ``winsize`` [15] the
    averaging window (larger: smoother, blurrier motion boundaries; 9 suits 32-64 px frames); ``iterations`` [3]
    per level; ``poly_n`` [5] / ``poly_sigma`` [1.1] the polynomial expansion's neighbourhood. DIS uses OpenCV's
    ULTRAFAST preset and ignores the rest."""

    algorithm: str = "farneback"
    levels: int = 3
    winsize: int = 9
    iterations: int = 3
    pyr_scale: float = 0.5
    poly_n: int = 5
    poly_sigma: float = 1.1

    def __post_init__(self) -> None:
        if self.algorithm not in FLOW_ALGORITHMS:
            raise ValueError(f"flow algorithm {self.algorithm!r}: one of {', '.join(FLOW_ALGORITHMS)}")
        if self.levels < 1 or self.winsize < 3 or self.iterations < 1 or not 0 < self.pyr_scale < 1:
            raise ValueError(f"bad Farneback parameters: {self}")


def to_gray(frames: torch.Tensor) -> np.ndarray:
    """uint8 RGB [T, 3, H, W] -> uint8 grey [T, H, W] (OpenCV's RGB2GRAY)."""
    cv2 = _cv2()
    rgb = np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy())
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])


def flow_pair(prev: np.ndarray, nxt: np.ndarray, cfg: FlowConfig = FlowConfig()) -> np.ndarray:
    """Dense flow between two grey uint8 frames [H, W] -> float32 [H, W, 2] = (u, v) in pixels."""
    cv2 = _cv2()
    if cfg.algorithm == "dis":
        return _dis()(prev, nxt, None)
    return cv2.calcOpticalFlowFarneback(prev, nxt, None, cfg.pyr_scale, cfg.levels, cfg.winsize, cfg.iterations,
                                        cfg.poly_n, cfg.poly_sigma, 0)  # fmt: skip


@functools.cache
def _dis_object():
    cv2 = _cv2()
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


def _dis():
    return _dis_object().calc


def optical_flow(frames: torch.Tensor, cfg: FlowConfig = FlowConfig()) -> torch.Tensor:
    """uint8 RGB [T, 3, H, W] -> float32 [T-1, 2, H, W]: field k from frame k to frame k+1 (u, v in pixels)."""
    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    gray = to_gray(frames)
    fields = [flow_pair(gray[k], gray[k + 1], cfg) for k in range(len(gray) - 1)]
    return torch.from_numpy(np.stack(fields)).permute(0, 3, 1, 2).contiguous()


def frame_difference(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [T, 3, H, W] -> float32 [T-1, 3, H, W]: (frame k+1 - frame k) / 255, in [-1, 1]."""
    x = frames.float()
    return (x[1:] - x[:-1]) / 255.0


def encode_flow(flow: torch.Tensor, bound: float, encoding: str = "uv") -> torch.Tensor:
    """[..., 2, H, W] flow in pixels -> network input: "uv" [..., 2, H, W] = clip(flow / bound, -1, 1);
    "uvm" [..., 3, H, W] adds 2 * min(|flow| / bound, 1) - 1."""
    uv = (flow / bound).clamp(-1, 1)
    if encoding == "uv":
        return uv
    if encoding == "uvm":
        magnitude = flow.norm(dim=-3, keepdim=True) / bound
        return torch.cat([uv, 2 * magnitude.clamp(max=1) - 1], dim=-3)
    raise ValueError(f"flow encoding {encoding!r}: one of {', '.join(FLOW_ENCODINGS)}")


def default_bound(resolution: int) -> float:
    """The two-stream clipping bound, 20 px on 256-px frames, scaled to ``resolution``."""
    return 20.0 * resolution / 256


def spatial_transform(resolution: int, aug: AugmentConfig, train: bool) -> v2.Compose:
    """Crop (+ flip) on uint8 frames, shared by a whole sample: flow is computed after it, on these pixels."""
    if not train:
        return v2.Compose([v2.Resize(resolution, antialias=True), v2.CenterCrop(resolution)])
    ops: list = [v2.RandomResizedCrop(resolution, scale=aug.crop_scale, antialias=True)]
    if aug.flip:
        ops.append(v2.RandomHorizontalFlip())
    return v2.Compose(ops)


def colour_transform(aug: AugmentConfig, train: bool) -> v2.Compose:
    """Colour jitter and random gray (training only) on uint8 frames, then float32 ImageNet normalisation."""
    ops: list = []
    if train and (aug.jitter > 0 or aug.hue > 0):
        ops.append(v2.RandomApply([v2.ColorJitter(aug.jitter, aug.jitter, aug.jitter, aug.hue)], p=aug.jitter_p))
    if train and aug.gray_p > 0:
        ops.append(RandomGray(aug.gray_p))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(ops)


# --------------------------------------------------------------------------- CMC: a frame and a second view of it
VIEWS = ("flow", "frame", "difference")


def view2_channels(view2: str, flow_stack: int, encoding: str) -> int:
    """Input channels of the second view: flow 2L ("uv") or 3 ("uvm", L = 1); a frame or an RGB difference 3."""
    if view2 == "flow":
        return 2 * flow_stack if encoding == "uv" else 3
    return 3


def motion_offsets(view2: str, flow_stack: int, flow_stride: int) -> tuple[int, ...]:
    """The frames (relative to the anchor frame t) a ``flow`` or ``difference`` view is computed from."""
    if view2 == "flow":
        return tuple(range(0, flow_stack * flow_stride + 1, flow_stride))
    if view2 == "difference":
        return (0, flow_stride)
    raise ValueError(f"view2 {view2!r} is not computed from frames (flow or difference)")


def motion_view(frames: torch.Tensor, view2: str, bound: float, encoding: str, flow: FlowConfig) -> torch.Tensor:
    """uint8 RGB [K, 3, H, W] at :func:`motion_offsets` -> the second view CMC's encoder reads: encoded flow
    [2L or 3, H, W] or the RGB difference [3, H, W]. The sampler (training) and CMC's concatenated evaluation
    both compute it here, so the second encoder sees the same kind of input in both."""
    if view2 == "flow":
        return encode_flow(optical_flow(frames, flow), bound, encoding).flatten(0, 1)
    if view2 == "difference":
        return frame_difference(frames)[0]
    raise ValueError(f"view2 {view2!r} is not computed from frames (flow or difference)")


@register_sampler("frame_flow")
class FrameFlow(Sampler):
    """CMC for video: the RGB frame at t and a second view of the same moment -> {"frame": [3,R,R], "view2": [C2,R,R]}.

    ``view2``: ``flow`` -- ``flow_stack`` (L) flow fields t -> t+s -> ... -> t+Ls (s = ``flow_stride``), computed
    on the cropped frames and encoded by :func:`encode_flow` (``uv``: [2L, R, R], u and v of each field in turn;
    ``uvm``: [3, R, R], L = 1); ``frame`` -- the frame at t+d, d uniform in [offset_min, offset_max] (CMC's
    "ventral" pair), colour-augmented independently of the anchor; ``difference`` -- the RGB difference of frames
    t+s and t, (b - a) / 255 (explicit option, not flow). One crop and flip is shared by every frame of a sample
    (the two views show the same place); colour jitter and gray apply to RGB frames only. ``shared_crop=False``
    (``view2: frame`` only: a motion view must stay aligned with its frames) draws the crop and flip of each of
    the two frames independently, as TCE's frame pairs do.
    """

    def __init__(
        self,
        view2: str = "flow",
        flow_stack: int = 1,
        flow_stride: int = 1,
        offset_min: int = 1,
        offset_max: int = 4,
        bound: float | None = None,
        encoding: str = "uv",
        flow: FlowConfig = FlowConfig(),
        aug: AugmentConfig = AugmentConfig(),
        shared_crop: bool = True,
        **kw: Any,
    ):
        super().__init__(**kw)
        if view2 not in VIEWS:
            raise ValueError(f"view2 {view2!r}: one of {', '.join(VIEWS)}")
        if encoding not in FLOW_ENCODINGS or (encoding == "uvm" and flow_stack != 1):
            raise ValueError(f"encoding {encoding!r} with flow_stack {flow_stack}: 'uv', or 'uvm' with one field")
        bound = default_bound(self.resolution) if bound is None else bound
        if flow_stack < 1 or flow_stride < 1 or offset_min < 1 or offset_max < offset_min or bound <= 0:
            raise ValueError("need flow_stack, flow_stride >= 1, 1 <= offset_min <= offset_max, bound > 0")
        if not shared_crop and view2 != "frame":
            raise ValueError(
                f"shared_crop=False needs view2 'frame' (a {view2} view must stay aligned with its frames)"
            )
        self.shared_crop = shared_crop
        self.view2, self.flow_stack, self.flow_stride = view2, flow_stack, flow_stride
        self.offset_min, self.offset_max, self.bound, self.encoding, self.flow = (
            offset_min, offset_max, bound, encoding, flow)  # fmt: skip
        span = {"flow": flow_stack * flow_stride, "frame": offset_max, "difference": flow_stride}[view2]
        self.frames_needed = span + 1
        self.spatial = spatial_transform(self.resolution, aug, self.train)
        self.colour = colour_transform(aug, self.train)

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        if self.view2 == "frame":
            span = (0, int(rng.integers(self.offset_min, self.offset_max + 1)))
        else:
            span = motion_offsets(self.view2, self.flow_stack, self.flow_stride)
        t = random_start(rng, n, span[-1] + 1)
        frames = video.get_frames(loop_index([t + k for k in span], n))
        frames = self.spatial(frames) if self.shared_crop else per_frame(self.spatial, frames)  # uint8
        if self.view2 == "frame":
            rgb = per_frame(self.colour, frames)  # independent colour per view
            return {"frame": rgb[0], "view2": rgb[1]}
        view2 = motion_view(frames, self.view2, self.bound, self.encoding, self.flow)
        return {"frame": self.colour(frames[:1])[0], "view2": view2}


# --------------------------------------------------------------------------- MAS: a clip and its statistics
@register_sampler("stats_clip")
class StatsClip(Sampler):
    """Motion and appearance statistics (Wang et al., CVPR 2019): a clip and the statistics MAS regresses
    -> {"clip": [T,3,R,R], "motion_label": [M] float32, "app_label": [A] float32, "static": 0/1 float32}.

    ``clip_len`` frames at ``stride``, one crop + flip for the whole clip and NO colour augmentation (it would
    change the appearance labels); the labels are computed from exactly the uint8 pixels the network sees
    (:func:`benchmark.data.statistics.clip_statistics`: per partition pattern, where the largest motion is and
    which way it points, where colour changes most and least and their dominant colours). ``motion_source``:
    ``flow`` (u and v: 4 labels per pattern + 2) or ``difference`` (the grey frame difference, an explicit
    option: 2 labels per pattern + 1). ``static`` is 1 when the clip has no motion at all (labels then default to
    the first region / bin)."""

    def __init__(
        self,
        clip_len: int = 8,
        stride: int = 1,
        patterns: tuple[str, ...] = PATTERNS,
        motion: bool = True,
        appearance: bool = True,
        motion_source: str = "flow",
        dominant_colour: str = "mode",
        flow: FlowConfig = FlowConfig(),
        aug: AugmentConfig = AugmentConfig(jitter=0.0, hue=0.0, gray_p=0.0),
        **kw: Any,
    ):
        super().__init__(**kw)
        if clip_len < 2 or stride < 1:
            raise ValueError(f"stats_clip needs clip_len >= 2 and stride >= 1, got {clip_len}, {stride}")
        if motion_source not in MOTION_SOURCES:
            raise ValueError(f"motion_source {motion_source!r}: one of {', '.join(MOTION_SOURCES)}")
        self.clip_len, self.stride, self.patterns = clip_len, stride, tuple(patterns)
        self.motion, self.appearance, self.motion_source, self.dominant_colour = (
            motion, appearance, motion_source, dominant_colour)  # fmt: skip
        self.flow = flow
        self.frames_needed = (clip_len - 1) * stride + 1
        self.spatial = spatial_transform(self.resolution, aug, self.train)
        self.normalise = colour_transform(aug, train=False)  # no colour change: only ToDtype + Normalize

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        start = random_start(rng, n, self.frames_needed)
        frames = self.spatial(video.get_frames(loop_index(range(start, start + self.frames_needed, self.stride), n)))
        motion_field = None
        if self.motion:
            if self.motion_source == "flow":
                motion_field = optical_flow(frames, self.flow).numpy()  # [T-1, 2, R, R]
            else:
                gray = to_gray(frames).astype(np.float32)
                motion_field = (gray[1:] - gray[:-1])[:, None]  # [T-1, 1, R, R]
        rgb = frames.permute(0, 2, 3, 1).numpy() if self.appearance else None  # [T, R, R, 3] uint8
        stats = clip_statistics(motion_field, rgb, self.patterns, self.dominant_colour)
        return {
            "clip": self.normalise(frames),
            "motion_label": torch.from_numpy(stats.motion),
            "app_label": torch.from_numpy(stats.appearance),
            "static": torch.tensor(float(stats.static)),
        }
