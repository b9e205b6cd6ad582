import math

import numpy as np
import pytest

from benchmark.results.stats import (
    align_per_video,
    interval_sign,
    paired_bootstrap,
    paired_claims,
    paired_difference,
    seed_t_interval,
    summarize,
    t_quantile,
)


@pytest.mark.parametrize("df,expected", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)])
def test_t_quantile_matches_printed_tables(df, expected):
    assert t_quantile(0.95, df) == pytest.approx(expected, abs=1e-3)


def test_summary_of_three_seeds():
    s = summarize([30.0, 32.0, 34.0])
    assert (s.mean, s.std, s.n) == (32.0, 2.0, 3)
    half = 4.3027 * 2.0 / math.sqrt(3)
    assert s.ci_low == pytest.approx(32 - half, abs=1e-3) and s.ci_high == pytest.approx(32 + half, abs=1e-3)
    assert s.contains(30.0) and not s.contains(20.0)


def test_one_seed_has_no_interval():
    s = summarize([41.0, None, float("nan")])
    assert s.n == 1 and s.mean == 41.0 and math.isnan(s.std) and not s.has_ci and not s.contains(41.0)
    assert summarize([]).n == 0


def test_identical_rows_show_no_difference():
    r = paired_difference(np.zeros((3, 200)), n_boot=500)
    assert (r.mean, r.t_low, r.t_high, r.boot_low, r.boot_high) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert not r.excludes_zero and r.claim is None


def test_clear_gain_excludes_zero_and_mean_is_exact():
    rng = np.random.default_rng(1)
    base = (rng.random((3, 300)) < 0.3).astype(int)
    better = np.maximum(base, (rng.random((3, 300)) < 0.25).astype(int))
    r = paired_difference(better - base, n_boot=2000)
    assert r.mean == pytest.approx(100 * (better.mean() - base.mean()))
    assert r.seed_diffs == pytest.approx(tuple(100 * (better - base).mean(1)))
    assert r.excludes_zero and r.claim == "better" and 5 < r.t_low < r.mean < r.t_high
    assert r.boot_low < r.mean < r.boot_high


def test_seeds_that_disagree_are_no_claim_whatever_the_bootstrap_says():
    """The issue's case: DPC minus the 3D control, per-seed differences -1.82 / -6.25 / -6.77."""
    mean, low, high = seed_t_interval([-1.82, -6.25, -6.77])
    assert (round(float(low), 1), round(float(high), 1)) == (-11.7, 1.8)
    # a D matrix with exactly those per-seed top-1 differences over 400 videos
    diff = np.zeros((3, 400))
    for s, k in enumerate((-7, -25, -27)):  # -1.75, -6.25, -6.75 points
        diff[s, : abs(k)] = -1
        diff[s, 200:203] = [1, -1, 0]  # some per-video disagreement in both directions
    r = paired_difference(diff, n_boot=2000)
    assert r.boot_high < 0  # the bootstrap alone would have said "worse"
    assert r.t_low < 0 < r.t_high and not r.excludes_zero and r.claim is None


def test_one_seed_never_supports_a_claim():
    diff = -np.ones((1, 300))  # row worse on every video, but a single training run
    r = paired_difference(diff, n_boot=500)
    assert r.boot_high < 0 and math.isnan(r.t_low) and not r.excludes_zero and r.claim is None
    assert paired_claims(diff[None]).tolist() == [0]


def simulate(rng, n_exp: int, n_seeds: int, n_videos: int, delta: float, seed_sd: float) -> np.ndarray:
    """D[experiment, seed, video] for two rows tested on the same videos.

    Each video has a difficulty (its accuracy) shared by both rows and every seed; each seed adds a random
    effect ``seed_sd`` (accuracy, fraction) to the difference, on top of the true difference ``delta``; per-video
    correctness is then drawn independently for each row, so every per-seed difference also carries its
    test-video noise."""
    p = rng.uniform(0.2, 0.7, (n_exp, 1, n_videos)).astype(np.float32)
    effect = (delta + rng.normal(0.0, seed_sd, (n_exp, n_seeds, 1))).astype(np.float32) / 2
    a = rng.random((n_exp, n_seeds, n_videos), dtype=np.float32) < np.clip(p + effect, 0, 1)
    b = rng.random((n_exp, n_seeds, n_videos), dtype=np.float32) < np.clip(p - effect, 0, 1)
    return a.astype(np.int8) - b.astype(np.int8)


def _claim_rate(rng, n_exp, n_seeds, delta, seed_sd, n_videos=2000, chunk=1000):
    claims, per_seed_sd = [], []
    for start in range(0, n_exp, chunk):
        diff = simulate(rng, min(chunk, n_exp - start), n_seeds, n_videos, delta, seed_sd)
        claims.append(paired_claims(diff))  # the exact rule the reports use
        if n_seeds > 1:
            per_seed_sd.append((100 * diff.mean(-1)).var(-1, ddof=1))
    sd = math.sqrt(np.concatenate(per_seed_sd).mean()) if per_seed_sd else math.nan
    return np.concatenate(claims), sd


def test_simulation_false_claims_at_most_6_percent_with_a_seed_effect():
    """No true difference, seeds that disagree by ~5 points: at most 6% of 4,000 experiments claim one
    (the two-way bootstrap claimed ~16% here; 400 experiments, 1,000 replicates)."""
    claims, sd = _claim_rate(np.random.default_rng(20), 4000, 3, delta=0.0, seed_sd=0.048)
    assert 4.5 < sd < 5.5  # the simulated per-seed paired differences spread as intended
    assert (claims != 0).mean() <= 0.06


def test_simulation_power_at_least_80_percent_for_an_8_point_difference():
    """A true 8-point difference, 3 seeds whose per-seed paired differences have SD ~2: claimed (as 'better')
    in at least 80% of 2,000 experiments."""
    claims, sd = _claim_rate(np.random.default_rng(21), 2000, 3, delta=0.08, seed_sd=0.014)
    assert 1.8 < sd < 2.2
    assert (claims == 1).mean() >= 0.80 and (claims == -1).sum() == 0


def test_simulation_one_seed_never_claims():
    claims, _ = _claim_rate(np.random.default_rng(22), 2000, 1, delta=0.08, seed_sd=0.014, n_videos=500)
    assert (claims == 0).all()


def test_alignment_pairs_by_seed_and_video_id():
    a = {0: (["v2", "v1"], [1, 0]), 1: (["v1", "v2"], [1, 1]), 5: (["v1", "v2"], [0, 0])}
    b = {0: (["v1", "v2"], [0, 0]), 1: (["v2", "v1"], [0, 1])}
    diff, seeds, n = align_per_video(a, b)
    assert seeds == [0, 1] and n == 2
    assert diff.tolist() == [[0, 1], [0, 1]]  # rows: seeds; columns: v1, v2


def test_alignment_refuses_what_cannot_be_paired():
    with pytest.raises(ValueError, match="no common seeds"):
        align_per_video({0: (["v1"], [1])}, {1: (["v1"], [1])})
    with pytest.raises(ValueError, match="different videos"):
        align_per_video({0: (["v1"], [1])}, {0: (["v9"], [1])})


def test_alignment_refuses_seeds_tested_on_different_videos():
    """Seed 1 on a superset (or a subset) of seed 0's videos: pairing on seed 0's list would drop videos (or
    fail with a KeyError) where one line is wanted."""
    both = {0: (["v1", "v2"], [1, 0]), 1: (["v1", "v2", "v3"], [1, 0, 1])}
    with pytest.raises(ValueError, match="differ between seeds"):
        align_per_video(both, both)
    fewer = {0: (["v1", "v2"], [1, 0]), 1: (["v1"], [1])}
    with pytest.raises(ValueError, match="differ between seeds"):
        align_per_video(fewer, fewer)


def test_bootstrap_is_a_two_sided_95_percent_interval_over_videos():
    """One seed of 400 videos with differences in {-1, 0, 1}: the seed resample is trivial, so the interval is
    the video bootstrap's, whose half-width is ~1.96 standard errors of the mean (a 90% interval: 1.64; a
    seed-only resample: 0)."""
    rng = np.random.default_rng(3)
    diff = rng.choice([-1.0, 0.0, 1.0], size=(1, 400), p=[0.3, 0.3, 0.4])
    low, high = paired_bootstrap(diff, n_boot=8000, seed=0)
    se = 100 * diff.std(ddof=1) / math.sqrt(diff.shape[1])
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.06)
    assert low < 100 * diff.mean() < high


def test_bootstrap_repeats_with_its_seed():
    """Reports must repeat: the same seed gives the same interval, another seed another."""
    diff = np.random.default_rng(4).choice([-1.0, 0.0, 1.0], size=(3, 200))
    a, b = paired_difference(diff, n_boot=500, seed=0), paired_difference(diff, n_boot=500, seed=0)
    assert (a.boot_low, a.boot_high) == (b.boot_low, b.boot_high)
    c = paired_difference(diff, n_boot=500, seed=1)
    assert (c.boot_low, c.boot_high) != (a.boot_low, a.boot_high)
    assert (c.t_low, c.t_high) == (a.t_low, a.t_high)  # the seed-level interval has no randomness


@pytest.mark.parametrize(
    "low,high,sign",
    [(0.1, 5.0, 1), (0.0, 5.0, 0), (-5.0, -0.1, -1), (-5.0, 0.0, 0), (-1.0, 1.0, 0), (math.nan, math.nan, 0)],
)
def test_a_claim_needs_an_interval_strictly_on_one_side_of_zero(low, high, sign):
    assert int(interval_sign(low, high)) == sign
