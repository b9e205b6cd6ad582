"""Held-out split for model selection: stratified by class, disjoint by group, inside the train split."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmark.data.index import VideoRecord
from benchmark.evaluation.selection import heldout_split, label_subset


def ucf_like(classes: int = 5, groups: int = 18, clips: int = 5) -> list[VideoRecord]:
    return [
        VideoRecord(f"/d/C{c}/v_C{c}_g{g:02d}_c{k:02d}.avi", c, f"C{c}/v_C{c}_g{g:02d}_c{k:02d}", f"g{g:02d}")
        for c in range(classes)
        for g in range(8, 8 + groups)
        for k in range(1, clips + 1)
    ]


def test_heldout_is_stratified_and_group_disjoint():
    records = ucf_like()
    split = heldout_split(records, 0.1, seed=0)
    assert len(split.fit) + len(split.heldout) == len(records)
    assert {r.video_id for r in split.fit}.isdisjoint(split.heldout_ids)
    per_class = Counter(r.label for r in split.heldout)
    assert per_class == {c: 10 for c in range(5)}  # target 9 of 90: two groups of 5 is closest
    held_groups = {(r.label, r.group) for r in split.heldout}
    assert not any((r.label, r.group) in held_groups for r in split.fit)  # whole groups only
    assert heldout_split(records, 0.1, seed=0) == split and heldout_split(records, 0.1, seed=1) != split


def test_heldout_without_groups_and_edge_cases():
    records = [VideoRecord(f"/h/{c}/{i}.avi", c, f"{c}/{i}") for c in range(3) for i in range(20)]
    split = heldout_split(records, 0.25, seed=0)
    assert Counter(r.label for r in split.heldout) == {0: 5, 1: 5, 2: 5}
    assert heldout_split(records, 0.0).heldout == []
    single = [
        VideoRecord("/a.avi", 0, "a", "g01"),
        VideoRecord("/b.avi", 0, "b", "g01"),
        VideoRecord("/c.avi", 1, "c", "g02"),
        VideoRecord("/d.avi", 1, "d", "g03"),
    ]
    held = heldout_split(single, 0.5).heldout_ids
    assert held in (["c"], ["d"])  # class 0 has one group: it stays for fitting; class 1 keeps one group
    with pytest.raises(ValueError):
        heldout_split(records, 1.0)


def test_label_subset_stratified():
    records = ucf_like(classes=4, groups=5, clips=4)  # 20 per class
    kept = label_subset(records, 0.1, seed=0)
    assert Counter(r.label for r in kept) == {0: 2, 1: 2, 2: 2, 3: 2}
    assert label_subset(records, 1.0) == records
    assert all(r in records for r in kept)


def test_hmdb_clips_of_one_source_video_stay_together():
    records = [
        VideoRecord(f"/h/{c}/{src}_{k}.avi", c, f"c{c}/{src}_{k}")
        for c in range(2)
        for src in ("April_09_brush_hair_u_nm_np1_ba_goo", "Blonde_hair_u_cm_np2_le_goo", "other_f_nm_np1_fr_med")
        for k in range(3)
    ]
    for seed in range(5):
        split = heldout_split(records, 0.3, seed)
        sources = {(r.label, r.video_id.rsplit("_", 1)[0]) for r in split.heldout}
        assert len(split.heldout) == 2 * 3 and len(sources) == 2  # one whole source video per class
        assert not any((r.label, r.video_id.rsplit("_", 1)[0]) in sources for r in split.fit)


def test_a_small_fraction_still_holds_out_one_group_per_class():
    """Target 2.5 of 50 videos: one group of 5 is no closer than none, but every class gets at least one group."""
    records = ucf_like(classes=3, groups=10, clips=5)
    for seed in range(3):
        split = heldout_split(records, 0.05, seed)
        assert Counter(r.label for r in split.heldout) == {0: 5, 1: 5, 2: 5}, seed


def test_a_group_that_is_only_as_close_to_the_target_is_not_taken():
    """Target 6 of 12 (groups of 4): after one group (4), a second (8) is as far off, not closer: it stays for fitting."""
    records = ucf_like(classes=3, groups=3, clips=4)
    for seed in range(3):
        split = heldout_split(records, 0.5, seed)
        assert Counter(r.label for r in split.heldout) == {0: 4, 1: 4, 2: 4}, seed


def test_a_large_fraction_keeps_a_group_of_every_class_for_fitting():
    """Target 13.5 of 15 (three groups of 5) would take every group; the last one stays on the fit side."""
    records = ucf_like(classes=3, groups=3, clips=5) + [
        VideoRecord(f"/d/C3/v{g}_{k}.avi", 3, f"C3/v{g}_{k}", f"g{g:02d}")
        for g, size in ((1, 1), (2, 9))  # uneven: 1 + 9, target 9
        for k in range(size)
    ]
    for seed in range(6):
        split = heldout_split(records, 0.9, seed)
        assert {r.label for r in split.fit} == {0, 1, 2, 3}, seed
        assert all(Counter(r.label for r in split.heldout)[c] == 10 for c in range(3)), seed
        assert {r.label for r in split.heldout} == {0, 1, 2, 3}, seed


def test_label_subset_rounds_to_nearest_and_keeps_one_per_class():
    """19 per class at 10% is 1.9: 2 videos (rounded, not floored); 4 per class at 10% is 0.4: still 1 video."""
    nineteen = [VideoRecord(f"/l/{c}/{i}.avi", c, f"{c}/{i}") for c in range(3) for i in range(19)]
    assert Counter(r.label for r in label_subset(nineteen, 0.1, seed=0)) == {0: 2, 1: 2, 2: 2}
    four = [VideoRecord(f"/l/{c}/{i}.avi", c, f"{c}/{i}") for c in range(3) for i in range(4)]
    assert Counter(r.label for r in label_subset(four, 0.1, seed=0)) == {0: 1, 1: 1, 2: 1}
