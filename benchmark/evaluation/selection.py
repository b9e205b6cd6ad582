"""Model selection data: a held-out part of the TRAIN split, and label-scarce subsets of it.

Selection (fine-tuning epoch, linear-probe weight decay) happens on videos
held out of the train split, never on the test split: TCE and DPC selected on
(part of) the test set, VCOP held out 800 UCF101 / 400 HMDB51 train videos.
The test split is then evaluated once, with the selected setting.

The held-out part is stratified by class and disjoint by group: UCF101 clips
of one group (same actor and scene, ``VideoRecord.group``) are all on the same
side, so held-out accuracy is not inflated by near-duplicates of training
clips. Without a group (HMDB51), clips cut from one source video
("<source>_0", "<source>_1") form a group.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeldoutSplit:
    fit: list  # records the model is trained on
    heldout: list  # records it is selected on

    @property
    def heldout_ids(self) -> list[str]:
        return [r.video_id for r in self.heldout]


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, sum(purpose.encode())])


_CLIP_SUFFIX = re.compile(r"_\d+$")


def _group_key(record) -> str:
    """UCF101: the group (gGG). Otherwise the video id without a trailing clip number: HMDB51 names the clips
    of one source video "<source>_0", "<source>_1", ...; ids without such a suffix are groups of one."""
    return record.group or "clips:" + _CLIP_SUFFIX.sub("", record.video_id)


def _groups_by_class(records: Sequence) -> dict[int, dict[str, list]]:
    """{label: {group key: [records]}} in first-seen order."""
    out: dict[int, dict[str, list]] = defaultdict(dict)
    for r in records:
        out[r.label].setdefault(_group_key(r), []).append(r)
    return out


def heldout_split(records: Sequence, fraction: float, seed: int = 0) -> HeldoutSplit:
    """Hold out about ``fraction`` of each class's videos, in whole groups; the rest is for fitting.

    Per class, groups are visited in a seeded random order and one is taken when that brings the
    held-out count closer to the class's target (at least one group while the class has two or more).
    A class with a single group stays entirely on the fit side. Deterministic for a seed; the order
    of ``records`` is kept on both sides.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return HeldoutSplit(list(records), [])
    rng = _rng(seed, "heldout")
    chosen: set[tuple[int, str]] = set()  # (class, group): UCF101 group numbers repeat across classes
    for label, groups in sorted(_groups_by_class(records).items()):
        if len(groups) < 2:
            continue
        target = fraction * sum(len(v) for v in groups.values())
        keys = list(groups)
        count, taken = 0, 0
        for i in rng.permutation(len(keys)):
            if taken == len(keys) - 1:
                break  # keep at least one group of the class for fitting
            size = len(groups[keys[i]])
            if count == 0 or abs(count + size - target) < abs(count - target):
                chosen.add((label, keys[i]))
                count, taken = count + size, taken + 1
    is_held = [(r.label, _group_key(r)) in chosen for r in records]
    return HeldoutSplit(
        [r for r, h in zip(records, is_held, strict=True) if not h],
        [r for r, h in zip(records, is_held, strict=True) if h],
    )


def label_subset(records: Sequence, fraction: float, seed: int = 0) -> list:
    """A class-stratified random ``fraction`` of ``records`` (at least one video per class), order kept."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return list(records)
    rng = _rng(seed, "labels")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_class[r.label].append(i)
    keep: set[int] = set()
    for _label, idx in sorted(by_class.items()):
        n = max(1, int(round(fraction * len(idx))))
        keep.update(int(idx[j]) for j in rng.permutation(len(idx))[:n])
    return [r for i, r in enumerate(records) if i in keep]
