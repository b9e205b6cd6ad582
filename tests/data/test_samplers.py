"""Samplers: indices, labels and augmentation sharing, on in-memory videos (no decoding)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from benchmark.data.samplers import (
    OPN_ORDERS,
    SAMPLERS,
    ShortVideo,
    adjust_colour,
    build_sampler,
    frame_difference_motion,
)
from benchmark.data.transforms import AugmentConfig

RES = 16
NO_COLOUR = AugmentConfig(jitter=0.0, hue=0.0, gray_p=0.0)


class CountingVideo:
    """Frame k is a distinct random texture; ``static_until`` frames at the start are all identical (no motion)."""

    def __init__(self, num_frames: int = 40, size: int = 20, static_until: int = 0, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.frames = torch.randint(0, 256, (num_frames, 3, size, size), dtype=torch.uint8, generator=g)
        self.frames[:static_until] = self.frames[0]
        self.num_frames = num_frames

    def get_frames(self, indices):
        return self.frames.index_select(0, torch.as_tensor(list(indices), dtype=torch.long))


class StillVideo(CountingVideo):
    """Every frame is the same image: any difference between output frames comes from augmentation."""

    def __init__(self, num_frames: int = 40, size: int = 24):
        super().__init__(num_frames, size)
        self.frames[:] = self.frames[0]


def draw(sampler, video, count: int) -> list[dict]:
    return [sampler(video, np.random.default_rng(seed)) for seed in range(count)]


def shown_frames_match_indices(sampler, video, sample) -> bool:
    """In eval mode the transform is deterministic: the frames must be the named frames, in that order."""
    expected = sampler.transform(video.get_frames(sample["frame_indices"].tolist()))
    return torch.equal(expected, sample["frames"])


def is_monotonic(seq) -> bool:
    steps = np.diff(seq)
    return bool((steps > 0).all() or (steps < 0).all())


def test_every_documented_sampler_is_registered():
    for name in ("frame_pair", "tuple", "opn_tuple", "clip", "multi_clip", "blocks", "frames", "segments", "clips",
                 "cubic_puzzle"):  # fmt: skip
        assert name in SAMPLERS


def test_shuffle_tuple_positives_in_order_negatives_out_of_order():
    video = CountingVideo()
    sampler = build_sampler("tuple", RES, train=False, positive_fraction=0.5, window=12)
    samples = draw(sampler, video, 200)
    labels = [int(s["order_label"]) for s in samples]
    assert 0 < sum(labels) < len(labels)
    for s in samples:
        idx = s["frame_indices"].tolist()
        assert len(set(idx)) == 3 and max(idx) - min(idx) < 12
        assert shown_frames_match_indices(sampler, video, s)
        assert is_monotonic(idx) == bool(s["order_label"]), idx
        if not s["order_label"]:  # the ends are b and d; the middle comes from outside [b, d]
            lo, hi = sorted((idx[0], idx[2]))
            assert not lo < idx[1] < hi
    # both directions occur among positives and among negatives
    firsts_larger = {
        (int(s["order_label"]), s["frame_indices"][0].item() > s["frame_indices"][2].item()) for s in samples
    }
    assert firsts_larger == {(0, False), (0, True), (1, False), (1, True)}


def test_shuffle_tuple_default_positive_fraction_is_a_quarter():
    sampler = build_sampler("tuple", RES, train=False)
    labels = [int(s["order_label"]) for s in draw(sampler, CountingVideo(), 600)]
    assert abs(np.mean(labels) - 0.25) < 0.06  # binomial sd ~0.018


def test_tuple_augmentation_is_shared_across_frames():
    sampler = build_sampler("tuple", RES, train=True)  # crop, flip, colour jitter, gray all on
    for s in draw(sampler, StillVideo(), 10):
        f = s["frames"]
        assert torch.equal(f[0], f[1]) and torch.equal(f[1], f[2])


def test_motion_score_picks_the_moving_part():
    video = CountingVideo(num_frames=60, static_until=45)  # frames 0..44 identical, 45..59 moving
    assert frame_difference_motion(video.get_frames(range(0, 5))) == 0.0
    assert frame_difference_motion(video.get_frames(range(50, 55))) > 0.0

    def moving_share(candidates):
        sampler = build_sampler("tuple", RES, train=False, window=8, motion_candidates=candidates)
        return np.mean([s["frame_indices"].max().item() >= 45 for s in draw(sampler, video, 60)])

    assert moving_share(8) > moving_share(1) + 0.3


def test_opn_classes_are_permutations_up_to_reversal():
    assert len(OPN_ORDERS) == 12
    classes = {}
    for perm in itertools.permutations(range(4)):
        matches = [k for k, o in enumerate(OPN_ORDERS) if o in (perm, perm[::-1])]
        assert len(matches) == 1, perm
        classes.setdefault(matches[0], []).append(perm)
    assert all(len(v) == 2 and v[0] == v[1][::-1] for v in classes.values())


def test_opn_tuple_label_matches_shown_order():
    video = CountingVideo()
    sampler = build_sampler("opn_tuple", RES, train=False)
    samples = draw(sampler, video, 300)
    assert {int(s["order_label"]) for s in samples} == set(range(12))
    for s in samples:
        idx = s["frame_indices"].tolist()
        ranks = tuple(int(r) for r in np.argsort(np.argsort(idx)))  # which temporal rank each shown frame has
        assert ranks in (OPN_ORDERS[int(s["order_label"])], OPN_ORDERS[int(s["order_label"])][::-1])
        assert shown_frames_match_indices(sampler, video, s)


def test_opn_channel_split_makes_each_frame_one_channel():
    sampler = build_sampler("opn_tuple", RES, train=True, channel_split=True, aug=NO_COLOUR)
    f = sampler(CountingVideo(), np.random.default_rng(0))["frames"]
    raw = f * torch.tensor([0.229, 0.224, 0.225])[:, None, None] + torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    assert torch.allclose(raw[:, 0], raw[:, 1], atol=1e-5) and torch.allclose(raw[:, 1], raw[:, 2], atol=1e-5)


@pytest.mark.parametrize("reverse_p", [1e-9, 1.0])
def test_clip_reversal(reverse_p):
    video = CountingVideo()
    sampler = build_sampler("clip", RES, train=False, clip_len=6, stride=3, reverse_p=reverse_p)
    s = sampler(video, np.random.default_rng(3))
    reverse_p = round(reverse_p)
    assert int(s["reversed"]) == reverse_p
    # find which frames were shown: compare with every transformed frame
    every = sampler.transform(video.frames)
    shown = [next(k for k in range(video.num_frames) if torch.equal(every[k], f)) for f in s["clip"]]
    steps = np.diff(shown)
    assert (steps == (-3 if reverse_p else 3)).all(), shown


def test_clip_without_reversal_keeps_its_keys():
    s = build_sampler("clip", RES)(CountingVideo(), np.random.default_rng(0))
    assert set(s) == {"clip"} and s["clip"].shape == (8, 3, RES, RES)


def test_multi_clip_layout_in_temporal_order():
    video = CountingVideo(num_frames=60)
    sampler = build_sampler("multi_clip", RES, train=False, num_clips=3, clip_len=4, stride=2, gap=5)
    s = sampler(video, np.random.default_rng(1))
    assert s["clips"].shape == (3, 4, 3, RES, RES)
    every = sampler.transform(video.frames)
    shown = [[next(k for k in range(60) if torch.equal(every[k], f)) for f in clip] for clip in s["clips"]]
    for k, clip in enumerate(shown):
        assert np.diff(clip).tolist() == [2, 2, 2]
        if k:
            assert clip[0] - shown[k - 1][-1] == 5 + 1  # exactly `gap` unused frames between clips
    assert sampler.frames_needed == 3 * 7 + 2 * 5


def test_multi_clip_shares_augmentation():
    s = build_sampler("multi_clip", RES, clip_len=3, gap=2)(StillVideo(), np.random.default_rng(0))
    flat = s["clips"].flatten(0, 1)
    assert all(torch.equal(flat[0], f) for f in flat)


def test_blocks_are_contiguous_and_non_overlapping():
    video = CountingVideo(num_frames=80)
    sampler = build_sampler("blocks", RES, train=False, num_blocks=4, block_len=3, stride=2)
    s = sampler(video, np.random.default_rng(2))
    assert s["blocks"].shape == (4, 3, 3, RES, RES)
    every = sampler.transform(video.frames)
    shown = [next(k for k in range(80) if torch.equal(every[k], f)) for f in s["blocks"].flatten(0, 1)]
    assert np.diff(shown).tolist() == [2] * 11


def test_blocks_share_crop_but_draw_colour_per_frame():
    video = StillVideo()
    spatial_only = build_sampler("blocks", RES, num_blocks=2, block_len=3, stride=1, aug=NO_COLOUR)
    flat = spatial_only(video, np.random.default_rng(0))["blocks"].flatten(0, 1)
    assert all(torch.equal(flat[0], f) for f in flat)  # one crop/flip for the whole sequence
    torch.manual_seed(0)
    coloured = build_sampler(
        "blocks",
        RES,
        num_blocks=2,
        block_len=3,
        stride=1,
        aug=AugmentConfig(jitter=0.8, hue=0.3, jitter_p=1.0, gray_p=0.0, crop_scale=(1.0, 1.0), flip=False),
    )
    flat = coloured(video, np.random.default_rng(0))["blocks"].flatten(0, 1)
    assert not all(torch.equal(flat[0], f) for f in flat[1:])


def test_vectorised_colour_matches_torchvision_per_frame():
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(3, 3, 8, 8)
    b, c, sat = torch.tensor([0.6, 1.0, 1.4]), torch.tensor([1.3, 0.7, 1.0]), torch.tensor([1.0, 0.5, 1.5])
    out = adjust_colour(x, b.view(3, 1, 1, 1), c.view(3, 1, 1, 1), sat.view(3, 1, 1, 1), torch.zeros(3))
    for t in range(3):
        ref = TF.adjust_saturation(
            TF.adjust_contrast(TF.adjust_brightness(x[t], b[t].item()), c[t].item()), sat[t].item()
        )
        assert torch.allclose(out[t], ref, atol=1e-4)
    ones = torch.ones(3, 1, 1, 1)
    grey = torch.rand(3, 1, 8, 8).expand(3, 3, 8, 8)
    assert torch.allclose(adjust_colour(grey, ones, ones, ones, torch.tensor([0.1, 0.25, -0.3])), grey, atol=1e-5)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 0.8
    turned = adjust_colour(red, ones[:1], ones[:1], ones[:1], torch.tensor([1 / 3]))
    assert turned[0, 1].mean() > turned[0, 0].mean()  # a third of a turn moves red towards green


@pytest.mark.parametrize(
    "name,options",
    [
        ("clip", {"clip_len": 8, "stride": 4}),
        ("multi_clip", {"clip_len": 8}),
        ("blocks", {}),
        ("tuple", {}),
        ("opn_tuple", {}),
        ("cubic_puzzle", {"spatial_p": 0.0}),
    ],
)
def test_short_video_skip_raises_and_loop_pads(name, options):
    short = CountingVideo(num_frames=3)
    with pytest.raises(ShortVideo):
        build_sampler(name, RES, short_video="skip", **options)(short, np.random.default_rng(0))
    sample = build_sampler(name, RES, short_video="loop", **options)(short, np.random.default_rng(0))
    assert all(torch.isfinite(v.float()).all() for v in sample.values())


def test_tuple_window_shrinks_to_a_short_video_instead_of_wrapping():
    video = CountingVideo(num_frames=7)
    sampler = build_sampler("tuple", RES, train=False, window=30, positive_fraction=1.0)
    for s in draw(sampler, video, 30):
        assert is_monotonic(s["frame_indices"].tolist()) and s["frame_indices"].max() < 7


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError):
        build_sampler("multi_clip", RES, clips=3)


# ---------------------------------------------------------------------- frame_pair (TCE)
class RecordingVideo(CountingVideo):
    """Remembers the frame indices asked for (anchor first, then positive)."""

    def get_frames(self, indices):
        self.asked = list(indices)
        return super().get_frames(indices)


def pair_indices(num_frames: int, offset_min: int, offset_max: int, count: int = 300, **kw) -> list[tuple[int, int]]:
    sampler = build_sampler("frame_pair", RES, train=True, offset_min=offset_min, offset_max=offset_max, **kw)
    video = RecordingVideo(num_frames)
    out = []
    for seed in range(count):
        sample = sampler(video, np.random.default_rng(seed))
        t, p = video.asked
        assert int(sample["offset"]) == abs(p - t)
        out.append((t, p))
    return out


def test_frame_pair_offsets_stay_in_range_and_cover_it():
    pairs = pair_indices(40, 1, 4)
    offsets = {abs(p - t) for t, p in pairs}
    assert offsets == {1, 2, 3, 4} and all(0 <= t < 40 and 0 <= p < 40 for t, p in pairs)
    assert all(t != p for t, p in pairs)  # the positive is never the anchor frame


def test_frame_pair_looks_back_near_the_end():
    pairs = pair_indices(40, 3, 3)
    assert any(p == t - 3 for t, p in pairs) and all(p == t - 3 for t, p in pairs if t + 3 >= 40)


def test_a_short_video_never_yields_offset_zero_under_loop():
    for n in (2, 3, 5):  # shorter than offset_max + 1 = 5 (or equal): d among the offsets the video has
        pairs = pair_indices(n, 1, 4, short_video="loop")
        assert all(1 <= abs(p - t) <= n - 1 and 0 <= t < n and 0 <= p < n for t, p in pairs)
    sampler = build_sampler("frame_pair", RES, train=True, offset_min=3, offset_max=4, short_video="loop")
    with pytest.raises(ShortVideo):  # 3 frames cannot hold offset 3: skipped and counted, not d = 0
        sampler(CountingVideo(3), np.random.default_rng(0))
    with pytest.raises(ShortVideo):
        build_sampler("frame_pair", RES, train=True, short_video="skip")(CountingVideo(3), np.random.default_rng(0))


def test_frame_pair_augments_anchor_and_positive_independently():
    sampler = build_sampler("frame_pair", RES, train=True, offset_min=1, offset_max=1)
    still = StillVideo()  # identical frames: any difference comes from augmentation
    differ = [not torch.equal(s["anchor"], s["positive"]) for s in draw(sampler, still, 10)]
    assert all(differ)
    shared = build_sampler("clip", RES, train=True, clip_len=2, stride=1)  # the contrast: one draw for a clip
    assert all(torch.equal(s["clip"][0], s["clip"][1]) for s in draw(shared, still, 10))
