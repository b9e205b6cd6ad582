"""Motion and appearance statistics of a clip: the regression targets of MAS (Wang et al., CVPR 2019).

Everything here is numpy on one clip's small arrays (it runs in the loader's workers). Labels are the release's
integer codes, 1-based, as float32.

Partition patterns on an R x R frame (R a multiple of 8; the paper's 112 px: blocks of 28, rings at 42/28/14):

- ``blocks``: a 4 x 4 grid of R/4 x R/4 blocks, numbered 1..16 row by row;
- ``rings``: 4 concentric square rings, 1 = the centre [3R/8, 5R/8)^2, 2 = [R/4, 3R/4)^2 minus the centre,
  3 = [R/8, 7R/8)^2 minus ring 2, 4 = the rest; a ring's motion is its MEAN magnitude (rings differ in area);
- ``triangles``: each R/2 quadrant cut by its diagonal through the frame's centre into two triangles (the
  diagonal belongs to both), numbered 1..8: top-left lower, top-left upper, top-right upper, top-right lower,
  bottom-left upper, bottom-left lower, bottom-right lower, bottom-right upper ("upper" / "lower" of the
  quadrant's centre diagonal, the right-hand quadrants read mirrored, as the release indexes them).

Motion (per motion component c: u and v of the flow, or the grey frame difference d):
motion boundaries ``MBx_c = sum_t Dx * c_t``, ``MBy_c = sum_t Dy * c_t`` with 3 x 3 Prewitt kernels applied as a
true convolution with reflected borders (the release's ``scipy.ndimage.convolve``: Dx has columns -1, 0, +1, so
``MBx = c(x-1) - c(x+1)`` summed over three rows), summed over time BEFORE the magnitude (opposite boundaries
cancel). Per pattern: ``loc`` = the region with the largest summed magnitude (rings: mean), ``dir`` = the peak of
that region's 8-bin orientation histogram (45-degree bins from 0 degrees, each pixel's magnitude split linearly
between its two nearest bins, wrapping 8 -> 1). Globally: ``frame`` = the time step (1..T-1) whose motion-boundary
magnitude summed over the frame is largest. Order: for each pattern ``[u_loc, u_dir, v_loc, v_dir]`` then
``[u_frame, v_frame]`` (14 labels with flow and all three patterns; ``d_*``: 7 with frame differences).

Appearance (13 labels with all three patterns): per region the colour diversity is the IoU of its per-frame
256-bin histograms, sum_b min_t h_t(b) / sum_b max_t h_t(b), averaged over R, G, B; ``div_loc`` = the region of
least IoU (most colour change), ``con_loc`` = the most constant one, and ``*_col`` their dominant colour: the most
frequent exact RGB triple over the region's pixels and frames (``dominant_colour: mode``, the release's) or the
most populated octant (``octant``), coded by its RGB-cube octant (each channel split at 128): 1 blue, 2 cyan
(G+B), 3 magenta (R+B), 4 white, 5 black, 6 green, 7 red, 8 yellow (R+G). Order: per pattern
``[div_loc, div_col, con_loc, con_col]``, then ``global_col`` (the dominant colour of the whole clip).

Ties (and a clip without motion) pick the first region / bin, as numpy's argmax does.

>>> masks = region_masks("blocks", 8)
>>> masks.shape, int(masks[5].sum()), bool(masks[5, 2, 2])          # block 6: row 2, column 2 of the grid
((16, 8, 8), 4, True)
>>> OCTANT_CODE[0b100], OCTANT_CODE[0b111]                          # pure red -> 7, white -> 4
(7, 4)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

PATTERNS = ("blocks", "rings", "triangles")
DOMINANT_COLOUR = ("mode", "octant")
BINS = 8  # orientation bins of 45 degrees
# RGB-cube octant (r*4 + g*2 + b, each bit = channel >= 128) -> the release's colour code 1..8
OCTANT_CODE = (5, 1, 6, 2, 7, 3, 8, 4)


@functools.cache
def region_masks(pattern: str, size: int) -> np.ndarray:
    """Boolean masks [regions, size, size] of one partition pattern, in label order (label = index + 1)."""
    if size % 8:
        raise ValueError(f"partition patterns need a frame side divisible by 8, got {size}")
    if pattern == "blocks":
        b = size // 4
        masks = np.zeros((16, size, size), bool)
        for k in range(16):
            r, c = divmod(k, 4)
            masks[k, r * b : (r + 1) * b, c * b : (c + 1) * b] = True
        return masks
    if pattern == "rings":
        squares = []
        for lo in (3 * size // 8, size // 4, size // 8, 0):
            sq = np.zeros((size, size), bool)
            sq[lo : size - lo, lo : size - lo] = True
            squares.append(sq)
        return np.stack([squares[0]] + [squares[k] & ~squares[k - 1] for k in (1, 2, 3)])
    if pattern == "triangles":
        q = size // 2
        i, j = np.mgrid[0:q, 0:q]
        lower, upper = i >= j, i <= j  # of the main diagonal; the diagonal belongs to both
        pieces = [  # (quadrant row, quadrant col, local mask)
            (0, 0, lower), (0, 0, upper), (0, 1, upper[:, ::-1]), (0, 1, lower[:, ::-1]),
            (1, 0, upper[:, ::-1]), (1, 0, lower[:, ::-1]), (1, 1, lower), (1, 1, upper),
        ]  # fmt: skip
        masks = np.zeros((8, size, size), bool)
        for k, (r, c, local) in enumerate(pieces):
            masks[k, r * q : (r + 1) * q, c * q : (c + 1) * q] = local
        return masks
    raise ValueError(f"unknown partition pattern {pattern!r}; one of {', '.join(PATTERNS)}")


def motion_label_names(patterns: tuple[str, ...], components: tuple[str, ...] = ("u", "v")) -> list[str]:
    names = [f"{c}_{what}_{p}" for p in patterns for c in components for what in ("loc", "dir")]
    return names + [f"{c}_frame" for c in components]


def appearance_label_names(patterns: tuple[str, ...]) -> list[str]:
    return [f"{what}_{p}" for p in patterns for what in ("div_loc", "div_col", "con_loc", "con_col")] + ["global_col"]


# --------------------------------------------------------------------------- motion
def motion_boundaries(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """field [..., H, W] -> (Dx * field, Dy * field): the release's Prewitt convolution, reflected borders."""
    pad = [(0, 0)] * (field.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(field, pad, mode="symmetric")  # scipy.ndimage's 'reflect' (d c b a | a b c d)
    h, w = field.shape[-2:]
    rows3 = p[..., 0:h, :] + p[..., 1 : h + 1, :] + p[..., 2 : h + 2, :]  # sum over the kernel's three rows
    cols3 = p[..., :, 0:w] + p[..., :, 1 : w + 1] + p[..., :, 2 : w + 2]
    dx = rows3[..., :, 0:w] - rows3[..., :, 2 : w + 2]  # convolution flips the kernel: c(x-1) - c(x+1)
    dy = cols3[..., 0:h, :] - cols3[..., 2 : h + 2, :]
    return dx, dy


def orientation_histogram(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Magnitude-weighted 8-bin histogram of orientations (45-degree bins from 0), each pixel split linearly."""
    magnitude = np.hypot(dx, dy).ravel()
    angle = np.degrees(np.arctan2(dy, dx)).ravel() % 360.0
    pos = angle / (360.0 / BINS)
    low = np.floor(pos).astype(int) % BINS
    frac = pos - np.floor(pos)
    hist = np.bincount(low, magnitude * (1 - frac), minlength=BINS)
    return hist + np.bincount((low + 1) % BINS, magnitude * frac, minlength=BINS)


def component_motion_labels(field: np.ndarray, patterns: tuple[str, ...]) -> tuple[list[int], int, float]:
    """One motion component over time [T-1, H, W] -> ([loc, dir] per pattern, frame label, total magnitude)."""
    dx_t, dy_t = motion_boundaries(field.astype(np.float64))
    mbx, mby = dx_t.sum(0), dy_t.sum(0)  # summed over time before the magnitude
    magnitude = np.hypot(mbx, mby)
    labels = []
    for pattern in patterns:
        masks = region_masks(pattern, field.shape[-1])
        size = masks.reshape(len(masks), -1) @ magnitude.ravel()
        if pattern == "rings":
            size = size / masks.reshape(len(masks), -1).sum(1)
        loc = int(np.argmax(size))
        region = masks[loc]
        labels += [loc + 1, int(np.argmax(orientation_histogram(mbx[region], mby[region]))) + 1]
    per_frame = np.hypot(dx_t, dy_t).reshape(len(field), -1).sum(1)
    return labels, int(np.argmax(per_frame)) + 1, float(magnitude.sum())


def motion_labels(motion: np.ndarray, patterns: tuple[str, ...]) -> tuple[np.ndarray, bool]:
    """motion [T-1, C, H, W] (C = 2: flow u, v; C = 1: frame difference) -> (labels, static)."""
    per = [component_motion_labels(motion[:, c], patterns) for c in range(motion.shape[1])]
    labels = []
    for k in range(len(patterns)):
        for loc_dir, _, _ in per:
            labels += loc_dir[2 * k : 2 * k + 2]
    labels += [frame for _, frame, _ in per]
    static = all(total < 1e-6 for _, _, total in per)
    return np.asarray(labels, np.float32), static


# --------------------------------------------------------------------------- appearance
def dominant_colour(pixels: np.ndarray, mode: str = "mode") -> int:
    """uint8 [N, 3] RGB -> the colour code 1..8 of the most frequent exact triple (mode) or octant (octant)."""
    octant = lambda rgb: (rgb[..., 0] >= 128) * 4 + (rgb[..., 1] >= 128) * 2 + (rgb[..., 2] >= 128)  # noqa: E731
    if mode == "octant":
        return OCTANT_CODE[int(np.argmax(np.bincount(octant(pixels).ravel(), minlength=8)))]
    codes = (pixels[:, 0].astype(np.int64) << 16) | (pixels[:, 1].astype(np.int64) << 8) | pixels[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    top = int(values[np.argmax(counts)])
    return OCTANT_CODE[int(octant(np.array([top >> 16, (top >> 8) & 255, top & 255])))]


def colour_iou(region: np.ndarray) -> float:
    """uint8 [T, N, 3] (a region's pixels per frame) -> mean over channels of sum_b min_t h_t / sum_b max_t h_t."""
    t = region.shape[0]
    offsets = (np.arange(t)[:, None, None] * 3 + np.arange(3)[None, None, :]) * 256
    hist = np.bincount((region.astype(np.int64) + offsets).ravel(), minlength=t * 3 * 256).reshape(t, 3, 256)
    return float(np.mean(hist.min(0).sum(1) / np.maximum(hist.max(0).sum(1), 1)))


def appearance_labels(rgb: np.ndarray, patterns: tuple[str, ...], mode: str = "mode") -> np.ndarray:
    """rgb uint8 [T, H, W, 3] -> [div_loc, div_col, con_loc, con_col] per pattern + [global_col]."""
    labels = []
    for pattern in patterns:
        masks = region_masks(pattern, rgb.shape[1])
        regions = [rgb[:, m] for m in masks]  # [T, N, 3] each
        iou = np.array([colour_iou(r) for r in regions])
        div, con = int(np.argmin(iou)), int(np.argmax(iou))
        labels += [div + 1, dominant_colour(regions[div].reshape(-1, 3), mode),
                   con + 1, dominant_colour(regions[con].reshape(-1, 3), mode)]  # fmt: skip
    labels.append(dominant_colour(rgb.reshape(-1, 3), mode))
    return np.asarray(labels, np.float32)


@dataclass
class ClipStatistics:
    motion: np.ndarray  # float32 [M] (empty when not asked for)
    appearance: np.ndarray  # float32 [A]
    static: bool  # no motion at all: the motion labels are the first region / bin by convention


def clip_statistics(
    motion: np.ndarray | None, rgb: np.ndarray | None, patterns: tuple[str, ...], mode: str = "mode"
) -> ClipStatistics:
    """Motion labels from ``motion`` [T-1, C, H, W] and appearance labels from ``rgb`` uint8 [T, H, W, 3];
    either may be None (its labels are then empty)."""
    empty = np.zeros(0, np.float32)
    m, static = motion_labels(motion, patterns) if motion is not None else (empty, False)
    a = appearance_labels(rgb, patterns, mode) if rgb is not None else empty
    return ClipStatistics(m, a, static)
