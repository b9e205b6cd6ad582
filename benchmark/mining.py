"""Hard-negative mining over a memory bank, vectorised over the whole batch, and its threshold schedules.

TCE (Knights et al., "Temporally Coherent Embeddings for Self-Supervised Video
Representation Learning", ICPR 2020, arXiv 2004.02753) draws the K negatives of
each anchor from a memory bank with one slot per video. A similarity threshold
``thr(step)`` rises over training; for each anchor:

1. bank entries with cosine similarity ``>= thr`` and the anchor's own video are
   not eligible as hard negatives (too similar: likely false negatives);
2. the most similar eligible entries are the hard negatives, at most
   ``floor(max_hard_fraction * K)`` of them;
3. the rest are uniform random entries of the whole bank without repetition,
   never the anchor's own video nor a hard one already chosen (an entry above
   the threshold MAY be drawn here: early in training, with ``thr = -1``, every
   negative is such a random one).

Unlike the authors' release this runs one ``[B x N]`` similarity matmul, one
mask and one ``topk`` for the whole batch (the release loops over the batch in
Python with a multinomial over all N entries per row), compares against the
transpose of the bank (the release's ``view`` scrambled the scores), and its
exponential schedule rises (the release's exponent had the wrong sign, so its
threshold never left -1 and it never mined).

>>> import torch
>>> bank = torch.tensor([[0.6, 0.8, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
>>> anchor = bank[:1]                          # video 0; similarities to the bank: 1, .8, .6, 0, 0
>>> mined = mine_negatives(anchor, bank, own_index=torch.tensor([0]), num_negatives=3, threshold=0.7,
...                        max_hard_fraction=1 / 3)
>>> mined.num_hard.tolist(), mined.indices[0, 0].item()   # video 1 is >= thr; video 2 is the hardest eligible
([1], 2)
>>> set(mined.indices[0, 1:].tolist()) <= {1, 3, 4}        # random fill: never video 0, never the hard one
True
>>> ThresholdSchedule("exponential", r=5.0)(step=0, total_steps=100)
-1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

ScheduleKind = Literal["none", "fixed", "exponential", "linear", "step"]
SCHEDULES: tuple[str, ...] = ("none", "fixed", "exponential", "linear", "step")


# --------------------------------------------------------------------------- schedules
def exponential_threshold(step: int, total_steps: int, t_low: float, t_high: float, r: float) -> float:
    """thr = t_low + (t_high - t_low) * (1 - exp(-r * s / S)): rises from t_low towards t_high (the paper's intent)."""
    return t_low + (t_high - t_low) * (1.0 - math.exp(-r * step / max(1, total_steps)))


def linear_threshold(step: int, total_steps: int, t_low: float, t_high: float) -> float:
    """thr = t_low + (t_high - t_low) * s / S."""
    return t_low + (t_high - t_low) * min(1.0, step / max(1, total_steps))


def step_threshold(step: int, total_steps: int, t_low: float, t_high: float, count: int) -> float:
    """A staircase from t_low to t_high in ``count`` equal rises at equal fractions of training (t_high at s = S)."""
    level = math.floor(count * min(1.0, step / max(1, total_steps)))
    return t_low + (t_high - t_low) * level / count


@dataclass(frozen=True)
class ThresholdSchedule:
    """thr(step) for one run; ``None`` means no mining (every negative random).

    kind: none | fixed (``fixed`` throughout) | exponential (rate ``r``) | linear | step (``step_count`` rises).
    """

    kind: ScheduleKind = "exponential"
    t_low: float = -1.0
    t_high: float = 1.0
    r: float = 5.0
    fixed: float = 0.5
    step_count: int = 4

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown mining schedule {self.kind!r}; one of {', '.join(SCHEDULES)}")

    def __call__(self, step: int, total_steps: int) -> float | None:
        if self.kind == "none":
            return None
        if self.kind == "fixed":
            return self.fixed
        if self.kind == "exponential":
            return exponential_threshold(step, total_steps, self.t_low, self.t_high, self.r)
        if self.kind == "linear":
            return linear_threshold(step, total_steps, self.t_low, self.t_high)
        return step_threshold(step, total_steps, self.t_low, self.t_high, self.step_count)


# --------------------------------------------------------------------------- memory bank
def init_bank(num_slots: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One unit-norm slot per video: uniform in +-1/sqrt(dim/3) (the release's init, norm ~1), then normalised."""
    bound = 1.0 / math.sqrt(dim / 3)
    bank = torch.rand(num_slots, dim, generator=generator) * 2 * bound - bound
    return F.normalize(bank, dim=1)


@torch.no_grad()
def momentum_update_(bank: torch.Tensor, index: torch.Tensor, z: torch.Tensor, momentum: float) -> None:
    """In place: ``bank[index] = normalise(m * bank[index] + (1 - m) * z)``; m = 0 overwrites with ``z``."""
    z = z.detach().to(bank.dtype)
    if momentum == 0:
        bank[index] = z
    else:
        bank[index] = F.normalize(momentum * bank[index] + (1 - momentum) * z, dim=1)


# --------------------------------------------------------------------------- mining
@dataclass
class MinedNegatives:
    """K bank rows per anchor; in row b the first ``num_hard[b]`` are the hard ones (most similar first)."""

    indices: torch.Tensor  # [B, K] long
    num_hard: torch.Tensor  # [B] long
    hard_similarity: torch.Tensor  # [B, H]: similarities of the hard candidates; -inf past num_hard[b]
    threshold: float | None  # None: mining off
    # [B]: fraction of the other N - 1 bank entries at or above the threshold (excluded as too similar); NaN
    # when mining is off. Near 1 means the threshold excludes almost the whole bank (e.g. a collapsed embedding)
    bank_above: torch.Tensor | None = None

    def stats(self) -> dict[str, torch.Tensor | float]:
        """Per-step scalars (0-d tensors: no host sync): the threshold (-1 when mining is off: nothing is
        eligible), hard negatives found per anchor, their mean similarity to the anchor (NaN when none
        was found: the training log leaves it out then) and the fraction of the bank at or above the
        threshold (NaN when mining is off)."""
        found = torch.isfinite(self.hard_similarity)
        above = self.bank_above if self.bank_above is not None else torch.full((1,), float("nan"))
        return {
            "mining_threshold": -1.0 if self.threshold is None else float(self.threshold),
            "hard_found": self.num_hard.float().mean(),
            "hard_sim": torch.where(found, self.hard_similarity, 0.0).sum() / found.sum(),  # 0/0 = NaN
            "bank_above_thr": above.float().mean(),
        }


def hard_cap(num_negatives: int, max_hard_fraction: float) -> int:
    """At most this many of the K negatives may be hard."""
    return max(0, min(num_negatives, math.floor(max_hard_fraction * num_negatives + 1e-9)))


@torch.no_grad()
def mine_negatives(
    anchor: torch.Tensor,
    bank: torch.Tensor,
    own_index: torch.Tensor,
    num_negatives: int,
    threshold: float | None,
    max_hard_fraction: float = 1.0,
    generator: torch.Generator | None = None,
) -> MinedNegatives:
    """Hard-negative mining for a batch: anchor [B, D] and bank [N, D] unit-norm, own_index [B] -> MinedNegatives.

    ``threshold=None`` turns mining off (all K negatives uniform random). Similarities are computed
    in fp32 whatever the caller's autocast, so the threshold test is exact.
    """
    b, n = anchor.shape[0], bank.shape[0]
    k = num_negatives
    if not 0 < k <= n - 1:
        raise ValueError(f"need 0 < num_negatives <= bank size - 1, got {k} for a bank of {n}")
    own_index = own_index.to(device=bank.device, dtype=torch.long)
    cap = hard_cap(k, max_hard_fraction)
    hard_idx = torch.empty(b, 0, dtype=torch.long, device=bank.device)
    hard_sim = torch.empty(b, 0, device=bank.device)
    num_hard = torch.zeros(b, dtype=torch.long, device=bank.device)
    bank_above = None
    if threshold is not None and cap > 0:
        with torch.autocast(device_type=bank.device.type, enabled=False):
            sim = anchor.detach().float() @ bank.float().T  # [B, N]: the one matmul
        ineligible = sim >= threshold
        ineligible.scatter_(1, own_index[:, None], True)
        excluded = ineligible.sum(1)  # counted on the bool mask: one pass over floats fewer
        eligible = n - excluded
        bank_above = (excluded - 1).float() / max(n - 1, 1)  # the own slot is always excluded; not counted
        sim.masked_fill_(ineligible, float("-inf"))
        # always the top `cap` (not the top max(eligible)): a fixed shape, so the step never waits for the device
        hard_sim, hard_idx = sim.topk(cap, dim=1)  # sorted: row b's first min(eligible_b, cap) are eligible
        num_hard = eligible.clamp(max=cap)
        hard_idx = torch.where(torch.isfinite(hard_sim), hard_idx, own_index[:, None])  # padding -> an excluded row
    fill = random_fill(n, k, own_index, hard_idx, num_hard, generator)
    indices = _hard_then_fill(hard_idx, num_hard, fill, k)
    return MinedNegatives(indices, num_hard, hard_sim, threshold, bank_above)


def _hard_then_fill(hard_idx: torch.Tensor, num_hard: torch.Tensor, fill: torch.Tensor, k: int) -> torch.Tensor:
    """Row b: hard_idx[b, :num_hard[b]] then fill[b, :k - num_hard[b]]."""
    col = torch.arange(k, device=fill.device)[None, :].expand(fill.shape[0], k)
    from_fill = fill.gather(1, (col - num_hard[:, None]).clamp(min=0))
    if hard_idx.shape[1] == 0:
        return from_fill
    from_hard = hard_idx.gather(1, col.clamp(max=hard_idx.shape[1] - 1))
    return torch.where(col < num_hard[:, None], from_hard, from_fill)


def random_fill(
    n: int,
    k: int,
    own_index: torch.Tensor,
    hard_idx: torch.Tensor,
    num_hard: torch.Tensor,
    generator: torch.Generator | None = None,
    sparse_ratio: float = 8.0,
) -> torch.Tensor:
    """[B, k] bank rows; the first ``k - num_hard[b]`` of row b are a uniform random subset of the rows that are
    neither ``own_index[b]`` nor in ``hard_idx[b]`` (so unique, and disjoint from the hard ones).

    A big bank (n - 1 >= sparse_ratio * k) draws k-plus-margin candidates per row and drops repeats and hard
    ones (cost ~ B x k, plus a dense draw whose rows are used only where the sparse draw came up short, rare);
    a small one ranks the whole bank by random keys (cost ~ B x n). The result is always exact.
    """
    if n - 1 < sparse_ratio * k:
        return _fill_dense(n, k, own_index, hard_idx, generator)
    fill, short = _fill_sparse(n, k, own_index, hard_idx, num_hard, generator)
    # rows the sparse draw left short are redone densely; computed for every row and selected, rather than
    # asking the device which rows are short (a host sync every step)
    return torch.where(short[:, None], _fill_dense(n, k, own_index, hard_idx, generator), fill)


def _fill_dense(
    n: int, k: int, own_index: torch.Tensor, hard_idx: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    keys = torch.rand(own_index.shape[0], n, generator=generator, device=own_index.device)
    keys.scatter_(1, own_index[:, None], float("inf"))
    if hard_idx.shape[1]:
        keys.scatter_(1, hard_idx, float("inf"))
    return keys.topk(k, dim=1, largest=False).indices  # sorted by key: every prefix is a uniform subset


def _fill_sparse(
    n: int,
    k: int,
    own_index: torch.Tensor,
    hard_idx: torch.Tensor,
    num_hard: torch.Tensor,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    b, pool, dev = own_index.shape[0], n - 1, own_index.device
    h = hard_idx.shape[1]
    expected_loss = k * k / (2 * pool) + k * h / pool  # repeats + hits on hard rows, in expectation
    draws = k + int(2 * expected_loss + 4 * math.sqrt(expected_loss + 1) + 32)
    cand = torch.randint(0, pool, (b, draws), generator=generator, device=dev)
    cand = cand + (cand >= own_index[:, None]).long()  # skip the anchor's own slot: uniform over the others
    cand = cand.sort(dim=1).values
    usable = torch.ones_like(cand, dtype=torch.bool)
    usable[:, 1:] = cand[:, 1:] != cand[:, :-1]
    if h:
        hard_sorted = hard_idx.sort(dim=1).values
        pos = torch.searchsorted(hard_sorted, cand).clamp(max=h - 1)
        usable &= hard_sorted.gather(1, pos) != cand
    keys = torch.rand(b, draws, generator=generator, device=dev).masked_fill_(~usable, float("inf"))
    order = keys.topk(k, dim=1, largest=False).indices  # a random order over the usable candidates
    short = usable.sum(1) < (k - num_hard)
    return cand.gather(1, order), short
