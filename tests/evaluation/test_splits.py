"""Official splits 1-3 (UCF101 and HMDB51) as the evaluation reads them, and selection inside each train split."""

from __future__ import annotations

import pytest

from benchmark.config import load_config
from benchmark.errors import UserError
from benchmark.evaluation import labelled_splits
from benchmark.evaluation.selection import heldout_split

CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
TEST_GROUPS = {1: range(1, 3), 2: range(3, 5), 3: range(5, 7)}  # like UCF101's 1-7 / 8-14 / 15-21, scaled down


def write_ucf(root):
    """6 groups x 2 clips per class; split N tests on TEST_GROUPS[N]. Train lines carry labels, test lines don't."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CLASSES, 1)))
    for split, test_groups in TEST_GROUPS.items():
        train, test = [], []
        for label, c in enumerate(CLASSES, 1):
            name = "HandStandPushups" if c == "HandstandPushups" else c  # the real set's case quirk
            for g in range(1, 7):
                for k in (1, 2):
                    rel = f"{c}/v_{name}_g{g:02d}_c{k:02d}.avi"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    (root / rel).write_bytes(b"x")
                    (test.append(rel) if g in test_groups else train.append(f"{rel} {label}"))
        (lists / f"trainlist0{split}.txt").write_text("\n".join(train) + "\n")
        (lists / f"testlist0{split}.txt").write_text("\n".join(test) + "\n")


def write_hmdb(root):
    """2 classes x 6 clips; in split N clip N-1 is unused (tag 0), clips N and N+1 (mod 6) are test (tag 2)."""
    lists = root / "testTrainMulti_7030_splits"
    lists.mkdir(parents=True)
    for c in ("brush_hair", "cartwheel"):
        (root / c).mkdir()
        for k in range(6):
            (root / c / f"{c}_video_{k}.avi").write_bytes(b"x")
        for split in (1, 2, 3):
            tags = {(split - 1) % 6: 0, split % 6: 2, (split + 1) % 6: 2}
            (lists / f"{c}_test_split{split}.txt").write_text(
                "".join(f"{c}_video_{k}.avi {tags.get(k, 1)}\n" for k in range(6))
            )


@pytest.fixture
def datasets(tmp_path, monkeypatch):
    write_ucf(tmp_path / "UCF101")
    write_hmdb(tmp_path / "hmdb51")
    paths = tmp_path / "paths.yaml"
    paths.write_text(
        f"datasets:\n  ucf: {{root: {tmp_path / 'UCF101'}, format: ucf101}}\n"
        f"  hmdb: {{root: {tmp_path / 'hmdb51'}, format: hmdb51}}\n"
    )
    monkeypatch.setenv("VSSL_PATHS", str(paths))


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_splits(datasets, split):
    train, test = labelled_splits(load_config({}, ["eval.dataset=ucf", f"eval.split={split}"]))
    assert len(train) == 3 * 4 * 2 and len(test) == 3 * 2 * 2 and train.classes == CLASSES
    assert {int(r.group[1:]) for r in test.records} == set(TEST_GROUPS[split])
    assert {int(r.group[1:]) for r in train.records}.isdisjoint(TEST_GROUPS[split])
    assert all(CLASSES[r.label].lower() in r.video_id.lower() for r in (*train.records, *test.records))
    held = heldout_split(train.records, 0.25, seed=split)
    test_ids = {r.video_id for r in test.records}
    assert held.heldout and test_ids.isdisjoint(held.heldout_ids) and test_ids.isdisjoint(r.video_id for r in held.fit)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_hmdb51_splits(datasets, split):
    train, test = labelled_splits(load_config({}, ["eval.dataset=hmdb", f"eval.split={split}"]))
    assert train.classes == ["brush_hair", "cartwheel"] and len(train) == 2 * 3 and len(test) == 2 * 2
    clip = lambda r: int(r.video_id.rsplit("_", 1)[1])  # noqa: E731
    assert {clip(r) for r in test.records} == {split % 6, (split + 1) % 6}
    assert (split - 1) % 6 not in {clip(r) for r in (*train.records, *test.records)}  # tag 0: in neither
    assert {r.video_id for r in train.records}.isdisjoint(r.video_id for r in test.records)


def test_missing_split_is_one_line(datasets):
    with pytest.raises(UserError, match="splits 1, 2, 3"):
        labelled_splits(load_config({}, ["eval.dataset=ucf", "eval.split=4"]))
