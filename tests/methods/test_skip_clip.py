"""Skip-Clip: the sampler hands the context first and the targets at increasing distances, the cell-wise cosine
score and the pairwise hinge equal direct computations (zero when ordered with margin, the margin at chance),
the step ranks the targets the sampler gave in that order, bad configs fail at load; a tiny batch is over-fitted."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.config import load_config
from benchmark.data.samplers import build_sampler
from benchmark.errors import UserError
from benchmark.method import Progress
from benchmark.registry import METHODS
from methods.skip_clip import cellwise_scores, ranking_hinge
from tests.methods.overfit import tiny_method
from tests.methods.test_dpc import fit_tiny_batch

SMALL = ("backbone.inflate=true", "method.clip_len=3", "method.gap=1")


class FrameNumberVideo:
    """Every pixel of frame t holds t: a decoded frame tells which frame it was."""

    def __init__(self, num_frames: int = 48, size: int = 32):
        self.frames = torch.arange(num_frames, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, size, size)
        self.num_frames, self.fps, self.height, self.width = num_frames, 25.0, size, size

    def get_frames(self, indices):
        return self.frames[list(indices)]


@pytest.mark.parametrize("num_targets, clip_len, gap", [(3, 6, 2), (2, 4, 5), (5, 3, 1)])
def test_the_sampler_gives_the_context_then_targets_at_increasing_distances(num_targets, clip_len, gap):
    cfg = load_config(
        None, ["method.name=skip_clip", f"method.num_targets={num_targets}", f"method.clip_len={clip_len}",
               f"method.gap={gap}"],
    )  # fmt: skip
    cls = METHODS.get("skip_clip")
    options = cls.sampler_options(cfg.method, None)
    sampler = build_sampler(cls.sampler, 32, train=False, **options)
    video = FrameNumberVideo()
    for seed in range(3):
        clips = sampler(video, np.random.default_rng(seed))["clips"]
        assert clips.shape[:2] == (1 + num_targets, clip_len)
        # eval transform: uint8 t -> (t / 255 - mean) / std per channel; the red channel back to frame numbers
        frame = ((clips[:, :, 0, 0, 0] * 0.229 + 0.485) * 255).round()
        starts = frame[:, 0]
        assert torch.equal(frame, starts[:, None] + torch.arange(clip_len))  # consecutive frames per clip
        assert torch.equal(starts[1:] - starts[0], (clip_len + gap) * torch.arange(1.0, num_targets + 1))


def test_cellwise_scores_are_the_mean_over_cells_of_the_cosine():
    g = torch.Generator().manual_seed(0)
    context, targets = torch.randn(2, 5, 3, 2, generator=g), torch.randn(2, 4, 5, 3, 2, generator=g)
    scores = cellwise_scores(context, targets)
    for b, m in itertools.product(range(2), range(4)):
        cells = [
            F.cosine_similarity(context[b, :, y, x], targets[b, m, :, y, x], dim=0) for y in range(3) for x in range(2)
        ]
        assert torch.isclose(scores[b, m], torch.stack(cells).mean(), atol=1e-6)
    same = cellwise_scores(context, context[:, None].expand(2, 4, 5, 3, 2))
    assert torch.allclose(same, torch.ones(2, 4))  # a target equal to the context scores 1 at every cell
    assert torch.allclose(cellwise_scores(3 * context, 0.5 * targets), scores, atol=1e-6)  # cosines: scale-free


def test_ranking_hinge_is_zero_when_ordered_with_margin_and_the_pairwise_sum_otherwise():
    ordered = torch.tensor([[0.9, 0.6, 0.3], [0.5, 0.2, -0.2]])  # every gap >= 0.3 > margin 0.1
    loss, pair_acc, rank_acc = ranking_hinge(ordered, margin=0.1)
    assert loss.item() == 0 and pair_acc.item() == 1 and rank_acc.item() == 1
    scores = torch.tensor([[0.3, 0.35, 0.2], [0.1, 0.5, 0.9]])  # one wrong pair; all three pairs wrong
    loss, pair_acc, rank_acc = ranking_hinge(scores, margin=0.1)
    direct = [max(0.0, 0.1 - s[i] + s[j]) for s in scores.tolist() for i in range(3) for j in range(i + 1, 3)]
    assert loss.item() == pytest.approx(sum(direct) / 6)
    assert pair_acc.item() == pytest.approx((2 + 0) / 6) and rank_acc.item() == 0
    ordered_small_gap = torch.tensor([[0.30, 0.25, 0.20]])  # right order, gaps inside the margin: still a loss
    loss, pair_acc, _ = ranking_hinge(ordered_small_gap, margin=0.1)
    assert loss.item() == pytest.approx((0.05 + 0.05 + 0.0) / 3, abs=1e-6) and pair_acc.item() == 1


def test_equal_scores_sit_at_the_stated_chance():
    method, _ = tiny_method("skip_clip", SMALL)
    chance = method.chance(8)
    loss, pair_acc, rank_acc = ranking_hinge(torch.full((4, 3), 0.7), margin=method.cfg.margin)
    assert loss.item() == pytest.approx(chance.loss) and pair_acc.item() == chance.accuracy == 0.5
    assert rank_acc.item() == 0


def test_the_step_ranks_the_targets_by_distance_from_the_context(monkeypatch):
    method, batch = tiny_method("skip_clip", SMALL)
    method.eval()
    with torch.no_grad():
        out = method.training_step(batch, Progress(step=0, total_steps=1))
        maps = method.backbone.forward_features(batch["clips"]).mean(dim=3)  # [B, 1+M, F, h, w]
        scores = cellwise_scores(method.context_head(maps[:, 0]), maps[:, 1:])
        loss, pair_acc, rank_acc = ranking_hinge(scores, method.cfg.margin)
        assert torch.allclose(out.loss, loss) and torch.isclose(out.scalars["accuracy"], pair_acc)
        assert torch.isclose(out.scalars["rank_accuracy"], rank_acc)
        # the targets shown farthest-first: every pair flips, so pair accuracy becomes 1 - accuracy
        flipped = torch.cat([batch["clips"][:, :1], batch["clips"][:, 1:].flip(1)], 1)
        back = method.training_step({**batch, "clips": flipped}, Progress(step=0, total_steps=1))
    assert torch.isclose(back.scalars["accuracy"], 1 - out.scalars["accuracy"], atol=1e-6)
    # the context is clip 0: a step whose context is another clip scores differently
    moved = torch.cat([batch["clips"][:, 1:2], batch["clips"][:, :1], batch["clips"][:, 2:]], 1)
    with torch.no_grad():
        assert not torch.isclose(method.training_step({**batch, "clips": moved}, None).loss, out.loss)


@pytest.mark.parametrize(
    "override, field",
    [
        ("method.num_targets=1", "method.num_targets"),
        ("method.clip_len=0", "method.clip_len"),
        ("method.gap=-1", "method.gap"),
        ("method.margin=0", "method.margin"),
        ("method.context_head=gru", "method.context_head"),
    ],
)
def test_bad_config_fails_at_load_naming_the_field(override, field):
    with pytest.raises(UserError) as exc:
        load_config(None, ["method.name=skip_clip", override])
    assert field in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    losses = fit_tiny_batch("skip_clip", ["method.clip_len=3", "method.gap=1"], steps=5)
    assert losses[0] > 0.02 and sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
