"""Numbers behind every table cell: mean +- std over seeds with a 95% interval,
and the paired test of "method minus a control row".

Seed summary
    mean, sample std (ddof 1), n, and the Student-t interval of the mean,
    mean +- t(0.975, n-1) * std / sqrt(n). The t quantile is computed exactly
    for integer degrees of freedom (closed-form CDF, Abramowitz & Stegun
    26.7.3-4, inverted by bisection), so no SciPy is needed.

Paired difference (``paired_difference``)
    Both rows are evaluated on the same test videos, and row A's seed s starts
    from the same initialisation as the baseline's seed s, so the comparison is
    paired twice. From the per-video correctness stored in metrics.json
    (``per_video_correct`` in the order of ``test_video_ids``) we build
    D[s, v] = correct_A(s, v) - correct_B(s, v) over the common seeds and
    videos. The statistic is the mean of D (= mean over seeds of the top-1
    difference). Two intervals are reported:

    * the **seed-level t-interval** (the primary one): the per-seed top-1
      differences d_s = mean_v D[s, v] are the independent units, and the
      interval is mean(d) +- t(0.975, S-1) * sd(d) / sqrt(S). Each d_s already
      contains its test-video noise, so the interval covers training
      randomness and the finite test set together. It needs >= 2 seeds.
    * the two-way percentile bootstrap, for reference: each replicate
      resamples seeds and, independently, test videos with replacement. With
      3 seeds its seed part has 10 distinct resamples and no small-sample
      correction, so its interval is too narrow when seeds disagree: with no
      true difference and ~5 points of seed spread it excluded 0 in 16% of
      400 simulated experiments (1,000 replicates each), against the 5% it
      promises. It is never the basis of a claim.

    A difference ("better" / "worse") is claimed only when the seed-level
    t-interval excludes 0. With one seed no claim is made: the bootstrap then
    covers test videos only, and one training run says nothing about the
    next. Measured by the simulation in tests/results/test_stats.py (3 seeds,
    a seed random effect, per-video noise, the exact rule): no true
    difference, per-seed SD 5: false claims in 4.7% of 4,000 experiments;
    a true 8-point difference, per-seed SD 2: claimed in 89.9% of 2,000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LEVEL = 0.95
# why the bootstrap interval is shown for reference only (the simulation in the module docstring); the paired
# tables and the report both print it
BOOTSTRAP_CAVEAT = (
    "with few seeds it is too narrow (with 3 seeds, in simulation, it excluded 0 in ~16% of experiments with no "
    "true difference, the t-interval in 5%; benchmark/results/stats.py)"
)


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample std (ddof 1); nan when n == 1
    n: int
    ci_low: float  # Student-t interval of the mean; nan when n == 1
    ci_high: float

    @property
    def has_ci(self) -> bool:
        return self.n > 1 and math.isfinite(self.ci_low)

    def contains(self, value: float) -> bool:
        return self.has_ci and self.ci_low <= value <= self.ci_high


def _t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df (A&S 26.7.3 odd df, 26.7.4 even df)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        if df == 1:
            return 2 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(1, (df - 1) // 2):  # 1 + 2/3 c2 + (2*4)/(3*5) c2^2 + ...
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return (2 / math.pi) * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for k in range(1, df // 2):  # 1 + 1/2 c2 + (1*3)/(2*4) c2^2 + ...
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


@lru_cache(maxsize=256)
def t_quantile(level: float, df: int) -> float:
    """t such that P(|T| <= t) = level (the two-sided critical value) for integer df >= 1."""
    if df < 1:
        raise ValueError("df must be >= 1")
    hi = 1.0
    while _t_two_sided_mass(hi, df) < level:
        hi *= 2
    lo = 0.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if _t_two_sided_mass(mid, df) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """Mean, sample std, n and the t interval of the mean over the finite values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = t_quantile(level, n - 1) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


# --------------------------------------------------------------------------- paired test
PRIMARY = "seed-level t-interval"


def interval_sign(low, high) -> np.ndarray:
    """The claim rule on an interval of a difference: +1 (better) when it lies above 0, -1 (worse) below, 0 when
    it includes 0 or is undefined (nan). PairedResult.claim and the simulations' paired_claims both use it."""
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(low) > 0, 1, np.where(np.asarray(high) < 0, -1, 0)).astype(int)


@dataclass(frozen=True)
class PairedResult:
    mean: float  # mean difference, percentage points
    seed_diffs: tuple[float, ...]  # per-seed top-1 differences (points), in seed order
    t_low: float  # seed-level t-interval of mean(seed_diffs); nan with one seed (the primary interval)
    t_high: float
    boot_low: float  # two-way (seeds x videos) percentile bootstrap, for reference only
    boot_high: float
    n_seeds: int
    n_videos: int
    n_boot: int
    level: float = LEVEL

    @property
    def has_claim_basis(self) -> bool:
        """A claim needs the seed-level interval, i.e. >= 2 seeds."""
        return self.n_seeds >= 2 and math.isfinite(self.t_low)

    @property
    def sign(self) -> int:
        """+1 / -1 when the primary interval lies above / below 0, else 0 (always 0 with one seed)."""
        return int(interval_sign(self.t_low, self.t_high)) if self.has_claim_basis else 0

    @property
    def excludes_zero(self) -> bool:
        return self.sign != 0

    @property
    def claim(self) -> str | None:
        """'better', 'worse' or None (no difference claimed)."""
        return {1: "better", -1: "worse"}.get(self.sign)


def seed_t_interval(seed_diffs, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) of the t-interval over the last axis of ``seed_diffs`` (any leading shape, e.g.
    [experiments, seeds] in a simulation); low/high are nan where there are fewer than 2 seeds."""
    d = np.asarray(seed_diffs, dtype=float)
    n = d.shape[-1]
    mean = d.mean(-1)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return mean, nan, nan
    half = t_quantile(level, n - 1) * d.std(-1, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_claims(diff, level: float = LEVEL) -> np.ndarray:
    """The claim rule on D[..., seeds, videos] (any leading shape): +1 better, -1 worse, 0 no claim.

    Vectorised so that a simulation of thousands of experiments runs the exact rule the reports use.
    """
    d = np.asarray(diff, dtype=float)
    _, low, high = seed_t_interval(100.0 * d.mean(-1), level)
    return interval_sign(low, high)


def paired_bootstrap(diff: np.ndarray, n_boot: int = 10000, level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Two-way (seeds x videos) percentile bootstrap interval of mean(diff) in points; diff is [seeds, videos]."""
    diff = np.asarray(diff, dtype=float)
    if diff.ndim != 2 or diff.size == 0:
        raise ValueError("diff must be a non-empty [seeds, videos] matrix")
    s, v = diff.shape
    rng = np.random.default_rng(seed)
    # Multinomial counts are the same resample as drawing indices with replacement, and let
    # one matrix product evaluate every replicate: stat_b = c_seed_b . D . c_video_b / (S V).
    seed_counts = rng.multinomial(s, np.full(s, 1 / s), size=n_boot).astype(float)
    video_counts = rng.multinomial(v, np.full(v, 1 / v), size=n_boot).astype(float)
    stats = ((seed_counts @ diff) * video_counts).sum(1) / (s * v)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return 100 * float(lo), 100 * float(hi)


def paired_difference(diff: np.ndarray, n_boot: int = 10000, level: float = LEVEL, seed: int = 0) -> PairedResult:
    """Both intervals of mean(diff) for D [seeds, videos] in {-1, 0, 1}; claims rest on the seed-level one."""
    diff = np.asarray(diff, dtype=float)
    boot_low, boot_high = paired_bootstrap(diff, n_boot, level, seed)
    seed_diffs = 100.0 * diff.mean(1)
    _, t_low, t_high = seed_t_interval(seed_diffs, level)
    return PairedResult(
        100 * float(diff.mean()),
        tuple(float(x) for x in seed_diffs),
        float(t_low),
        float(t_high),
        boot_low,
        boot_high,
        diff.shape[0],
        diff.shape[1],
        n_boot,
        level,
    )


def align_per_video(
    a: dict[int, tuple[list, list]], b: dict[int, tuple[list, list]]
) -> tuple[np.ndarray, list[int], int]:
    """Per-seed {seed: (video_ids, correct)} of two rows -> (D [seeds, videos], common seeds, n videos).

    Raises ValueError when the rows share no seed or were tested on different videos
    (then they cannot be paired, and no difference is claimed).
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"no common seeds (row {sorted(a)}, baseline {sorted(b)})")
    ids = None
    rows = []
    for s in seeds:
        ca, cb = _by_id(*a[s]), _by_id(*b[s])
        if set(ca) != set(cb):
            raise ValueError(f"seed {s}: the two rows were tested on different videos")
        if ids is None:
            ids = sorted(ca)
        elif set(ca) != set(ids):
            raise ValueError(f"seed {s}: test videos differ between seeds")
        rows.append([ca[i] - cb[i] for i in ids])
    return np.asarray(rows, dtype=float), seeds, len(ids or [])


def _by_id(ids: list, correct: list) -> dict:
    if len(ids) != len(correct):
        raise ValueError("test_video_ids and per_video_correct differ in length")
    return {str(i): int(bool(c)) for i, c in zip(ids, correct, strict=True)}
