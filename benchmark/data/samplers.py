"""Samplers: what a method (or an evaluation protocol) draws from one video.

A sampler is a registered class built as ``Sampler(resolution=..., train=...,
**options)``; calling it on an open video and a numpy Generator returns a dict
of tensors (one training sample). ``frames_needed`` says how many distinct
frames it wants; a shorter video is loop-padded or skipped (DataConfig.short_video).
Plugins register their own with ``@register_sampler("name")``.

    >>> s = SAMPLERS.get("frame_pair")(resolution=64, offset_min=1, offset_max=4)
    >>> video = SyntheticVideo(num_frames=32)  # an open video: VideoHandle's interface (an in-memory one here)
    >>> sample = s(video, np.random.default_rng(0))
    >>> {k: tuple(v.shape) for k, v in sample.items()}
    {'anchor': (3, 64, 64), 'positive': (3, 64, 64), 'offset': ()}

In-tree samplers and what one sample holds (C=3 channels, H=W=resolution):

================  =====================================================  ==========================
name              sample                                                 used by
================  =====================================================  ==========================
``frame_pair``    anchor [C,H,W], positive [C,H,W], offset               TCE
``tuple``         frames [3,C,H,W], order_label 0/1, frame_indices [3]   Shuffle and Learn
``opn_tuple``     frames [4,C,H,W], order_label 0..11, frame_indices [4] OPN
``clip``          clip [T,C,H,W] (+ reversed 0/1 when reverse_p > 0)     AoT, RotNet, supervised
``multi_clip``    clips [n,T,C,H,W] in temporal order                    VCOP, Skip-Clip
``blocks``        blocks [N,L,C,H,W] contiguous, non-overlapping         DPC
``frames``        frames [F,C,H,W] evenly spaced (evaluation, 2D)        linear probe / kNN
``segments``      frames [S,C,H,W] one per segment (TSN fine-tuning)     fine-tuning 2D
``clips``         clips [M,T,C,H,W] uniformly spaced (evaluation, 3D)    linear probe / kNN
``cubic_puzzle``  pieces [4,L,C,p,p] in canonical order, mode 0/1        3D Cubic Puzzles
================  =====================================================  ==========================

The loader adds ``index`` (the video's position in the index) and, for
labelled pre-training, ``label`` (the class); samplers never use those keys.

Augmentation: every order-based sampler (tuple, opn_tuple, clip, multi_clip)
applies ONE spatial and colour augmentation to all its frames, so that only
temporal order differs between classes; ``blocks`` shares crop/flip but draws
colour jitter and random gray per frame (DPC's recipe); ``frame_pair`` draws
everything per frame (TCE).

Short videos (``DataConfig.short_video``): with "skip" a video with fewer than
``frames_needed`` frames raises :class:`ShortVideo` (the loader counts it as a
bad sample and takes the next video); with "loop" (default) frame indices wrap
around (``loop_index``), i.e. the video is loop-padded. The tuple samplers
need only as many distinct frames as the tuple has; their window shrinks to
the video's length rather than wrapping (wrapping would corrupt temporal
order, which is their label).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from benchmark.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    RandomGray,
    eval_transform,
    per_frame,
    train_transform,
)
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
    return [min(num_frames - 1, int((a + b) / 2)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@register_sampler("frame_pair")
class FramePair(Sampler):
    """TCE: anchor frame t and positive t+d (t-d near the end), d uniform in [offset_min, offset_max];
    independent augmentation per frame. A short video draws d among the offsets it has, and one too short for
    offset_min is skipped (counted as a bad sample), so the positive is never the anchor frame itself
    (unless offset_min = 0, TCE's allow_zero_offset ablation)."""

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
        # a video shorter than offset_max + 1 frames (short_video: loop) draws d only among the offsets it has;
        # one without even offset_min (or with a single frame) is skipped and counted: d = 0 never comes silently
        longest = min(self.offset_max, n - 1)
        if longest < max(self.offset_min, 1):
            raise ShortVideo(f"{n} frames: no positive at offset >= {max(self.offset_min, 1)}")
        d = int(rng.integers(self.offset_min, longest + 1))
        if n >= 2 * d:  # every anchor has a partner d away (t + d, or t - d near the end)
            t = int(rng.integers(0, n))
        else:  # short: only anchors with a partner inside the video
            t = int(rng.choice([i for i in range(n) if i + d < n or i - d >= 0]))
        p = t + d if t + d < n else t - d
        frames = video.get_frames([t, p])
        a, b = per_frame(self.transform, frames)
        return {"anchor": a, "positive": b, "offset": torch.tensor(d)}


@register_sampler("clip")
class Clip(Sampler):
    """A clip of ``clip_len`` frames at ``stride``, one augmentation shared by all frames -> {"clip": [T,C,H,W]}.

    ``reverse_p`` > 0 plays the clip backwards with that probability and adds {"reversed": 0/1}. Arrow of
    Time does NOT use it: a sampler sees one video, not the batch, so it cannot balance a batch exactly;
    the method reverses half of each batch itself (methods/arrow_of_time.py).
    """

    def __init__(
        self,
        clip_len: int = 8,
        stride: int = 2,
        reverse_p: float = 0.0,
        aug: AugmentConfig = AugmentConfig(),
        **kw: Any,
    ):
        super().__init__(**kw)
        if clip_len < 1 or stride < 1:
            raise ValueError(f"clip_len and stride must be >= 1, got {clip_len}, {stride}")
        self.clip_len, self.stride, self.reverse_p = clip_len, stride, reverse_p
        self.frames_needed = (clip_len - 1) * stride + 1
        if self.train:
            self.transform = train_transform(self.resolution, aug)

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        start = random_start(rng, n, self.frames_needed)
        idx = loop_index(range(start, start + self.frames_needed, self.stride), n)
        sample = {}
        if self.reverse_p > 0:
            backwards = bool(rng.random() < self.reverse_p)
            idx = idx[::-1] if backwards else idx
            sample["reversed"] = torch.tensor(int(backwards))
        sample["clip"] = self.transform(video.get_frames(idx))
        return sample


def random_start(rng: np.random.Generator, num_frames: int, span: int) -> int:
    """First frame of a window of ``span`` frames placed uniformly inside the video (0 if it does not fit)."""
    return int(rng.integers(0, max(1, num_frames - span + 1)))


# --------------------------------------------------------------------------- order tuples (S&L, OPN)
def frame_difference_motion(frames: torch.Tensor) -> float:
    """Mean absolute difference of consecutive frames (uint8 [T,C,H,W]), on a coarse grey version.

    A cheap stand-in for the optical-flow magnitude that Shuffle and Learn used to pick high-motion windows.
    """
    if len(frames) < 2:
        return 0.0
    step = max(1, frames.shape[-1] // 32)  # a strided ~32-px view is plenty for a motion ranking
    coarse = frames[..., ::step, ::step].float().sum(dim=1)
    return float((coarse[1:] - coarse[:-1]).abs().mean()) / 3


def pick(frames: torch.Tensor, order: list[int]) -> torch.Tensor:
    """frames[order] along time. index_select: advanced indexing measured ~15 ms per call on this CPU build, this ~0.02 ms."""
    return frames.index_select(0, torch.tensor(order))


class OrderedTuple(Sampler):
    """Shared machinery: ``size`` ordered frame indices from a window, optionally the highest-motion of several."""

    size = 5

    def __init__(self, window: int = 16, motion_candidates: int = 1, aug: AugmentConfig = AugmentConfig(), **kw: Any):
        super().__init__(**kw)
        if window < self.size:
            raise ValueError(f"window={window} must hold at least {self.size} frames")
        if motion_candidates < 1:
            raise ValueError(f"motion_candidates must be >= 1, got {motion_candidates}")
        self.window, self.motion_candidates = window, motion_candidates
        self.frames_needed = self.size  # distinct frames; the window shrinks to a shorter video
        if self.train:
            self.transform = train_transform(self.resolution, aug)

    def draw_indices(self, rng: np.random.Generator, num_frames: int) -> list[int]:
        """``size`` strictly increasing frame indices inside one window of the video."""
        if num_frames < self.size:  # only reachable with short_video="loop": repeat frames, order is moot
            return sorted(loop_index(range(self.size), num_frames))
        window = min(self.window, num_frames)
        start = random_start(rng, num_frames, window)
        return sorted(start + int(i) for i in rng.choice(window, self.size, replace=False))

    def ordered_frames(self, video, rng: np.random.Generator) -> tuple[list[int], torch.Tensor]:
        """The chosen indices and their uint8 frames; with several candidates, the window of most motion wins."""
        n = video.num_frames
        self.check_length(n)
        candidates = [self.draw_indices(rng, n) for _ in range(self.motion_candidates)]
        if len(candidates) == 1:
            return candidates[0], video.get_frames(candidates[0])
        wanted = sorted({i for c in candidates for i in c})  # one decoding pass over all candidates
        decoded = dict(zip(wanted, video.get_frames(wanted), strict=True))
        scored = [(frame_difference_motion(torch.stack([decoded[i] for i in c])), k) for k, c in enumerate(candidates)]
        best = candidates[max(scored)[1]]
        return best, torch.stack([decoded[i] for i in best])


@register_sampler("tuple")
class ShuffleTuple(OrderedTuple):
    """Shuffle and Learn (Misra et al., ECCV 2016): 3 frames in or out of temporal order.

    Five ordered frames a<b<c<d<e are drawn from a window. Positive (order_label 1): (b,c,d) or (d,c,b).
    Negative (order_label 0): (b,a,d) or (b,e,d), each also shown reversed with probability 0.5 so that
    playing direction alone does not separate the classes. -> {"frames": [3,C,H,W], "order_label",
    "frame_indices": [3]}. ``motion_candidates`` > 1 picks the window of highest frame-difference motion
    among that many random windows (the paper used optical flow).
    """

    size = 5

    def __init__(self, positive_fraction: float = 0.25, **kw: Any):
        super().__init__(**kw)
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self.positive_fraction = positive_fraction

    def __call__(self, video, rng):
        indices, frames = self.ordered_frames(video, rng)
        a, b, c, d, e = range(5)
        positive = bool(rng.random() < self.positive_fraction)
        if positive:
            order = [b, c, d]
        else:
            order = [b, a, d] if rng.random() < 0.5 else [b, e, d]
        if rng.random() < 0.5:
            order = order[::-1]
        return {
            "frames": self.transform(pick(frames, order)),
            "order_label": torch.tensor(int(positive)),
            "frame_indices": torch.tensor([indices[i] for i in order]),
        }


def orders_up_to_reversal(size: int) -> list[tuple[int, ...]]:
    """The size!/2 classes of order prediction: each permutation paired with its reverse, the smaller one kept."""
    return sorted({min(p, p[::-1]) for p in itertools.permutations(range(size))})


OPN_ORDERS = orders_up_to_reversal(4)  # 12 classes; class k shows OPN_ORDERS[k] or its reverse


@register_sampler("opn_tuple")
class OPNTuple(OrderedTuple):
    """OPN (Lee et al., ICCV 2017): 4 ordered frames shown in one of 24 orders; label = the order up to reversal.

    -> {"frames": [4,C,H,W] in presentation order, "order_label": k in 0..11 (frames follow OPN_ORDERS[k] or its
    reverse), "frame_indices": [4]}. ``channel_split`` replaces each frame by one random colour channel copied to
    all three (drawn per frame), OPN's guard against chromatic-aberration shortcuts.
    """

    size = 4

    def __init__(self, channel_split: bool = False, **kw: Any):
        super().__init__(**kw)
        self.channel_split = channel_split
        self.splitter = RandomGray(p=1.0)

    def __call__(self, video, rng):
        indices, frames = self.ordered_frames(video, rng)
        label = int(rng.integers(len(OPN_ORDERS)))
        order = list(OPN_ORDERS[label])
        if rng.random() < 0.5:
            order = order[::-1]
        shown = pick(frames, order)
        if self.channel_split and self.train:
            shown = per_frame(self.splitter, shown)
        return {
            "frames": self.transform(shown),
            "order_label": torch.tensor(label),
            "frame_indices": torch.tensor([indices[i] for i in order]),
        }


# --------------------------------------------------------------------------- several clips (VCOP), blocks (DPC)
@register_sampler("multi_clip")
class MultiClip(Sampler):
    """VCOP (Xu et al., CVPR 2019): ``num_clips`` clips of ``clip_len`` frames at ``stride``, ``gap`` frames between
    consecutive clips -> {"clips": [n,T,C,H,W]} in temporal order (the method shuffles and labels). One
    augmentation shared by every frame of every clip."""

    def __init__(
        self,
        num_clips: int = 3,
        clip_len: int = 16,
        stride: int = 1,
        gap: int = 8,
        aug: AugmentConfig = AugmentConfig(),
        **kw: Any,
    ):
        super().__init__(**kw)
        if num_clips < 1 or clip_len < 1 or stride < 1 or gap < 0:
            raise ValueError(
                f"bad multi_clip shape: num_clips={num_clips} clip_len={clip_len} stride={stride} gap={gap}"
            )
        self.num_clips, self.clip_len, self.stride, self.gap = num_clips, clip_len, stride, gap
        self.clip_span = (clip_len - 1) * stride + 1
        self.frames_needed = num_clips * self.clip_span + (num_clips - 1) * gap
        if self.train:
            self.transform = train_transform(self.resolution, aug)

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        start = random_start(rng, n, self.frames_needed)
        idx = [
            start + k * (self.clip_span + self.gap) + j * self.stride
            for k in range(self.num_clips)
            for j in range(self.clip_len)
        ]
        frames = self.transform(video.get_frames(loop_index(idx, n)))
        return {"clips": frames.view(self.num_clips, self.clip_len, *frames.shape[1:])}


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _hue_matrices(shift: torch.Tensor) -> torch.Tensor:
    """[T] hue shifts in turns -> [T, 3, 3] RGB->RGB matrices rotating chroma in YIQ space."""
    angle = shift * 2 * torch.pi
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(len(shift), 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    return _YIQ_TO_RGB @ rot @ _RGB_TO_YIQ


def adjust_colour(
    x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor
) -> torch.Tensor:
    """Per-frame factors ([T,1,1,1]; hue [T] in turns) on float [T,3,H,W] in [0,1]: brightness, contrast, saturation
    as torchvision defines them, then a chroma rotation."""
    x = (x * brightness).clamp(0, 1)
    x = (contrast * x + (1 - contrast) * _luma(x).mean((1, 2, 3), keepdim=True)).clamp(0, 1)
    x = (saturation * x + (1 - saturation) * _luma(x)).clamp(0, 1)
    return torch.einsum("tij,tjhw->tihw", _hue_matrices(hue).to(x.dtype), x).clamp(0, 1)


def colour_per_frame(frames: torch.Tensor, aug: AugmentConfig) -> torch.Tensor:
    """Colour jitter and random gray drawn independently for every frame of float [T, 3, H, W] in [0, 1], vectorised.

    Same factors as torchvision's ColorJitter (brightness/contrast/saturation uniform in [1-s, 1+s], hue in
    [-h, h], applied with probability ``jitter_p``) but in a fixed order and with hue rotated in YIQ space
    rather than HSV: frame-by-frame ColorJitter measured ~3 ms per 64-px frame here, most of a DPC sample's cost.
    Randomness from torch's global generator (seeded per sample by the loader).
    """
    t = len(frames)
    x = frames
    if aug.jitter > 0 or aug.hue > 0:
        on = (torch.rand(t) < aug.jitter_p).float()

        def factor(strength: float) -> torch.Tensor:
            f = torch.empty(t).uniform_(max(0.0, 1 - strength), 1 + strength)
            return (on * f + (1 - on)).view(t, 1, 1, 1)

        brightness, contrast, saturation = factor(aug.jitter), factor(aug.jitter), factor(aug.jitter)
        hue = torch.empty(t).uniform_(-aug.hue, aug.hue) * on
        x = adjust_colour(x, brightness, contrast, saturation, hue)
    if aug.gray_p > 0:  # RandomGray per frame: one random channel copied into all three
        gray = (torch.rand(t) < aug.gray_p).view(t, 1, 1, 1)
        channel = torch.randint(0, 3, (t, 1, 1, 1)).expand(t, 1, *x.shape[2:])
        x = torch.where(gray, x.gather(1, channel).expand_as(x), x)
    return x


def dpc_transforms(resolution: int, aug: AugmentConfig) -> tuple[v2.Compose, v2.Compose]:
    """(spatial, normalise): crop/flip shared by a whole sequence; colour goes per frame in between."""
    spatial: list = [v2.RandomResizedCrop(resolution, scale=aug.crop_scale, antialias=True)]
    if aug.flip:
        spatial.append(v2.RandomHorizontalFlip())
    return v2.Compose(spatial), v2.Compose([v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


@register_sampler("blocks")
class Blocks(Sampler):
    """DPC (Han et al., ICCV-W 2019): ``num_blocks`` contiguous, non-overlapping blocks of ``block_len`` frames at frame
    ``stride`` -> {"blocks": [N,L,C,H,W]}. Crop and flip shared by all frames; colour jitter and random gray drawn
    per frame (DPC's recipe; vectorised, see colour_per_frame). Evaluation mode (train=False) resizes and centre-crops
    without colour changes."""

    def __init__(
        self, num_blocks: int = 8, block_len: int = 5, stride: int = 3, aug: AugmentConfig = AugmentConfig(), **kw: Any
    ):
        super().__init__(**kw)
        if num_blocks < 1 or block_len < 1 or stride < 1:
            raise ValueError(f"bad blocks shape: num_blocks={num_blocks} block_len={block_len} stride={stride}")
        self.num_blocks, self.block_len, self.stride = num_blocks, block_len, stride
        self.frames_needed = (num_blocks * block_len - 1) * stride + 1
        self.aug = aug
        self.spatial, self.normalise = dpc_transforms(self.resolution, aug)

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        start = random_start(rng, n, self.frames_needed)
        idx = loop_index(range(start, start + self.frames_needed, self.stride), n)
        frames = video.get_frames(idx)
        if self.train:
            cropped = self.spatial(frames).float().div_(255)
            frames = self.normalise(colour_per_frame(cropped, self.aug))
        else:
            frames = self.transform(frames)
        return {"blocks": frames.view(self.num_blocks, self.block_len, *frames.shape[1:])}


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
        idx = [
            min(n - 1, int(rng.integers(int(a), max(int(a) + 1, int(b)))))
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
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
        return {
            "clips": self.transform(clips.flatten(0, 1)).view(
                self.count, self.clip_len, -1, self.resolution, self.resolution
            )
        }


# --------------------------------------------------------------------------- space-time cubic puzzles
SPATIAL_PUZZLE, TEMPORAL_PUZZLE = 0, 1
NUM_PIECES = 4


MIN_PIECE_PX = (
    17  # the smallest input every registered 3D backbone takes (the inflated resnet10t's avg-pool downsampling)
)


def puzzle_geometry(resolution: int, piece_scale: float, min_piece: int = MIN_PIECE_PX) -> tuple[int, int]:
    """(cell, piece) in px: the cube is 2 x 2 cells, a cell half the ``resolution`` but never so small that a piece
    (``piece_scale`` of a cell) falls under ``min_piece`` px (at 32 px: 20-px cells, 18-px pieces)."""
    cell = max(resolution // 2, math.ceil(min_piece / piece_scale))
    return cell, min(cell, max(min_piece, int(round(piece_scale * cell))))


def replicate_channel(x: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
    """x [N, ..., 3, H, W]; channel [N] in 0..2 (or -1: unchanged) -> each x[n] with its one channel copied to all three."""
    n = len(x)
    idx = channel.clamp(min=0).view(n, *([1] * (x.dim() - 1))).expand(*x.shape[:-3], 1, *x.shape[-2:])
    picked = x.gather(-3, idx).expand_as(x)
    keep = (channel < 0).view(n, *([1] * (x.dim() - 1)))
    return torch.where(keep, x, picked)


@register_sampler("cubic_puzzle")
class CubicPuzzle(Sampler):
    """3D Cubic Puzzles (Kim, Cho, Kweon, AAAI 2019): four 3D pieces of one space-time cube, in canonical order ->
    {"pieces": [4, L, C, p, p], "mode": 0 (spatial) | 1 (temporal)}; the method shuffles and labels them.

    One shared augmentation (random resized crop to the cube, flip, colour jitter; no random gray) is drawn for all
    the frames a sample reads, BEFORE the cube is cut, so a flip never swaps pieces. The cube is a 2 x 2 grid of
    cells of ``resolution // 2`` px (larger where pieces would fall under MIN_PIECE_PX: :func:`puzzle_geometry`); a
    piece is ``p = piece_scale`` x cell px, placed at a random offset inside its cell (jitter up to cell - p px, drawn
    per piece: no aligned borders).

    - spatial (probability ``spatial_p``): the four cells of one time slot, ``piece_len`` frames at ``stride`` from a
      random start; canonical order raster (top-left, top-right, bottom-left, bottom-right);
    - temporal: four time segments of span + ``tgap`` frames each (span = (piece_len - 1) x stride + 1, a piece's
      frames); each piece starts at a random
      offset in [0, tgap] of its segment (gaps of 0..2 tgap frames between pieces), all four inside one random
      cell-sized window of the cube (each with its own spatial jitter); canonical order temporal. A video shorter
      than the window spreads the four starts evenly over it instead (pieces may overlap but stay in order).

    Channel replication (against chromatic-aberration and colour-continuity shortcuts): with probability
    ``channel_rep_p`` one random RGB channel is copied into all three, drawn per piece (``channel_rep: piece``),
    once per sample (``sample``) or never (``off``); it is applied before normalisation.
    """

    def __init__(
        self,
        piece_len: int = 6,
        stride: int = 1,
        tgap: int = 2,
        piece_scale: float = 0.875,
        spatial_p: float = 0.5,
        channel_rep: str = "piece",
        channel_rep_p: float = 1.0,
        aug: AugmentConfig = AugmentConfig(gray_p=0.0),
        **kw: Any,
    ):
        super().__init__(**kw)
        if piece_len < 1 or stride < 1 or tgap < 0:
            raise ValueError(f"bad cubic_puzzle shape: piece_len={piece_len} stride={stride} tgap={tgap}")
        if not 0 < piece_scale <= 1 or not 0 <= spatial_p <= 1 or not 0 <= channel_rep_p <= 1:
            raise ValueError(f"piece_scale in (0, 1], spatial_p and channel_rep_p in [0, 1]: got {piece_scale}, "
                             f"{spatial_p}, {channel_rep_p}")  # fmt: skip
        if channel_rep not in ("piece", "sample", "off"):
            raise ValueError(f"channel_rep must be 'piece', 'sample' or 'off', got {channel_rep!r}")
        self.piece_len, self.stride, self.tgap = piece_len, stride, tgap
        self.spatial_p, self.channel_rep, self.channel_rep_p = spatial_p, channel_rep, channel_rep_p
        self.cell, self.piece = puzzle_geometry(self.resolution, piece_scale)
        self.cube = 2 * self.cell  # the resolution, unless that would make pieces too small for a 3D backbone
        self.span = (piece_len - 1) * stride + 1  # frames one piece covers
        self.segment = self.span + tgap
        self.frames_needed = NUM_PIECES * self.segment
        ops: list = [v2.RandomResizedCrop(self.cube, scale=aug.crop_scale, antialias=True)]
        if not self.train:
            ops = [v2.Resize(self.cube, antialias=True), v2.CenterCrop(self.cube)]
        elif aug.flip:
            ops.append(v2.RandomHorizontalFlip())
        if self.train and (aug.jitter > 0 or aug.hue > 0):
            ops.append(v2.RandomApply([v2.ColorJitter(aug.jitter, aug.jitter, aug.jitter, aug.hue)], p=aug.jitter_p))
        ops.append(v2.ToDtype(torch.float32, scale=True))
        self.cube_transform = v2.Compose(ops)  # one draw for every frame of the sample; normalised after cutting
        self.normalise = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)

    def temporal_starts(self, rng: np.random.Generator, n: int) -> list[int]:
        if n >= self.frames_needed:
            base = random_start(rng, n, self.frames_needed)
            return [base + k * self.segment + int(rng.integers(0, self.tgap + 1)) for k in range(NUM_PIECES)]
        return [int(round(s)) for s in np.linspace(0, max(0, n - self.span), NUM_PIECES)]

    def __call__(self, video, rng):
        n = video.num_frames
        self.check_length(n)
        spatial = bool(rng.random() < self.spatial_p)
        jitter = self.cell - self.piece
        offsets = rng.integers(0, jitter + 1, size=(NUM_PIECES, 2))  # (y, x) inside each piece's cell
        if spatial:
            start = random_start(rng, n, self.span)
            frames = self.cube_transform(video.get_frames(loop_index(range(start, start + self.span, self.stride), n)))
            corners = [(r * self.cell, c * self.cell) for r in range(2) for c in range(2)]  # raster order
            windows = [frames] * NUM_PIECES
        else:
            starts = self.temporal_starts(rng, n)
            idx = [s + j * self.stride for s in starts for j in range(self.piece_len)]
            frames = self.cube_transform(video.get_frames(loop_index(idx, n)))
            y0, x0 = (int(v) for v in rng.integers(0, self.cube - self.cell + 1, size=2))  # one cell-sized window
            corners = [(y0, x0)] * NUM_PIECES
            windows = list(frames.view(NUM_PIECES, self.piece_len, *frames.shape[1:]))
        pieces = torch.stack([
            w[:, :, y + int(dy) : y + int(dy) + self.piece, x + int(dx) : x + int(dx) + self.piece]
            for w, (y, x), (dy, dx) in zip(windows, corners, offsets, strict=True)
        ])  # fmt: skip
        if self.train and self.channel_rep != "off":
            draws = NUM_PIECES if self.channel_rep == "piece" else 1
            on = rng.random(draws) < self.channel_rep_p
            channel = torch.as_tensor(np.where(on, rng.integers(0, 3, draws), -1)).expand(NUM_PIECES)
            pieces = replicate_channel(pieces, channel)
        pieces = self.normalise(pieces.flatten(0, 1)).view(pieces.shape)
        return {"pieces": pieces, "mode": torch.tensor(SPATIAL_PUZZLE if spatial else TEMPORAL_PUZZLE)}


def build_sampler(name: str, resolution: int, train: bool = True, short_video: str = "loop", **options: Any) -> Sampler:
    cls = SAMPLERS.get(name)
    return cls(resolution=resolution, train=train, short_video=short_video, **options)


# --------------------------------------------------------------------------- describing samplers (vssl methods --samplers)
class SyntheticVideo:
    """An in-memory video with the VideoHandle interface (``num_frames, fps, height, width, get_frames``):
    ``get_frames(indices)`` returns uint8 [len(indices), 3, H, W] in the order asked."""

    def __init__(self, num_frames: int = 64, size: int = 48, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.frames = torch.randint(0, 256, (num_frames, 3, size, size), dtype=torch.uint8, generator=g)
        self.num_frames, self.fps, self.height, self.width = num_frames, 25.0, size, size
        self.path = "<in-memory video>"

    def get_frames(self, indices) -> torch.Tensor:
        return self.frames[list(indices)]


def sampler_options_of(cls: type) -> dict[str, Any]:
    """A sampler's keyword options and their defaults (every __init__ of its class hierarchy)."""
    import inspect

    options: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" not in vars(klass):
            continue
        for name, p in inspect.signature(klass.__init__).parameters.items():
            if name in ("self", "resolution", "train", "short_video") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            options[name] = p.default if p.default is not inspect.Parameter.empty else "(required)"
    return options


def describe_samplers(resolution: int = 32) -> list[dict[str, str]]:
    """For every registered sampler: what one training sample holds (key: shape dtype), drawn with its default
    options from an in-memory 64-frame video at ``resolution``, and its options with their defaults."""
    rows = []
    for entry in SAMPLERS.entries():
        options = sampler_options_of(entry.obj)
        try:
            sampler = entry.obj(resolution=resolution, train=True)
            sample = sampler(SyntheticVideo(), np.random.default_rng(0))
            keys = ", ".join(
                f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}"
                if torch.is_tensor(v)
                else f"{k} {type(v).__name__}"
                for k, v in sample.items()
            )
        except Exception as exc:  # noqa: BLE001 (a plugin sampler that needs more than the defaults)
            keys = f"(could not draw with default options: {type(exc).__name__}: {exc})"
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items() if not isinstance(v, AugmentConfig))
        rows.append({"name": entry.name, "sample": keys, "options": shown or "-", "source": entry.source})
    return rows
