"""Dataset indexes: UCF101 split files (case quirks, missing files, frame folders) and class folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.datasets import BUILDERS, VideoIndex, VideoRecord, build_index, register_format
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation


def _ucf(tmp_path: Path, lists_beside_root: bool = False) -> Path:
    root = tmp_path / "UCF101"
    lists = (tmp_path if lists_beside_root else root) / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\n"
        "HandstandPushups/v_HandStandPushups_g09_c02.avi 2\n"   # missing on disk
        "YoYo/v_YoYo_g10_c03.avi 3\n"                            # stored as a frame folder
        "\n")
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
        "HandstandPushups/v_HandStandPushups_g02_c01.avi\r\n"
        "YoYo/v_YoYo_g01_c01.avi\r\n")                           # missing
    for rel in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
                "HandStandPushups/v_HandStandPushups_g08_c01.avi", "HandStandPushups/v_HandStandPushups_g02_c01.avi"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / "YoYo" / "v_YoYo_g10_c03").mkdir(parents=True)
    (root / "YoYo" / "v_YoYo_g10_c03" / "img_00001.jpg").write_bytes(b"x")
    return root


def test_ucf101_train(tmp_path):
    root = _ucf(tmp_path)
    index = build_index(DatasetLocation("ucf", root, "ucf101"), split=1, subset="train")
    assert isinstance(index, VideoIndex) and index.format == "ucf101" and index.root == root
    assert index.classes == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert [(Path(r.path).relative_to(root).as_posix(), r.label, r.group) for r in index.records] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0, "g08"),
        ("HandStandPushups/v_HandStandPushups_g08_c01.avi", 1, "g08"),  # folder differs in case
        ("YoYo/v_YoYo_g10_c03", 2, "g10"),  # frame folder named by the stem
    ]
    assert index.records[1].video_id == "HandstandPushups/v_HandStandPushups_g08_c01"
    assert index.missing == ["HandstandPushups/v_HandStandPushups_g09_c02.avi"]


def test_ucf101_test_labels_from_folder(tmp_path):
    root = _ucf(tmp_path, lists_beside_root=True)  # ROOT/../ucfTrainTestlist
    index = build_index(DatasetLocation("ucf", root, "ucf101"), subset="test")
    assert [(r.video_id, r.label) for r in index.records] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01", 0), ("HandstandPushups/v_HandStandPushups_g02_c01", 1)]
    assert index.missing == ["YoYo/v_YoYo_g01_c01.avi"]
    everything = build_index(DatasetLocation("ucf", root, "ucf101"), subset="all")
    assert len(everything) == 5 and len(everything.missing) == 2
    assert len({r.video_id for r in everything.records}) == 5


def test_ucf101_errors(tmp_path):
    root = _ucf(tmp_path)
    loc = DatasetLocation("ucf", root, "ucf101")
    with pytest.raises(UserError, match="missing .*trainlist02"):
        build_index(loc, split=2)
    with pytest.raises(UserError, match="splits 1, 2, 3"):
        build_index(loc, split=4)
    with pytest.raises(UserError, match="subset"):
        build_index(loc, subset="val")
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("Juggling/v_Juggling_g01_c01.avi\n")
    with pytest.raises(UserError, match="not in classInd"):
        build_index(loc, subset="test")
    with pytest.raises(UserError, match="ucfTrainTestlist"):
        build_index(DatasetLocation("x", tmp_path / "UCF101" / "YoYo" / "v_YoYo_g10_c03", "ucf101"))


def test_folder_format(tmp_path):
    root = tmp_path / "pool"
    for rel in ("b/x.mp4", "b/y.avi", "a/z.avi", "a/readme.txt", "c/notes.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / "a" / "frames_v").mkdir()
    (root / "loose.webm").write_bytes(b"x")
    index = build_index(DatasetLocation("p", root, "folder"), split=3, subset="test")  # both ignored
    assert index.classes == ["a", "b"]
    assert [(r.video_id, r.label) for r in index.records] == [
        ("loose", -1), ("a/frames_v", 0), ("a/z", 0), ("b/x", 1), ("b/y", 1)]
    assert index.missing == []


def test_builtin_names_resolve(synth_data_home, tiny_synth_config):
    cfg = tiny_synth_config
    train = build_index("synthetic", subset="train")
    test = build_index("synthetic", subset="test")
    assert len(train.classes) == cfg.classes and not train.missing
    assert len(train) + len(test) == cfg.classes * cfg.videos_per_class
    assert {r.label for r in test.records} == set(range(cfg.classes))
    assert all(int(r.group[1:]) <= cfg.effective_groups[1] for r in test.records)
    pool = build_index("synthetic-pool")
    assert len(pool) == cfg.pool_videos and pool.format == "folder"
    assert {r.video_id for r in pool.records}.isdisjoint({r.video_id for r in train.records + test.records})


def test_unknown_format_and_registration(tmp_path):
    with pytest.raises(UserError, match="no index builder"):
        build_index(DatasetLocation("k", tmp_path, "nosuchformat"))

    @register_format("one-video")
    def one(loc, split, subset):
        return VideoIndex([VideoRecord(str(loc.root / "v.avi"), -1, "v")], [], [], loc.root, "one-video")

    try:
        assert build_index(DatasetLocation("k", tmp_path, "one-video")).records[0].video_id == "v"
    finally:
        BUILDERS.pop("one-video")
