"""Augmentations on video tensors: shared across a clip or independent per frame; random gray; eval."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    RandomGray,
    augment,
    eval_transform,
    per_frame,
    train_transform,
)


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
