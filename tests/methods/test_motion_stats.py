"""MAS (motion and appearance statistics): the partition patterns, what each label means on clips whose answer is
known, the R^2 bookkeeping of the pretext check, the static config checks, and a tiny over-fitting run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.config import load_config
from benchmark.data.flow import StatsClip
from benchmark.data.statistics import (
    OCTANT_CODE,
    appearance_label_names,
    appearance_labels,
    clip_statistics,
    component_motion_labels,
    dominant_colour,
    motion_label_names,
    region_masks,
)
from benchmark.errors import UserError
from benchmark.method import Progress
from tests.data.test_flow import TensorVideo, texture

PATTERNS = ("blocks", "rings", "triangles")


# --------------------------------------------------------------------------- patterns
@pytest.mark.parametrize("size", [32, 64, 112])
def test_patterns_cover_the_frame_with_the_papers_geometry(size):
    blocks, rings, triangles = (region_masks(p, size) for p in PATTERNS)
    assert blocks.shape[0] == 16 and (blocks.sum(0) == 1).all()  # a partition
    assert blocks[4, size // 4, 0] and blocks[1, 0, size // 4]  # raster order: block 5 starts row 2, block 2 column 2
    assert rings.shape[0] == 4 and (rings.sum(0) == 1).all()
    assert [int(r.sum()) for r in rings] == [(size // 4) ** 2, (size // 2) ** 2 - (size // 4) ** 2,
                                             (3 * size // 4) ** 2 - (size // 2) ** 2, size**2 - (3 * size // 4) ** 2]  # fmt: skip
    assert rings[0, size // 2, size // 2] and rings[3, 0, 0]  # 1 = the centre, 4 = the border
    q = size // 2
    assert triangles.shape[0] == 8 and [int(t.sum()) for t in triangles] == [q * (q + 1) // 2] * 8  # 528 at 64 px
    assert (triangles.sum(0) >= 1).all()  # the diagonals belong to two triangles, nothing is left out
    # every quadrant's diagonal runs from its outer corner to the frame's centre
    assert triangles[0, 0, 0] and triangles[1, 0, 0] and triangles[6, -1, -1] and triangles[7, -1, -1]
    assert triangles[2, 0, -1] and triangles[3, 0, -1] and triangles[4, -1, 0] and triangles[5, -1, 0]


def test_pattern_sizes_must_divide_by_eight():
    with pytest.raises(ValueError, match="divisible by 8"):
        region_masks("rings", 36)


def test_label_names_follow_the_release_order():
    assert motion_label_names(PATTERNS)[:4] == ["u_loc_blocks", "u_dir_blocks", "v_loc_blocks", "v_dir_blocks"]
    assert motion_label_names(PATTERNS)[-2:] == ["u_frame", "v_frame"] and len(motion_label_names(PATTERNS)) == 14
    assert len(appearance_label_names(PATTERNS)) == 13 and appearance_label_names(PATTERNS)[-1] == "global_col"


# --------------------------------------------------------------------------- motion labels
def ramp(size: int, ax: float, ay: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return ax * x + ay * y


@pytest.mark.parametrize(("ax", "ay", "direction"), [(-1, 0, 1), (-1, -1, 2), (0, -1, 3), (1, 0, 5), (0, 1, 7)])
def test_direction_label_is_the_motion_boundary_orientation(ax, ay, direction):
    """The release's convolution gives MBx = c(x-1) - c(x+1): a component DEcreasing to the right points at 0
    degrees (label 1); 45-degree bins counter-clockwise in image coordinates (y down), labels 1..8."""
    field = np.stack([ramp(32, ax, ay)] * 3)  # [T-1 = 3, H, W]
    labels, frame, _ = component_motion_labels(field, ("blocks",))
    assert labels[1] == direction


def test_location_label_is_the_region_of_largest_motion():
    field = np.zeros((4, 64, 64))
    field[:, 41:47, 18:24] = 2.0  # a moving patch inside block 10 (row 3, column 2: rows 32-47, columns 16-31)
    labels, frame, total = component_motion_labels(field, PATTERNS)
    blocks_loc, rings_loc, triangles_loc = labels[0], labels[2], labels[4]
    assert blocks_loc == 10
    assert rings_loc == 2  # inside [16, 48)^2, outside the centre [24, 40)^2
    assert triangles_loc in (5, 6)  # the bottom-left quadrant
    assert total > 0


def test_frame_label_is_the_time_step_of_most_motion():
    field = np.zeros((5, 32, 32))
    field[3, 8:16, 8:16] = 1.0  # motion only between frames 4 and 5 (step index 3)
    _, frame, _ = component_motion_labels(field, ("blocks",))
    assert frame == 4


def test_a_still_clip_is_static_and_takes_the_first_region():
    stats = clip_statistics(np.zeros((3, 2, 32, 32), np.float32), None, PATTERNS)
    assert stats.static and stats.motion.tolist() == [1.0] * 12 + [1.0, 1.0] and stats.appearance.size == 0


# --------------------------------------------------------------------------- appearance labels
def test_octant_codes():
    red, cyan, white, black = (255, 0, 0), (0, 200, 200), (255, 255, 255), (10, 10, 10)
    codes = [dominant_colour(np.array([c] * 3, np.uint8)) for c in (red, cyan, white, black)]
    assert codes == [7, 2, 4, 5] and OCTANT_CODE[0b001] == 1 and OCTANT_CODE[0b110] == 8


def test_mode_is_the_most_frequent_exact_colour_and_octant_the_most_populated_octant():
    # 3 pixels of one exact red, 4 pixels of four different blues: the mode is red, the largest octant blue
    pixels = np.array([(250, 0, 0)] * 3 + [(0, 0, 200 + k) for k in range(4)], np.uint8)
    assert dominant_colour(pixels, "mode") == 7 and dominant_colour(pixels, "octant") == 1


def test_appearance_labels_on_a_clip_with_one_changing_block():
    """A red clip whose block 7 flickers between blue and green: block 7 is the most diverse region (label 7,
    colour blue or green), block 1 the most constant (red), and the clip is red overall."""
    rgb = np.zeros((4, 32, 32, 3), np.uint8)
    rgb[..., 0] = 255
    for t in range(4):
        rgb[t, 8:16, 16:24] = (0, 0, 255) if t % 2 else (0, 255, 0)
    labels = appearance_labels(rgb, ("blocks",))
    div_loc, div_col, con_loc, con_col, global_col = labels.tolist()
    assert (div_loc, con_loc, con_col, global_col) == (7, 1, 7, 7)
    assert div_col in (1, 6)  # blue (1) or green (6): each fills half of the region's pixels


# --------------------------------------------------------------------------- the sampler: labels of a known motion
def moving_patch_video(frames: int = 8, size: int = 64) -> TensorVideo:
    """A static texture with a textured 10-px patch moving right 1 px per frame inside block 6 (rows and columns
    16-31 of 64)."""
    background = texture(size, seed=1)
    patch = texture(10, seed=2) * 0.3 + 150
    out = []
    for k in range(frames):
        frame = background.copy()
        frame[19:29, 17 + k : 27 + k] = patch
        out.append(frame)
    return TensorVideo(torch.from_numpy(np.stack(out).astype(np.uint8))[:, None].expand(-1, 3, -1, -1).contiguous())


@pytest.mark.parametrize("source", ["flow", "difference"])
def test_sampler_labels_locate_a_known_motion(source):
    sampler = StatsClip(resolution=64, train=False, clip_len=5, motion_source=source)
    sample = sampler(moving_patch_video(), np.random.default_rng(0))
    assert sample["clip"].shape == (5, 3, 64, 64)
    motion = sample["motion_label"].tolist()
    assert len(motion) == (14 if source == "flow" else 7) and sample["app_label"].shape == (13,)
    assert motion[0] == 6  # u (or d)'s largest motion boundaries lie in block 6
    assert sample["static"].item() == 0


# --------------------------------------------------------------------------- the method
def tiny(overrides=()):
    from tests.methods.overfit import tiny_method

    return tiny_method("motion_stats", ("backbone.inflate=true", "method.clip_len=4", *overrides))


def test_r2_baseline_is_the_running_mean_of_training_targets():
    method, batch = tiny()
    targets = method.targets(batch)
    method.train()
    method.training_step(batch, Progress(0, 10))
    assert method.target_count.item() == len(targets)
    assert torch.allclose(method.target_mean, targets.mean(0))
    half = {k: v[:4] for k, v in batch.items()}
    method.training_step(half, Progress(1, 10))  # running mean over all 12 targets seen
    assert torch.allclose(method.target_mean, torch.cat([targets, targets[:4]]).mean(0), atol=1e-5)
    # predicting exactly the training mean scores R^2 = 0 (sse == sst)
    for head, part in (
        (method.motion_head, slice(0, method.num_motion)),
        (method.app_head, slice(method.num_motion, None)),
    ):
        torch.nn.init.zeros_(head.weight)
        head.bias.data.copy_(method.target_mean[part])
    method.eval()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    with torch.no_grad():
        out = method.pretext_eval(batch, Progress(0, 10))
    assert torch.allclose(out["sse"], out["sst"]) and out["sst"] > 0
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())  # the mean is never updated here
    assert method.chance(8).measure == "r2"


def test_loss_is_motion_mse_plus_weighted_appearance_mse():
    method, batch = tiny(("method.appearance_weight=0.5",))
    method.train()
    out = method.training_step(batch, Progress(0, 10))
    assert out.loss.item() == pytest.approx(out.scalars["loss_motion"].item() + 0.5 * out.scalars["loss_app"].item(),
                                            rel=1e-5)  # fmt: skip


def test_normalised_labels_divide_by_their_number_of_values():
    method, batch = tiny(("method.normalise_labels=true",))
    target = method.targets(batch)
    assert target.max() <= 1 and target.min() > 0
    assert method.cfg.label_ranges()[:4] == [16, 8, 16, 8] and method.cfg.label_ranges()[12:14] == [3, 3]


def test_map_head_reads_the_flattened_feature_map_and_the_probe_moves_no_statistic():
    pooled, batch = tiny()
    method, _ = tiny(("method.head=map",))
    # the shape probe ran in eval mode: every BatchNorm buffer equals a fresh backbone's, and the mode is back
    assert method.backbone.training == pooled.backbone.training
    fresh = pooled.backbone.state_dict()
    stats = [k for k in fresh if "running" in k]
    assert stats and all(torch.equal(method.backbone.state_dict()[k], fresh[k]) for k in stats)
    with torch.no_grad():
        maps = method.backbone.eval().forward_features(batch["clip"])  # [B, F, t, h, w]
    assert maps.dim() == 5 and maps.shape[0] == len(batch["clip"])
    assert method.motion_head.in_features == maps[0].numel() != pooled.motion_head.in_features
    assert method.app_head.in_features == maps[0].numel()
    method.train()
    out = method.training_step(batch, Progress(0, 10))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    first = next(p for p in method.backbone.parameters() if p.dim() == 5)  # the stem's first conv
    assert first.grad is not None and first.grad.abs().sum() > 0  # the loss reaches the backbone through the map


@pytest.mark.parametrize(("override", "field"), [("method.patterns=[blocks,hexagons]", "method.patterns"),
                                                 ("method.motion_source=optical", "method.motion_source"),
                                                 ("method.dominant_colour=median", "method.dominant_colour"),
                                                 ("method.clip_len=1", "method.clip_len"),
                                                 ("method.head=fc", "method.head")])  # fmt: skip
def test_bad_values_fail_at_load_naming_the_field(override, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_config(None, ["method.name=motion_stats", override])


def test_resolution_must_suit_the_patterns():
    from benchmark.method import DataInfo
    from methods.motion_stats import MotionStats

    cfg = load_config(None, ["method.name=motion_stats"]).method
    with pytest.raises(UserError, match="multiple of 8"):
        MotionStats.check(cfg, DataInfo(num_videos=10, resolution=36))


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    from tests.methods.overfit import fell_clearly, overfit_losses

    method, batch = tiny(("method.normalise_labels=true",))
    losses = overfit_losses(method, batch, steps=25, lr=3e-3)
    assert fell_clearly(losses, 0.5), losses
