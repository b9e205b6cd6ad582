"""3D Cubic Puzzles: the sampler's pieces are the cube's cells in canonical order (raster for a spatial puzzle, time for
a temporal one) with per-piece jitter and channel replication; the step classifies the shuffled pieces against the
order label; bad configs fail at load; a tiny batch is over-fitted."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import methods.cubic_puzzles as cubic
from benchmark.backbones import build_backbone
from benchmark.config import load_config
from benchmark.data.samplers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MIN_PIECE_PX,
    SPATIAL_PUZZLE,
    TEMPORAL_PUZZLE,
    build_sampler,
    puzzle_geometry,
    replicate_channel,
)
from benchmark.data.transforms import AugmentConfig
from benchmark.errors import UserError
from benchmark.method import Progress
from methods.vcop import clip_orders, shuffle_clips
from tests.methods.overfit import record_head, tiny_method
from tests.methods.test_dpc import fit_tiny_batch

RES = 64
NO_AUG = AugmentConfig(crop_scale=(1.0, 1.0), flip=False, jitter=0.0, hue=0.0, gray_p=0.0)


class CodedVideo:
    """A 64 x 64 video whose red channel says the quadrant (40, 80, 120, 160 in raster order), green the frame number
    (4 t) and blue the column (3 x): every pixel of a piece tells where in space and time it came from."""

    def __init__(self, num_frames: int = 32):
        t = torch.arange(num_frames)
        frames = torch.zeros(num_frames, 3, RES, RES, dtype=torch.uint8)
        half = RES // 2
        for q, (r, c) in enumerate(itertools.product(range(2), range(2))):
            frames[:, 0, r * half : (r + 1) * half, c * half : (c + 1) * half] = 40 * (q + 1)
        frames[:, 1] = (4 * t).view(-1, 1, 1).to(torch.uint8)
        frames[:, 2] = (3 * torch.arange(RES)).view(1, 1, RES).to(torch.uint8)
        self.frames = frames
        self.num_frames, self.fps, self.height, self.width = num_frames, 25.0, RES, RES

    def get_frames(self, indices):
        return self.frames[list(indices)]


def raw(pieces: torch.Tensor) -> torch.Tensor:
    """Normalised pieces back to 0..255 values."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((pieces * std + mean) * 255).round()


def puzzle(seed: int, **options) -> dict:
    options = {"aug": NO_AUG, "channel_rep": "off", **options}
    sampler = build_sampler("cubic_puzzle", RES, train=True, **options)
    return sampler(CodedVideo(), np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(6))
def test_spatial_pieces_are_the_four_cells_of_one_time_slot_in_raster_order(seed):
    sample = puzzle(seed, spatial_p=1.0, piece_len=4, piece_scale=0.75)
    pieces = raw(sample["pieces"])
    assert sample["mode"].item() == SPATIAL_PUZZLE and pieces.shape == (4, 4, 3, 24, 24)
    for k in range(4):
        assert pieces[k, :, 0].unique().tolist() == [40.0 * (k + 1)]  # the whole piece lies inside cell k
    frames = pieces[:, :, 1, 0, 0] / 4  # [piece, frame]
    assert (frames == frames[:1]).all()  # one time slot for all four
    assert torch.equal(frames[0], frames[0, 0] + torch.arange(4.0))  # consecutive frames


def test_spatial_pieces_jitter_inside_their_cells():
    offsets = []
    for seed in range(10):
        pieces = raw(puzzle(seed, spatial_p=1.0, piece_scale=0.75)["pieces"])
        for k in range(4):
            left = pieces[k, 0, 2, 0, 0].item() / 3 - 32 * (k % 2)  # the piece's first column inside its cell
            assert 0 <= left <= 32 - 24
            offsets.append(left)
    assert len(set(offsets)) > 4  # offsets vary from piece to piece and sample to sample: no aligned borders


@pytest.mark.parametrize("seed", range(6))
def test_temporal_pieces_follow_each_other_in_time_inside_their_segments(seed):
    sample = puzzle(seed, spatial_p=0.0, piece_len=4, stride=1, tgap=3)
    pieces = raw(sample["pieces"])
    assert sample["mode"].item() == TEMPORAL_PUZZLE and pieces.shape[:2] == (4, 4)
    frames = pieces[:, :, 1, 0, 0] / 4  # [piece, frame]: the frame number of every frame of every piece
    assert torch.equal(frames, frames[:, :1] + torch.arange(4.0))  # each piece: consecutive frames
    starts = frames[:, 0]
    gaps = starts[1:] - (starts[:-1] + 4)  # frames between the end of a piece and the start of the next
    assert (gaps >= 0).all() and (gaps <= 2 * 3).all()  # in temporal order, never overlapping, jittered by <= 2 tgap
    shifted = starts - 7 * torch.arange(4.0)  # each start within [0, tgap] of its segment (segment = 4 + 3)
    assert shifted.max() - shifted.min() <= 3 and starts[-1] + 4 <= 32
    left = pieces[:, 0, 2, 0, 0] / 3  # each piece's first column: one cell-sized window, each piece jittered in it
    assert left.max() - left.min() <= 32 - 28


def test_temporal_pieces_of_a_short_video_stay_in_order():
    sampler = build_sampler("cubic_puzzle", RES, aug=NO_AUG, channel_rep="off", spatial_p=0.0, piece_len=4, tgap=2)
    pieces = raw(sampler(CodedVideo(num_frames=12), np.random.default_rng(0))["pieces"])
    starts = (pieces[:, 0, 1, 0, 0] / 4).tolist()
    assert starts == sorted(starts) and len(set(starts)) == 4  # 24 frames wanted, 12 there: spread, still ordered


def test_both_modes_are_drawn_and_share_one_shape():
    shapes, modes = set(), set()
    for seed in range(12):
        sample = puzzle(seed)
        shapes.add(tuple(sample["pieces"].shape))
        modes.add(sample["mode"].item())
    assert modes == {SPATIAL_PUZZLE, TEMPORAL_PUZZLE} and len(shapes) == 1


@pytest.mark.parametrize("mode", ["piece", "sample"])
def test_channel_replication_copies_one_channel_into_all_three(mode):
    picked = set()
    for seed in range(8):
        pieces = raw(puzzle(seed, channel_rep=mode)["pieces"])
        original = raw(puzzle(seed, channel_rep="off")["pieces"])  # the same draws up to the replication
        chosen = []
        for k in range(4):
            assert torch.equal(pieces[k, :, 0], pieces[k, :, 1]) and torch.equal(pieces[k, :, 1], pieces[k, :, 2])
            chosen.append([c for c in range(3) if torch.equal(pieces[k, :, 0], original[k, :, c])])
        if mode == "sample":  # one channel for the whole sample
            assert set.intersection(*map(set, chosen))
        picked.update(c for options in chosen for c in options)
    assert picked == {0, 1, 2}


def test_replicate_channel_picks_per_row():
    x = torch.arange(3.0).view(1, 3, 1, 1).expand(3, 3, 2, 2)  # channel c holds c
    out = replicate_channel(x, torch.tensor([2, -1, 0]))
    assert out[0].unique().tolist() == [2.0] and torch.equal(out[1], x[1]) and out[2].unique().tolist() == [0.0]


def test_labels_map_onto_the_24_orders():
    orders = clip_orders(4)
    assert len(orders) == 24 and {tuple(o) for o in orders.tolist()} == set(itertools.permutations(range(4)))


def test_training_step_classifies_the_shuffled_pieces_against_their_order_labels(monkeypatch):
    overrides = ("backbone.inflate=true", "method.piece_len=3", "method.tgap=1")
    method, batch = tiny_method("cubic_puzzles", overrides)
    drawn = {}

    def recording_shuffle(pieces, orders, generator=None):
        drawn["pieces"], drawn["labels"] = shuffle_clips(pieces, orders, generator)  # meaning: tested in test_vcop
        return drawn["pieces"], drawn["labels"]

    monkeypatch.setattr(cubic, "shuffle_clips", recording_shuffle)
    seen = record_head(method)
    method.eval()
    with torch.no_grad():
        out = method.training_step(batch, Progress(step=0, total_steps=1))
        per_piece = torch.cat([method.backbone(drawn["pieces"][:, i]) for i in range(4)], 1)
    assert torch.allclose(seen["features"], per_piece, atol=1e-4)  # features concatenated in presentation order
    assert torch.allclose(out.loss, F.cross_entropy(seen["logits"].float(), drawn["labels"]))
    correct = (seen["logits"].argmax(1) == drawn["labels"]).float()
    assert torch.isclose(out.scalars["accuracy"], correct.mean())
    for name, code in (("acc_spatial", SPATIAL_PUZZLE), ("acc_temporal", TEMPORAL_PUZZLE)):
        chosen = batch["mode"] == code
        expected = correct[chosen].mean() if chosen.any() else torch.tensor(float("nan"))
        assert torch.allclose(out.scalars[name], expected, equal_nan=True)
    assert method.chance(8).accuracy == pytest.approx(1 / 24) and method.chance(8).loss == pytest.approx(np.log(24))


@pytest.mark.parametrize(
    "override, field",
    [
        ("method.piece_scale=1.5", "method.piece_scale"),
        ("method.piece_scale=0.3", "method.piece_scale"),
        ("method.spatial_p=2", "method.spatial_p"),
        ("method.channel_rep_p=-0.1", "method.channel_rep_p"),
        ("method.piece_len=0", "method.piece_len"),
        ("method.tgap=-1", "method.tgap"),
        ("method.dropout=1", "method.dropout"),
        ("method.channel_rep=pixel", "method.channel_rep"),
    ],
)
def test_bad_config_fails_at_load_naming_the_field(override, field):
    with pytest.raises(UserError) as exc:
        load_config(None, ["method.name=cubic_puzzles", override])
    assert field in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("resolution, cell, piece", [(64, 32, 28), (112, 56, 49), (32, 20, 18), (16, 20, 18)])
def test_pieces_never_fall_under_what_a_3d_backbone_takes(resolution, cell, piece):
    assert puzzle_geometry(resolution, 0.875) == (cell, piece)
    sampler = build_sampler("cubic_puzzle", resolution, aug=NO_AUG, piece_len=2, tgap=0)
    sample = sampler(CodedVideo(num_frames=8), np.random.default_rng(0))
    assert sample["pieces"].shape == (4, 2, 3, piece, piece) and piece >= MIN_PIECE_PX
    backbone = build_backbone(load_config(None, ["backbone.name=resnet10t", "backbone.inflate=true"]).backbone)
    assert backbone(sample["pieces"]).shape == (4, backbone.num_features)  # the inflated resnet10t takes them


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    losses = fit_tiny_batch("cubic_puzzles", ["method.piece_len=3", "method.tgap=1", "method.dropout=0"], steps=4)
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
