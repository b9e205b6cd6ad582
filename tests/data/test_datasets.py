"""Dataset indexes: UCF101 split files (case quirks, missing files, frame folders) and class folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.formats import dataset_format
from benchmark.data.index import VideoIndex, VideoRecord, build_index
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation
from benchmark.registry import FORMATS, Entry


def _ucf(tmp_path: Path, lists_beside_root: bool = False) -> Path:
    root = tmp_path / "UCF101"
    lists = (tmp_path if lists_beside_root else root) / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\n"
        "HandstandPushups/v_HandStandPushups_g09_c02.avi 2\n"  # missing on disk
        "YoYo/v_YoYo_g10_c03.avi 3\n"  # stored as a frame folder
        "\n"
    )
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
        "HandstandPushups/v_HandStandPushups_g02_c01.avi\r\n"
        "YoYo/v_YoYo_g01_c01.avi\r\n"
    )  # missing
    for rel in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandStandPushups/v_HandStandPushups_g08_c01.avi",
        "HandStandPushups/v_HandStandPushups_g02_c01.avi",
    ):
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


def test_split_files_saved_with_a_bom_read_as_without(tmp_path):
    """A Windows editor's UTF-8 BOM once made classInd.txt's first line 'not <index> <ClassName>' and stayed in
    the first video id of a train list."""
    root = _ucf(tmp_path)
    lists = root / "ucfTrainTestlist"
    for name in ("classInd.txt", "trainlist01.txt"):
        (lists / name).write_bytes(b"\xef\xbb\xbf" + (lists / name).read_bytes())
    index = build_index(DatasetLocation("ucf", root, "ucf101"), split=1, subset="train")
    assert index.classes == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert index.records[0].video_id == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"


def test_ucf101_test_labels_from_folder(tmp_path):
    root = _ucf(tmp_path, lists_beside_root=True)  # ROOT/../ucfTrainTestlist
    index = build_index(DatasetLocation("ucf", root, "ucf101"), subset="test")
    assert [(r.video_id, r.label) for r in index.records] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01", 0),
        ("HandstandPushups/v_HandStandPushups_g02_c01", 1),
    ]
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
        ("loose", -1),
        ("a/frames_v", 0),
        ("a/z", 0),
        ("b/x", 1),
        ("b/y", 1),
    ]
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

    @dataset_format("one-video")
    def one(loc, split, subset):
        return VideoIndex([VideoRecord(str(loc.root / "v.avi"), -1, "v")], [], [], loc.root, "one-video")

    try:
        assert build_index(DatasetLocation("k", tmp_path, "one-video")).records[0].video_id == "v"
    finally:
        FORMATS.unregister("one-video")


# ---------------------------------------------------------------------- fixture datasets (real videos)
from tests.data import fixtures  # noqa: E402


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("datasets")
    return {
        "ucf": fixtures.make_ucf(base / "UCF101", frames=4),
        "hmdb": fixtures.make_hmdb(base / "hmdb51", frames=4),
        "kinetics": fixtures.make_kinetics(base / "k400", frames=4),
    }


def test_ucf101_three_splits(datasets):
    """make_ucf puts group g in split g's test list: each split's test set is exactly one group."""
    loc = DatasetLocation("ucf", datasets["ucf"], "ucf101")
    every = set()
    for split in (1, 2, 3):
        train, test = build_index(loc, split, "train"), build_index(loc, split, "test")
        assert {r.group for r in test.records} == {f"g{split:02d}"}
        assert f"g{split:02d}" not in {r.group for r in train.records}
        assert len(train) == 6 and len(test) == 3 and not train.missing and not test.missing
        assert sorted(r.label for r in test.records) == [0, 1, 2]
        every |= {r.video_id for r in train.records + test.records}
    assert len(every) == 9


def test_hmdb51_tags(datasets):
    root = datasets["hmdb"]
    expected = fixtures.hmdb_expected(root)
    loc = DatasetLocation("hmdb", root, "hmdb51")
    for split in (1, 2, 3):
        train, test, both = (build_index(loc, split, s) for s in ("train", "test", "all"))
        assert {r.video_id for r in train.records} == expected.get((split, 1), set())
        assert {r.video_id for r in test.records} == expected.get((split, 2), set())
        assert len(both) == len(train) + len(test)  # tag 0: in neither
        assert train.classes == ["brush_hair", "cartwheel"]
        assert all(r.label == train.classes.index(r.video_id.split("/")[0]) for r in both.records)
    # hand check of one line: "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi 1" in split 1
    assert "cartwheel/(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0" in {
        r.video_id for r in build_index(loc, 1, "train").records
    }


def test_hmdb51_missing_and_errors(tmp_path):
    root = tmp_path / "hmdb"
    lists = root / "testTrainMulti_7030_splits"
    lists.mkdir(parents=True)
    (lists / "jump_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (root / "jump").mkdir()
    (root / "jump" / "a.avi").write_bytes(b"x")
    (root / "jump" / "b").mkdir()  # a frame folder
    loc = DatasetLocation("h", root, "hmdb51")
    index = build_index(loc, 1, "all")
    assert [r.video_id for r in index.records] == ["jump/a", "jump/b"] and index.storage == "mixed"
    (root / "jump" / "a.avi").unlink()
    assert build_index(loc, 1, "train").missing == ["jump/a.avi"]
    with pytest.raises(UserError, match="no <class>_test_split2"):
        build_index(loc, 2)
    (lists / "jump_test_split1.txt").write_text("a.avi 3\n")
    with pytest.raises(UserError, match="jump_test_split1.txt:1"):
        build_index(loc, 1)
    (lists / "jump_test_split1.txt").write_text("b.avi 1\n")
    (lists / "Jump_test_split1.txt").write_text("b.avi 2\n")  # a copy in another spelling: one class, two labels
    with pytest.raises(UserError, match="Jump_test_split1.txt and jump_test_split1.txt in .* name one class in two "
                                        "spellings"):  # fmt: skip
        build_index(loc, 1)
    (lists / "Jump_test_split1.txt").unlink()
    import unicodedata

    for form in ("NFC", "NFD"):  # the same name in two Unicode forms: one folder for both lookups
        (lists / unicodedata.normalize(form, "café_test_split1.txt")).write_text("b.avi 1\n")
    with pytest.raises(UserError, match="name one class in two spellings"):
        build_index(loc, 1)


@pytest.mark.parametrize("is_cc", [True, False])
def test_kinetics_csv_missing_clips_and_names(tmp_path, is_cc):
    root = fixtures.make_kinetics(tmp_path / "k400", is_cc=is_cc, frames=2)
    loc = DatasetLocation("k", root, "kinetics")
    train = build_index(loc, subset="train")
    assert train.classes == ["abseiling", "air drumming"]
    rows = fixtures.KINETICS_ROWS
    on_disk = {f"{lab}/{y}_{s:06d}_{e:06d}" for lab, y, s, e, sp, style in rows if sp == "train" and style}
    assert {r.video_id for r in train.records} == on_disk  # both file-name conventions found
    assert sorted(train.missing) == sorted(
        f"train/{lab}/{y}_{s:06d}_{e:06d}.mp4" for lab, y, s, e, sp, style in rows if sp == "train" and not style
    )
    assert all(r.label == train.classes.index(r.video_id.split("/")[0]) for r in train.records)
    test = build_index(loc, subset="test")  # the validation CSV
    assert len(test) == 2 and len(test.missing) == 1 and test.classes == train.classes
    assert "missing" in test.summary()


def test_kinetics_split_dir_and_errors(tmp_path, datasets):
    root = datasets["kinetics"]
    elsewhere = tmp_path / "csvs"
    elsewhere.mkdir()
    (elsewhere / "kinetics_400_train.csv").write_text((root / "annotations" / "train.csv").read_text())
    index = build_index(DatasetLocation("k", root, "kinetics"), subset="train", split_dir=elsewhere)
    assert len(index) == 3
    with pytest.raises(UserError, match="no val/validate/validation/test CSV"):
        build_index(DatasetLocation("k", root, "kinetics"), subset="test", split_dir=elsewhere)
    (elsewhere / "kinetics_400_train.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="youtube_id"):
        build_index(DatasetLocation("k", root, "kinetics"), subset="train", split_dir=elsewhere)
    with pytest.raises(UserError, match="split folder not found"):
        build_index(DatasetLocation("k", root, "kinetics"), split_dir=tmp_path / "nope")


def test_ucf101_split_dir_and_flat_frame_folders(tmp_path):
    root = _ucf(tmp_path)
    lists = tmp_path / "elsewhere"
    (root / "ucfTrainTestlist").rename(lists)
    loc = DatasetLocation("ucf", root, "ucf101")
    with pytest.raises(UserError, match="ucfTrainTestlist"):
        build_index(loc)
    assert len(build_index(loc, split_dir=lists)) == 3
    flat = tmp_path / "frames"  # ROOT/<video_stem>/img_*.jpg, no class folders
    (flat / "v_ApplyEyeMakeup_g08_c01").mkdir(parents=True)
    index = build_index(DatasetLocation("f", flat, "ucf101"), split_dir=lists)
    assert [r.video_id for r in index.records] == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"]
    assert index.storage == "frames"


def test_paths_file_split_dir_is_used_by_name(tmp_path, monkeypatch):
    """A paths-file entry's split_dir (relative to the paths file) reaches build_index by dataset name."""
    root = _ucf(tmp_path)
    (root / "ucfTrainTestlist").rename(tmp_path / "lists")
    paths = tmp_path / "paths.yaml"
    paths.write_text(
        f"datasets:\n  ucf: {{root: {root}, format: ucf101, split_dir: lists}}\n"
        f"  plain: {{root: {root}, format: ucf101}}\n"
    )
    monkeypatch.setenv("VSSL_PATHS", str(paths))
    monkeypatch.setenv("VSSL_CACHE", "off")
    assert len(build_index("ucf")) == 3
    with pytest.raises(UserError, match="ucfTrainTestlist"):
        build_index("plain")
    paths.write_text(f"datasets:\n  ucf: {{root: {root}, format: ucf101, splits: lists}}\n")
    with pytest.raises(UserError, match="unknown key 'splits'.*split_dir"):
        build_index("ucf")
    paths.write_text(f"datsets:\n  ucf: {{root: {root}, format: ucf101}}\n")  # a misspelt section is not empty
    with pytest.raises(UserError, match="unknown top-level key 'datsets' \\(did you mean 'datasets'"):
        build_index("ucf")
    paths.write_text(f"datasets:\n  ucf: {{root: {root}, format: [ucf101]}}\n")  # was a TypeError traceback
    with pytest.raises(UserError, match="dataset 'ucf' has format \\['ucf101'\\]: one name"):
        build_index("ucf")


def test_storage_choice(tmp_path):
    root = _ucf(tmp_path)
    (root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01").mkdir()  # frames beside the video file
    loc = DatasetLocation("ucf", root, "ucf101")
    auto = build_index(loc)
    assert auto.records[0].path.endswith(".avi") and auto.storage == "mixed"
    frames = build_index(loc, storage="frames")
    assert [Path(r.path).name for r in frames.records] == ["v_ApplyEyeMakeup_g08_c01", "v_YoYo_g10_c03"]
    video = build_index(loc, storage="video")
    assert video.storage == "video" and len(video) == 2
    with pytest.raises(UserError, match="storage"):
        build_index(loc, storage="tape")


# ---------------------------------------------------------------------- index cache
def spy_on_builder(monkeypatch, name: str, calls: list) -> None:
    """Count the calls of a registered format's builder (its scan depth kept)."""
    real = FORMATS.get(name)

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    spy.scan_depth = real.scan_depth
    monkeypatch.setitem(FORMATS._entries, name, Entry(name, spy, "test spy"))


def test_index_cache_is_hit_on_the_second_build(datasets, monkeypatch, index_cache_dir):
    calls = []
    spy_on_builder(monkeypatch, "kinetics", calls)
    loc = DatasetLocation("k", datasets["kinetics"], "kinetics")
    first = build_index(loc, subset="all")
    second = build_index(loc, subset="all")
    assert len(calls) == 1 and not first.from_cache and second.from_cache
    assert second.records == first.records and second.missing == first.missing and second.classes == first.classes
    assert list((index_cache_dir / "index").glob("kinetics-*.json"))
    build_index(loc, subset="train")  # another subset: its own entry
    assert len(calls) == 2


def test_index_cache_keeps_ucf101_groups(tmp_path, monkeypatch):
    """The held-out split is group-disjoint only while records keep their UCF101 group: an index read back from
    the cache (the default, from the second start on) must equal the one built, groups included."""
    root = _ucf(tmp_path)
    loc = DatasetLocation("ucf", root, "ucf101")
    calls = []
    spy_on_builder(monkeypatch, "ucf101", calls)
    first = build_index(loc, subset="all")
    second = build_index(loc, subset="all")
    assert len(calls) == 1 and not first.from_cache and second.from_cache
    assert [r.group for r in first.records] == ["g08", "g08", "g10", "g01", "g02"]
    assert second.records == first.records
    assert second.missing == first.missing and second.classes == first.classes


def test_index_cache_is_invalidated_by_changes(tmp_path, monkeypatch):
    root = _ucf(tmp_path)
    loc = DatasetLocation("ucf", root, "ucf101")
    calls = []
    spy_on_builder(monkeypatch, "ucf101", calls)
    assert len(build_index(loc).missing) == 1
    build_index(loc)
    assert len(calls) == 1
    (root / "HandStandPushups" / "v_HandStandPushups_g09_c02.avi").write_bytes(b"x")  # the missing video appears
    index = build_index(loc)
    assert len(calls) == 2 and not index.missing and len(index) == 4
    with open(root / "ucfTrainTestlist" / "trainlist01.txt", "a") as f:  # a split file changes
        f.write("YoYo/v_YoYo_g11_c01.avi 3\n")
    assert build_index(loc).missing == ["YoYo/v_YoYo_g11_c01.avi"] and len(calls) == 3
    monkeypatch.setenv("VSSL_CACHE", "off")
    build_index(loc)
    build_index(loc)
    assert len(calls) == 5


def test_a_folder_copied_from_macos_matches_its_split_files(tmp_path):
    """macOS writes 'Café' decomposed (NFD), split files are composed (NFC): the same name, found either way."""
    import unicodedata

    from benchmark.data.formats import DirLookup

    nfd = unicodedata.normalize("NFD", "Café")
    (tmp_path / nfd / "v_Café_g01_c01.avi").parent.mkdir()
    (tmp_path / nfd / unicodedata.normalize("NFD", "v_Café_g01_c01.avi")).write_bytes(b"x")
    found = DirLookup(tmp_path).find(unicodedata.normalize("NFC", "Café/v_Café_g01_c01.avi"))
    assert found is not None and found.exists()
