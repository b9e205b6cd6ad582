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


# ---------------------------------------------------------------------- helpers for pixel-encoded videos
class ChannelVideo(CountingVideo):
    """Every frame holds a different constant in each colour plane: which channel a grey frame copies is readable."""

    PLANES = (40, 130, 220)

    def __init__(self, num_frames: int = 40, size: int = 20):
        super().__init__(num_frames, size)
        self.frames[:] = torch.tensor(self.PLANES, dtype=torch.uint8).view(3, 1, 1)


def unnormalise(x: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised [..., 3, H, W] -> uint8-scale values (0..255, rounded)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((x * std + mean) * 255).round()


def copied_channel(frame: torch.Tensor) -> int:
    """The plane of ChannelVideo a single-channel [3, H, W] output frame was copied from."""
    raw = unnormalise(frame)
    assert (raw == raw[0, 0, 0]).all(), "not one channel copied into all three"
    return ChannelVideo.PLANES.index(int(raw[0, 0, 0]))


# ---------------------------------------------------------------------- Shuffle and Learn: what the tuples hold
def test_shuffle_tuple_draws_both_kinds_of_negative():
    """(b,a,d) and (b,e,d): the odd frame comes from before AND from after the ends, else 'middle frame outside
    the ends on the early side' alone would be a shortcut."""
    sampler = build_sampler("tuple", RES, train=False, positive_fraction=0.0, window=12)
    kinds = set()
    for s in draw(sampler, CountingVideo(), 100):
        first, middle, last = s["frame_indices"].tolist()
        assert not min(first, last) < middle < max(first, last)
        kinds.add("before" if middle < min(first, last) else "after")
    assert kinds == {"before", "after"}


def test_shuffle_tuple_positives_and_negatives_share_their_end_frames():
    """With window = 5 the five frames a..e are consecutive: positives are (b,c,d), negatives (b,a,d) or (b,e,d),
    so both classes have ends 2 frames apart and differ only by the middle frame (no end-frame shortcut)."""
    sampler = build_sampler("tuple", RES, train=False, positive_fraction=0.5, window=5)
    labels = set()
    for s in draw(sampler, CountingVideo(), 100):
        first, middle, last = s["frame_indices"].tolist()
        assert abs(first - last) == 2, (first, middle, last)  # the ends are b and d in both classes
        lo = min(first, last)
        if s["order_label"]:
            assert middle == lo + 1  # c, between b and d
        else:
            assert middle in (lo - 1, lo + 3)  # a or e, one frame outside
        labels.add(int(s["order_label"]))
    assert labels == {0, 1}


# ---------------------------------------------------------------------- OPN
def test_opn_channel_split_draws_the_channel_per_frame():
    sampler = build_sampler("opn_tuple", RES, train=True, channel_split=True, aug=NO_COLOUR)
    torch.manual_seed(0)
    channels = [{copied_channel(f) for f in s["frames"]} for s in draw(sampler, ChannelVideo(), 20)]
    assert any(len(c) > 1 for c in channels)  # one channel per sample would hold for all: 4 frames, 1/27 each
    assert set().union(*channels) == {0, 1, 2}


def test_opn_tuple_shows_all_24_orders():
    """Each class is shown in its order or the reverse, so every one of the 24 permutations occurs."""
    sampler = build_sampler("opn_tuple", RES, train=False)
    video = CountingVideo(num_frames=8, size=4)
    shown = set()
    for s in draw(sampler, video, 600):  # 24 orders equally likely: missing one has probability < 1e-9
        shown.add(tuple(int(r) for r in np.argsort(np.argsort(s["frame_indices"].tolist()))))
    assert shown == set(itertools.permutations(range(4)))


def test_order_tuples_stay_inside_their_window_and_use_all_of_it():
    video = CountingVideo(num_frames=40, size=4)
    opn = build_sampler("opn_tuple", RES, train=False, window=6)
    spreads = [int(s["frame_indices"].max() - s["frame_indices"].min()) for s in draw(opn, video, 200)]
    assert max(spreads) == 6 - 1 and min(spreads) >= 3
    # Shuffle and Learn shows at most one of a, e: (b,a,d) or (b,e,d) spans at most window - 2 frames
    sl = build_sampler("tuple", RES, train=False, window=6, positive_fraction=0.0)
    spreads = [int(s["frame_indices"].max() - s["frame_indices"].min()) for s in draw(sl, video, 200)]
    assert max(spreads) == 6 - 2


# ---------------------------------------------------------------------- clip: window placement and length
def test_clip_start_reaches_the_last_window():
    """A video of span + 1 frames has two windows; both must be drawn (the last frame is not dropped)."""
    sampler = build_sampler("clip", RES, train=False, clip_len=4, stride=1)
    video = RecordingVideo(num_frames=5, size=4)
    starts = set()
    for seed in range(60):
        sampler(video, np.random.default_rng(seed))
        starts.add(video.asked[0])
        assert video.asked == list(range(video.asked[0], video.asked[0] + 4))
    assert starts == {0, 1}


def test_clip_frames_needed_is_its_span():
    """clip_len frames at stride cover (clip_len - 1) x stride + 1 frames; a video exactly that long is not skipped."""
    sampler = build_sampler("clip", RES, train=False, clip_len=4, stride=3, short_video="skip")
    assert sampler.frames_needed == 10
    video = RecordingVideo(num_frames=10, size=4)
    for seed in range(5):
        sampler(video, np.random.default_rng(seed))  # no ShortVideo
        assert video.asked == [0, 3, 6, 9]


# ---------------------------------------------------------------------- segments (TSN fine-tuning)
def segment_bounds(num_frames: int, count: int) -> list[tuple[int, int]]:
    """[lo, hi) frame range of each of ``count`` equal segments (edges truncated to frames, at least one frame)."""
    edges = np.linspace(0, num_frames, count + 1)
    return [(int(a), max(int(a) + 1, int(b))) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@pytest.mark.parametrize("num_frames", [30, 10])
def test_segments_draw_a_random_frame_inside_each_segment(num_frames):
    sampler = build_sampler("segments", RES, train=True, count=3)
    video = RecordingVideo(num_frames=num_frames, size=4)
    bounds = segment_bounds(num_frames, 3)
    drawn = [set() for _ in bounds]
    torch.manual_seed(0)
    for seed in range(200):
        sampler(video, np.random.default_rng(seed))
        for k, (i, (lo, hi)) in enumerate(zip(video.asked, bounds, strict=True)):
            assert lo <= i < hi, (num_frames, video.asked, bounds)
            drawn[k].add(i)
    assert all(d == set(range(lo, hi)) for d, (lo, hi) in zip(drawn, bounds, strict=True))  # temporal jitter


def test_segments_share_one_augmentation():
    sampler = build_sampler("segments", RES, train=True, count=4)  # crop, flip, jitter, gray all on
    torch.manual_seed(0)
    for s in draw(sampler, StillVideo(), 5):
        f = s["frames"]
        assert all(torch.equal(f[0], g) for g in f[1:])


# ---------------------------------------------------------------------- clips (3D evaluation)
def test_uniform_clips_cover_the_video_from_first_to_last_frame():
    """Starts evenly spaced from 0 to n - span (ViewSpec('3d').frame_indices does the same at feature extraction)."""
    sampler = build_sampler("clips", RES, count=4, clip_len=8, stride=1)
    video = RecordingVideo(num_frames=40, size=4)
    sampler(video, np.random.default_rng(0))
    assert video.asked == [s + j for s in (0, 11, 21, 32) for j in range(8)]  # linspace(0, 32, 4) rounded
    sampler = build_sampler("clips", RES, count=3, clip_len=4, stride=2)
    sampler(video, np.random.default_rng(0))
    assert video.asked == [s + j for s in (0, 16, 33) for j in (0, 2, 4, 6)]  # span 7: linspace(0, 33, 3)


# ---------------------------------------------------------------------- blocks (DPC): per-frame colour
def blocks_sampler(**aug):
    aug = AugmentConfig(**{"crop_scale": (1.0, 1.0), "flip": False, "jitter": 0.0, "hue": 0.0, "gray_p": 0.0, **aug})
    return build_sampler("blocks", RES, num_blocks=2, block_len=3, stride=1, aug=aug)


def test_blocks_random_gray_draws_the_channel_per_frame():
    sampler = blocks_sampler(gray_p=1.0)
    torch.manual_seed(0)
    channels = [{copied_channel(f) for f in s["blocks"].flatten(0, 1)} for s in draw(sampler, ChannelVideo(), 10)]
    assert any(len(c) > 1 for c in channels)  # one channel per sample: 6 frames agree with probability 1/243


def test_blocks_colour_jitter_is_switched_on_per_frame():
    video = StillVideo()
    plain = blocks_sampler()(video, np.random.default_rng(0))["blocks"].flatten(0, 1)[0]
    sampler = blocks_sampler(jitter=0.5, jitter_p=0.5)
    torch.manual_seed(0)
    mixed = 0
    for s in draw(sampler, video, 10):
        jittered = {not torch.allclose(f, plain, atol=1e-5) for f in s["blocks"].flatten(0, 1)}
        mixed += jittered == {True, False}
    assert mixed > 0  # a sample holds both jittered and untouched frames (6 frames: all alike with p 1/32)


def test_blocks_brightness_contrast_saturation_drawn_per_frame():
    """Hue off: frames of a still video differ only if brightness/contrast/saturation factors differ per frame."""
    sampler = blocks_sampler(jitter=0.5, jitter_p=1.0)
    torch.manual_seed(0)
    for s in draw(sampler, StillVideo(), 3):
        flat = s["blocks"].flatten(0, 1)
        assert not any(torch.allclose(flat[0], f, atol=1e-4) for f in flat[1:])


# ---------------------------------------------------------------------- cubic puzzles
def test_cubic_puzzle_channel_replication_per_piece():
    aug = AugmentConfig(jitter=0.0, hue=0.0, gray_p=0.0)
    sampler = build_sampler("cubic_puzzle", 32, piece_len=2, tgap=1, channel_rep="piece", aug=aug)
    video = ChannelVideo(num_frames=20, size=40)
    torch.manual_seed(0)
    channels = [{copied_channel(p[0]) for p in s["pieces"]} for s in draw(sampler, video, 10)]
    assert any(len(c) > 1 for c in channels)  # 4 pieces share one channel with probability 1/27
    sample_wide = build_sampler("cubic_puzzle", 32, piece_len=2, tgap=1, channel_rep="sample", aug=aug)
    assert all(len({copied_channel(p[0]) for p in s["pieces"]}) == 1 for s in draw(sample_wide, video, 5))


def test_cubic_puzzle_temporal_gaps_vary_within_their_range():
    """Pieces start at a random offset in [0, tgap] of their segments: gaps of 0..2 tgap frames, not always tgap
    (a regular spacing the network could count instead of learning order)."""
    tgap, piece_len = 2, 3
    sampler = build_sampler("cubic_puzzle", 32, train=False, piece_len=piece_len, stride=1, tgap=tgap, spatial_p=0.0)
    video = RecordingVideo(num_frames=40, size=40)
    gaps = set()
    for seed in range(100):
        sampler(video, np.random.default_rng(seed))
        pieces = [video.asked[k * piece_len : (k + 1) * piece_len] for k in range(4)]
        assert all(np.diff(p).tolist() == [1] * (piece_len - 1) for p in pieces)
        gaps |= {b[0] - a[-1] - 1 for a, b in itertools.pairwise(pieces)}
    assert gaps == set(range(2 * tgap + 1))


class PositionVideo(CountingVideo):
    """Pixel (y, x) holds 5x in the red plane and 5y in the green one: a piece's top-left pixel says where it was cut."""

    def __init__(self, num_frames: int = 40, size: int = 40):
        super().__init__(num_frames, size)
        pos = torch.arange(size, dtype=torch.uint8) * 5
        self.frames[:, 0] = pos.view(1, size)
        self.frames[:, 1] = pos.view(size, 1)
        self.frames[:, 2] = 0


def piece_corners(pieces: torch.Tensor) -> list[tuple[int, int]]:
    """(y, x) in the cube of each piece's top-left pixel (first frame), read from PositionVideo's planes."""
    raw = unnormalise(pieces[:, 0, :, 0, 0, None, None])[..., 0, 0]
    return [(int(p[1]) // 5, int(p[0]) // 5) for p in raw]


def test_cubic_puzzle_temporal_pieces_have_their_own_spatial_jitter():
    """The four temporal pieces are cut from one cell-sized window at different offsets (no aligned borders)."""
    sampler = build_sampler("cubic_puzzle", 32, train=False, piece_len=2, tgap=1, spatial_p=0.0)
    assert (sampler.cube, sampler.cell, sampler.piece) == (40, 20, 18)  # the video is the cube: no resize
    video = PositionVideo()
    corners = [piece_corners(s["pieces"]) for s in draw(sampler, video, 10)]
    for c in corners:
        ys, xs = [y for y, _ in c], [x for _, x in c]
        assert max(ys) - min(ys) <= 2 and max(xs) - min(xs) <= 2  # one window, jitter up to cell - piece
    assert any(len(set(c)) > 1 for c in corners)


def test_cubic_puzzle_spatial_pieces_jitter_independently_in_x_and_y():
    sampler = build_sampler("cubic_puzzle", 32, train=False, piece_len=2, tgap=1, spatial_p=1.0)
    video = PositionVideo()
    offsets = []
    for s in draw(sampler, video, 10):
        for (y, x), (cy, cx) in zip(piece_corners(s["pieces"]), [(0, 0), (0, 20), (20, 0), (20, 20)], strict=True):
            assert 0 <= y - cy <= 2 and 0 <= x - cx <= 2  # inside its own cell, raster order
            offsets.append((y - cy, x - cx))
    assert any(dy != dx for dy, dx in offsets)
