"""Samplers: what a method (or an evaluation protocol) draws from one video.

A sampler is a registered class built as ``Sampler(resolution=..., train=...,
**options)``; calling it on an open video and a numpy Generator returns a dict
of tensors (one training sample). ``frames_needed`` says how many distinct
frames it wants; a shorter video is loop-padded or skipped (DataConfig.short_video).
Plugins register their own with ``@register_sampler("name")``.

    >>> s = SAMPLERS.get("frame_pair")(resolution=64, offset_min=1, offset_max=4)
    >>> sample = s(video, np.random.default_rng(0))   # {"anchor": [3,64,64], "positive": [3,64,64]}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmark.data.transforms import AugmentConfig, eval_transform, per_frame, train_transform
from benchmark.registry import SAMPLERS, register_sampler


class ShortVideo(Exception):
    """The video has fewer frames than the sampler needs and short_video='skip'."""


class Sampler:
    frames_needed: int = 1

    def __init__(self, resolution: int = 64, train: bool = True, short_video: str = "loop", **options: Any):
        if options:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(options)}")
        self.resolution = resolution
        self.train = train
        self.short_video = short_video
        self.transform = train_transform(resolution) if train else eval_transform(resolution)

    def check_length(self, num_frames: int) -> None:
        if num_frames < self.frames_needed and self.short_video == "skip":
            raise ShortVideo(f"{num_frames} frames < {self.frames_needed} needed")

    def __call__(self, video, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def loop_index(indices, num_frames: int) -> list[int]:
    """Wrap indices into [0, num_frames): the documented loop-padding of short videos."""
    return [int(i) % max(1, num_frames) for i in indices]


def evenly_spaced(num_frames: int, count: int) -> list[int]:
    """``count`` frame indices at the centres of equal segments (TSN test sampling)."""
    edges = np.linspace(0, num_frames, count + 1)
    return [min(num_frames - 1, int((a + b) / 2)) for a, b in zip(edges[:-1], edges[1:])]


@register_sampler("frame_pair")
class FramePair(Sampler):
    """TCE: anchor frame t and positive t+d (t-d near the end), d uniform in [offset_min, offset_max];
    independent augmentation per frame."""

    def __init__(self, offset_min: int = 1, offset_max: int = 4, aug: AugmentConfig = AugmentConfig(), **kw: Any):
        super().__init__(**kw)
        if offset_min < 0 or offset_max < offset_min:
            raise ValueError(f"bad offset window [{offset_min}, {offset_max}]")
        self.offset_min, self.offset_max = offset_min, offset_max
        self.frames_needed = offset_max + 1
        if self.train:
            self.transform = train_transform(self.resolution, aug)

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        d = int(rng.integers(self.offset_min, self.offset_max + 1))
        t = int(rng.integers(0, n))
        p = t + d if t + d < n else t - d
        idx = loop_index([t, p], n)
        frames = video.get_frames(idx)
        a, b = per_frame(self.transform, frames)
        return {"anchor": a, "positive": b, "offset": torch.tensor(d)}


@register_sampler("clip")
class Clip(Sampler):
    """A clip of ``clip_len`` frames at ``stride``, one augmentation shared by all frames -> {"clip": [T,C,H,W]}."""

    def __init__(self, clip_len: int = 8, stride: int = 2, **kw: Any):
        super().__init__(**kw)
        self.clip_len, self.stride = clip_len, stride
        self.frames_needed = (clip_len - 1) * stride + 1

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        span = self.frames_needed
        start = int(rng.integers(0, max(1, n - span + 1)))
        idx = loop_index(range(start, start + span, self.stride), n)
        return {"clip": self.transform(video.get_frames(idx))}


@register_sampler("frames")
class EvenFrames(Sampler):
    """Evaluation (2D): ``count`` evenly spaced frames -> {"frames": [F,C,H,W]}."""

    def __init__(self, count: int = 8, **kw: Any):
        kw.setdefault("train", False)
        super().__init__(**kw)
        self.count = count

    def __call__(self, video, rng):
        idx = evenly_spaced(video.num_frames, self.count)
        return {"frames": self.transform(video.get_frames(idx))}


@register_sampler("segments")
class Segments(Sampler):
    """TSN training (2D fine-tuning): one random frame from each of ``count`` equal segments -> {"frames": [S,C,H,W]}."""

    def __init__(self, count: int = 3, **kw: Any):
        super().__init__(**kw)
        self.count = count

    def __call__(self, video, rng):
        n = video.num_frames
        edges = np.linspace(0, n, self.count + 1)
        idx = [min(n - 1, int(rng.integers(int(a), max(int(a) + 1, int(b))))) for a, b in zip(edges[:-1], edges[1:])]
        return {"frames": self.transform(video.get_frames(idx))}  # one augmentation for all segments


@register_sampler("clips")
class UniformClips(Sampler):
    """Evaluation (3D): ``count`` uniformly spaced clips of ``clip_len`` frames -> {"clips": [M,T,C,H,W]}."""

    def __init__(self, count: int = 4, clip_len: int = 8, stride: int = 1, **kw: Any):
        kw.setdefault("train", False)
        super().__init__(**kw)
        self.count, self.clip_len, self.stride = count, clip_len, stride

    def __call__(self, video, rng):
        n = video.num_frames
        span = (self.clip_len - 1) * self.stride + 1
        starts = np.linspace(0, max(0, n - span), self.count).round().astype(int)
        idx = [i for s in starts for i in range(s, s + span, self.stride)]
        frames = video.get_frames(loop_index(idx, n))
        clips = frames.view(self.count, self.clip_len, *frames.shape[1:])
        return {"clips": self.transform(clips.flatten(0, 1)).view(self.count, self.clip_len, -1, self.resolution, self.resolution)}


def build_sampler(name: str, resolution: int, train: bool = True, short_video: str = "loop", **options: Any) -> Sampler:
    cls = SAMPLERS.get(name)
    return cls(resolution=resolution, train=train, short_video=short_video, **options)
