"""Hard-negative mining and its schedules, checked against brute force on small hand-made banks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.mining import ThresholdSchedule, hard_cap, init_bank, mine_negatives, momentum_update_, random_fill


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _case(n=40, b=6, d=6, seed=0):
    bank = _unit(n, d, seed=seed)
    own = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))[:b]
    anchor = F.normalize(bank[own] + 0.5 * _unit(b, d, seed=seed + 2), dim=1)  # near their own slot, like training
    return anchor, bank, own


@pytest.mark.parametrize("threshold", [-0.2, 0.3, 0.8, 1.5])
def test_hard_negatives_are_exactly_the_top_k_eligible(threshold):
    anchor, bank, own = _case()
    k = 10
    mined = mine_negatives(anchor, bank, own, k, threshold, generator=torch.Generator().manual_seed(0))
    sim = anchor @ bank.T
    for b in range(len(own)):
        eligible = [j for j in range(len(bank)) if j != own[b] and sim[b, j] < threshold]
        expected = sorted(eligible, key=lambda j: -sim[b, j].item())[:k]
        got = mined.indices[b, : mined.num_hard[b]].tolist()
        assert got == expected  # the same entries, most similar first
        assert mined.num_hard[b] == min(k, len(eligible))


def test_never_the_own_video_and_never_a_hard_one_at_or_above_threshold():
    for seed in range(5):
        anchor, bank, own = _case(n=30, b=8, seed=seed)
        thr = 0.1 * seed
        mined = mine_negatives(anchor, bank, own, 12, thr, generator=torch.Generator().manual_seed(seed))
        sim = anchor @ bank.T
        assert not (mined.indices == own[:, None]).any()
        for b in range(len(own)):
            hard = mined.indices[b, : mined.num_hard[b]]
            assert (sim[b, hard] < thr).all()


def test_an_entry_exactly_at_the_threshold_is_not_eligible():
    bank = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    anchor = bank[:1]  # similarities 1, 0.6, 0, -1
    mined = mine_negatives(anchor, bank, torch.tensor([0]), 2, threshold=0.6)
    assert mined.indices[0, : mined.num_hard[0]].tolist() == [2, 3]


def test_hard_count_capped_at_max_hard_fraction():
    anchor, bank, own = _case(n=50)
    mined = mine_negatives(anchor, bank, own, 8, threshold=2.0, max_hard_fraction=0.25)
    assert hard_cap(8, 0.25) == 2 and mined.num_hard.tolist() == [2] * len(own)
    assert hard_cap(100, 0.29) == 29  # 0.29 * 100 is 28.999999999999996 in floating point
    sim = anchor @ bank.T
    sim[torch.arange(len(own)), own] = -math.inf
    assert torch.equal(mined.indices[:, :2], sim.topk(2, dim=1).indices)


@pytest.mark.parametrize("n,k", [(30, 12), (3000, 40)])  # dense fill (small bank) and sparse fill (big bank)
def test_every_row_unique_and_the_fill_excludes_own_and_hard(n, k):
    anchor, bank, own = _case(n=n, b=16, seed=3)
    mined = mine_negatives(
        anchor, bank, own, k, threshold=0.5, max_hard_fraction=0.5, generator=torch.Generator().manual_seed(1)
    )
    assert mined.indices.shape == (16, k)
    assert mined.num_hard.max() > 0
    for b in range(16):
        row = mined.indices[b].tolist()
        assert len(set(row)) == k and own[b].item() not in row and all(0 <= j < n for j in row)


def test_a_bank_with_few_eligible_rows_still_gives_k_distinct_negatives():
    """K = N - 1, every slot may be hard, only 2 rows below the threshold: the 2 hard ones, then the 5 rows above
    the threshold as random fill (they are valid negatives, just not hard ones): each row once, never the own."""
    bank = torch.zeros(8, 2)
    bank[:6, 0] = 1.0  # own slot 0 and rows 1-5: similarity 1 to the anchor, at or above the threshold
    bank[6:, 1] = 1.0  # rows 6-7: similarity 0, eligible
    anchor = torch.tensor([[1.0, 0.0]])
    mined = mine_negatives(anchor, bank, torch.tensor([0]), 7, threshold=0.5, max_hard_fraction=1.0)
    assert mined.num_hard.tolist() == [2] and sorted(mined.indices[0, :2].tolist()) == [6, 7]
    assert sorted(mined.indices[0].tolist()) == [1, 2, 3, 4, 5, 6, 7]


def test_a_sparse_draw_that_comes_up_short_is_redone_densely():
    """A draw of candidates with repeats can hold fewer than K distinct rows (forced here: K = the whole pool on the
    sparse path); those rows are redone, so every row is still K distinct negatives without the own."""
    n, k = 1001, 1000
    own = torch.tensor([0, 500, 1000])
    fill = random_fill(n, k, own, torch.empty(3, 0, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                       torch.Generator().manual_seed(0), sparse_ratio=0.0)  # fmt: skip
    for row, o in zip(fill.tolist(), own.tolist(), strict=True):
        assert sorted(row) == [j for j in range(n) if j != o]


def test_mining_off_and_threshold_minus_one_give_all_random():
    anchor, bank, own = _case()
    for thr in (None, -1.0):
        mined = mine_negatives(anchor, bank, own, 10, thr, generator=torch.Generator().manual_seed(0))
        assert mined.num_hard.sum() == 0
        stats = mined.stats()  # no hard negative: its similarity is NaN, which the training log leaves out
        assert math.isnan(float(stats["hard_sim"])) and stats["mining_threshold"] == -1.0
        assert all(len(set(r)) == 10 for r in mined.indices.tolist())


def test_stats_report_threshold_count_and_mean_similarity():
    anchor, bank, own = _case()
    mined = mine_negatives(anchor, bank, own, 5, 0.4)
    stats = mined.stats()
    sim = anchor @ bank.T
    hard_sims = [sim[b, j].item() for b in range(len(own)) for j in mined.indices[b, : mined.num_hard[b]].tolist()]
    assert stats["mining_threshold"] == 0.4
    assert stats["hard_found"] == pytest.approx(mined.num_hard.float().mean().item())
    assert stats["hard_sim"] == pytest.approx(sum(hard_sims) / len(hard_sims), abs=1e-6)
    # the fraction of the other N - 1 entries at or above the threshold, by brute force
    above = [
        sum(1 for j in range(len(bank)) if j != own[b] and sim[b, j] >= 0.4) / (len(bank) - 1) for b in range(len(own))
    ]
    assert stats["bank_above_thr"] == pytest.approx(sum(above) / len(above), abs=1e-6)
    assert 0 < stats["bank_above_thr"] < 1  # the case has entries on both sides


@pytest.mark.parametrize(("threshold", "expected"), [(-1.0, 1.0), (1.5, 0.0)])
def test_bank_above_threshold_is_all_at_minus_one_and_none_above_one(threshold, expected):
    anchor, bank, own = _case()
    assert mine_negatives(anchor, bank, own, 5, threshold).stats()["bank_above_thr"] == pytest.approx(expected)


def test_bank_above_threshold_is_nan_when_mining_is_off():
    anchor, bank, own = _case()
    assert math.isnan(mine_negatives(anchor, bank, own, 5, None).stats()["bank_above_thr"])


def test_too_many_negatives_is_an_error():
    anchor, bank, own = _case(n=10)
    with pytest.raises(ValueError, match="num_negatives"):
        mine_negatives(anchor, bank, own, 10, None)


@pytest.mark.parametrize("sparse_ratio", [100.0, 0.0])  # 100: the dense path; 0: the sparse one (with its fallback)
def test_random_fill_is_uniform_over_the_allowed_entries(sparse_ratio):
    rows, n, k = 4000, 12, 4
    own = torch.zeros(rows, dtype=torch.long)
    hard = torch.tensor([[1, 2]]).expand(rows, 2).contiguous()
    num_hard = torch.full((rows,), 2)
    fill = random_fill(n, k, own, hard, num_hard, torch.Generator().manual_seed(0), sparse_ratio=sparse_ratio)
    used = fill[:, :2]  # k - num_hard = 2 random picks per row
    assert (used[:, 0] != used[:, 1]).all()
    counts = torch.bincount(used.flatten(), minlength=n)
    assert counts[:3].sum() == 0  # never own (0) nor the hard ones (1, 2)
    expected = rows * 2 / 9  # 9 allowed entries
    sd = math.sqrt(expected * (1 - 2 / 9))
    assert (counts[3:] - expected).abs().max() < 5 * sd, counts.tolist()


def test_random_fill_depends_on_the_generator():
    args = (1000, 30, torch.arange(5), torch.empty(5, 0, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    a = random_fill(*args, generator=torch.Generator().manual_seed(0))
    b = random_fill(*args, generator=torch.Generator().manual_seed(0))
    c = random_fill(*args, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --------------------------------------------------------------------------- schedules
def test_exponential_schedule_matches_the_formula_and_rises():
    t_low, t_high, r, total = -1.0, 1.0, 5.0, 1000
    sched = ThresholdSchedule("exponential", t_low, t_high, r)
    assert sched(0, total) == pytest.approx(-1.0)
    assert sched(total // 2, total) == pytest.approx(-1 + 2 * (1 - math.exp(-2.5)))  # 0.8358
    assert sched(total, total) == pytest.approx(-1 + 2 * (1 - math.exp(-5)))  # 0.9865
    values = [sched(s, total) for s in range(0, total + 1, 50)]
    assert values == sorted(values) and values[1] > -1  # the release's sign error kept it at <= -1


@pytest.mark.parametrize("r", [1.0, 3.0, 10.0])
def test_exponential_rate_sets_the_midpoint(r):
    sched = ThresholdSchedule("exponential", -0.5, 0.9, r)
    assert sched(50, 100) == pytest.approx(-0.5 + 1.4 * (1 - math.exp(-r / 2)))


def test_linear_step_fixed_and_none_schedules():
    lin = ThresholdSchedule("linear", -1.0, 1.0)
    assert [lin(s, 100) for s in (0, 50, 100)] == pytest.approx([-1.0, 0.0, 1.0])
    step = ThresholdSchedule("step", -1.0, 1.0, step_count=4)
    assert [step(s, 100) for s in (0, 24, 26, 50, 100)] == pytest.approx([-1.0, -1.0, -0.5, 0.0, 1.0])
    assert ThresholdSchedule("fixed", fixed=0.3)(77, 100) == 0.3
    assert ThresholdSchedule("none")(50, 100) is None
    with pytest.raises(ValueError):
        ThresholdSchedule("cosine")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bank
def test_momentum_update_leaves_rows_normalised_and_others_untouched():
    bank = init_bank(20, 8, torch.Generator().manual_seed(0))
    assert torch.allclose(bank.norm(dim=1), torch.ones(20))
    before = bank.clone()
    idx = torch.tensor([3, 7, 11])
    z = _unit(3, 8, seed=9)
    momentum_update_(bank, idx, z, momentum=0.5)
    assert torch.allclose(bank.norm(dim=1), torch.ones(20), atol=1e-6)
    assert torch.allclose(bank[idx], F.normalize(0.5 * before[idx] + 0.5 * z, dim=1))
    rest = torch.ones(20, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(bank[rest], before[rest])
    momentum_update_(bank, idx, z, momentum=0.0)
    assert torch.equal(bank[idx], z)
