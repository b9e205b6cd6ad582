"""3D RotNet: the label says which rotation was applied; a tiny batch is over-fitted."""

from __future__ import annotations

import pytest
import torch

from benchmark.device import channels_last_frames
from methods.rotnet3d import rotate_clips
from tests.methods.test_dpc import fit_tiny_batch

H = W = 6
# where a marker placed at the top-right pixel lands after k counter-clockwise quarter turns
MARKER_AFTER = {0: (0, W - 1), 1: (0, 0), 2: (H - 1, 0), 3: (H - 1, W - 1)}


def marked_clips(batch: int, frames: int = 3) -> torch.Tensor:
    """[B, T, 3, H, W] zeros with a 1 at the top-right pixel of every frame and channel."""
    clips = torch.zeros(batch, frames, 3, H, W)
    clips[..., 0, W - 1] = 1.0
    return clips


def marker_position(clip: torch.Tensor) -> tuple[int, int]:
    ys, xs = torch.nonzero(clip[0, 0] == 1.0, as_tuple=True)
    assert len(ys) == 1 and torch.equal(clip == 1.0, (clip[:1, :1] == 1.0).expand_as(clip)), (
        "one marker, same in every frame"
    )
    return int(ys[0]), int(xs[0])


@pytest.mark.parametrize("mode", ["all", "one"])
def test_rotation_label_matches_the_rotation_applied(mode):
    rotated, labels = rotate_clips(marked_clips(9), mode, torch.Generator().manual_seed(0))
    assert len(rotated) == len(labels) == (36 if mode == "all" else 9)
    for clip, label in zip(rotated, labels.tolist(), strict=True):
        assert marker_position(clip) == MARKER_AFTER[label]


def test_one_rotation_per_clip_is_balanced_and_random():
    _, a = rotate_clips(marked_clips(10), "one", torch.Generator().manual_seed(0))
    _, b = rotate_clips(marked_clips(10), "one", torch.Generator().manual_seed(1))
    assert torch.bincount(a, minlength=4).tolist() == [3, 3, 2, 2]  # 10 clips: balanced to within one
    assert not torch.equal(a, b)


def test_all_rotations_covers_every_clip_four_times():
    clips = torch.randn(3, 2, 3, H, W)
    rotated, labels = rotate_clips(clips, "all")
    assert labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert torch.equal(rotated[:3], clips)  # label 0 is the clip untouched


def test_channels_last_input_stays_channels_last():
    clips = channels_last_frames(torch.randn(2, 3, 3, H, W))
    rotated, _ = rotate_clips(clips, "all")
    assert rotated.movedim(-3, -1).is_contiguous()


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    losses = fit_tiny_batch("rotnet3d", ["method.clip_len=4"], steps=5)
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
