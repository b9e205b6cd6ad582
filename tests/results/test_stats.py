import math

import numpy as np
import pytest

from benchmark.results.stats import align_per_video, paired_bootstrap, summarize, t_quantile


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
    r = paired_bootstrap(np.zeros((3, 200)), n_boot=500)
    assert (r.mean, r.ci_low, r.ci_high) == (0.0, 0.0, 0.0) and not r.excludes_zero


def test_clear_gain_excludes_zero_and_mean_is_exact():
    rng = np.random.default_rng(1)
    base = (rng.random((3, 300)) < 0.3).astype(int)
    better = np.maximum(base, (rng.random((3, 300)) < 0.25).astype(int))
    r = paired_bootstrap(better - base, n_boot=2000)
    assert r.mean == pytest.approx(100 * (better.mean() - base.mean()))
    assert r.excludes_zero and r.ci_low > 5 and r.ci_low < r.mean < r.ci_high


def test_no_true_difference_rarely_claimed():
    # Both rows draw from the same accuracy: a 95% interval should exclude 0 in about 5% of trials.
    rng = np.random.default_rng(0)
    claims = 0
    for _ in range(60):
        p = rng.random(300)[None, :]  # per-video difficulty shared by both rows
        a = (rng.random((3, 300)) < p).astype(int)
        b = (rng.random((3, 300)) < p).astype(int)
        claims += paired_bootstrap(a - b, n_boot=400, seed=int(rng.integers(1 << 30))).excludes_zero
    assert claims <= 8


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
