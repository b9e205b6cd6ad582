"""Augmentations on video tensors: shared across a clip or independent per frame; random gray; eval."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from benchmark.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    RandomGray,
    augment,
    eval_transform,
    per_frame,
    to_uint8,
    train_transform,
)

PLAIN = AugmentConfig(crop_scale=(1.0, 1.0), flip=False, jitter=0.0, hue=0.0, gray_p=0.0)  # no augmentation


def still_clip(t: int = 6, size: int = 24) -> torch.Tensor:
    """Identical frames with structure (a gradient and a block), uint8 [T, 3, H, W]."""
    g = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
    frame[:, 4:10, 2:20] = torch.tensor([250, 20, 120], dtype=torch.uint8)[:, None, None]
    return frame.expand(t, -1, -1, -1).clone()


def test_shared_augmentation_is_identical_across_the_clip():
    clip = still_clip()
    torch.manual_seed(1)
    out = augment(train_transform(16), clip, shared=True)
    assert out.shape == (6, 3, 16, 16) and out.dtype == torch.float32
    assert all(torch.equal(out[0], f) for f in out[1:])  # same crop, flip, jitter, gray for every frame


def test_per_frame_augmentation_differs_between_frames():
    clip = still_clip()
    torch.manual_seed(1)
    out = augment(train_transform(16), clip, shared=False)
    assert out.shape == (6, 3, 16, 16)
    distinct = {tuple(f.flatten()[:64].tolist()) for f in out}
    assert len(distinct) >= 5  # identical input frames, independent draws
    torch.manual_seed(1)
    assert torch.equal(per_frame(train_transform(16), clip), out)  # seeded: reproducible


def test_same_seed_same_augmentation():
    clip = still_clip()
    torch.manual_seed(7)
    a = augment(train_transform(16), clip)
    torch.manual_seed(7)
    b = augment(train_transform(16), clip)
    assert torch.equal(a, b)


def test_random_gray_copies_one_channel():
    x = torch.stack([torch.full((2, 5, 5), v, dtype=torch.uint8) for v in (10, 20, 30)], dim=1)  # [T=2, C=3, H, W]
    seen = set()
    for seed in range(30):
        torch.manual_seed(seed)
        y = RandomGray(p=1.0)(x)
        assert y.shape == x.shape and torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
        seen.add(int(y[0, 0, 0, 0]))
    assert seen == {10, 20, 30}  # the channel is drawn at random
    assert torch.equal(RandomGray(p=0.0)(x), x)


def test_no_augmentation_config_and_normalisation():
    clip = still_clip(2, 16)
    aug = AugmentConfig(crop_scale=(1.0, 1.0), flip=False, jitter=0.0, hue=0.0, gray_p=0.0)
    torch.manual_seed(0)
    out = augment(train_transform(16, aug), clip)
    expected = (clip.float() / 255 - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[
        :, None, None
    ]
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 30, 40), (4, 3, 40, 30)])
def test_eval_transform_is_deterministic_centre_crop(shape):
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    a, b = eval_transform(16)(x), eval_transform(16)(x)
    assert torch.equal(a, b) and a.shape[-2:] == (16, 16) and a.shape[:-2] == shape[:-2]


def augmented(clip: torch.Tensor, resolution: int, seed: int, **changes) -> torch.Tensor:
    """``clip`` through ``train_transform`` with ``PLAIN`` changed by ``changes``, seeded, back as uint8 frames."""
    torch.manual_seed(seed)
    return to_uint8(augment(train_transform(resolution, dataclasses.replace(PLAIN, **changes)), clip))


def coordinate_clip(size: int = 64) -> torch.Tensor:
    """Red = 4 * column, green = 4 * row: an augmented frame's red and green ranges tell where it was cropped."""
    ramp = torch.arange(size, dtype=torch.uint8) * 4
    frame = torch.stack(
        [ramp.expand(size, size), ramp[:, None].expand(size, size), torch.zeros(size, size, dtype=torch.uint8)]
    )
    return frame[None].clone()


def test_crop_area_is_drawn_from_crop_scale():
    """crop_scale (1, 1) is the whole frame resized; (0.3, 1) draws small and near-full crops alike (a crop always
    at the minimum area would zoom every sample in)."""
    clip = coordinate_clip()
    whole = F.resize(clip, [16, 16], antialias=True)
    assert all(torch.equal(augmented(clip, 16, seed), whole) for seed in range(10))
    areas = []
    for seed in range(30):
        out = augmented(clip, 16, seed, crop_scale=(0.3, 1.0)).int()
        width = (out[0, 0].max() - out[0, 0].min()) / 252
        height = (out[0, 1].max() - out[0, 1].min()) / 252
        areas.append(float(width * height))
    assert min(areas) < 0.4 and max(areas) > 0.65, areas  # crop at the minimum area: all ~0.25-0.3


def test_flip_mirrors_some_samples_only_when_on():
    clip = still_clip(2, 16)
    mirror = clip.flip(-1)
    flipped = [torch.equal(augmented(clip, 16, seed, flip=True), mirror) for seed in range(30)]
    assert any(flipped) and not all(flipped)  # P(no flip in 30) = 2^-30
    assert all(torch.equal(augmented(clip, 16, seed, flip=False), clip) for seed in range(30))


def test_jitter_p_is_the_probability_of_colour_jitter():
    clip = still_clip(2, 16)
    for seed in range(20):
        assert not torch.equal(augmented(clip, 16, seed, jitter=0.5, hue=0.1, jitter_p=1.0), clip)
        assert torch.equal(augmented(clip, 16, seed, jitter=0.5, hue=0.1, jitter_p=0.0), clip)


def test_hue_alone_jitters_colour():
    """A config with hue > 0 and no brightness/contrast/saturation jitter (CMC-like knobs) still shifts hue."""
    clip = still_clip(2, 16)
    for seed in range(20):
        assert not torch.equal(augmented(clip, 16, seed, jitter=0.0, hue=0.25, jitter_p=1.0), clip)


def test_gray_p_is_the_probability_of_gray():
    clip = still_clip(2, 16)
    for seed in range(20):
        gray = augmented(clip, 16, seed, gray_p=1.0)
        assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
        assert torch.equal(augmented(clip, 16, seed, gray_p=0.0), clip)


def normalised(frames: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (frames.float() / 255 - mean) / std


@pytest.mark.parametrize("shape", [(3, 30, 40), (2, 3, 40, 30)])
def test_eval_transform_keeps_the_aspect_ratio(shape):
    """Short side resized, then centre cropped (UCF101 is 320x240): not squashed to a square."""
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = eval_transform(16)(x)
    assert torch.allclose(out, normalised(F.center_crop(F.resize(x, 16, antialias=True), [16, 16])), atol=1e-5)
    assert not torch.allclose(out, normalised(F.resize(x, [16, 16], antialias=True)), atol=0.1)
