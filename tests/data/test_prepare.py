"""vssl prepare: re-encoded copy with the same layout, frames and splits; short GOP; resumable."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from benchmark.cli import main
from benchmark.data.index import build_index
from benchmark.data.prepare import TMP_PREFIX, PrepareConfig, prepare_dataset, target_size
from benchmark.data.video import open_video
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation
from tests.data import fixtures


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [i for i, p in enumerate(c.demux(video=0)) if p.size and p.is_keyframe]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = fixtures.make_ucf(tmp_path_factory.mktemp("src") / "UCF101", groups=2, frames=20)
    fixtures.write_video(root / "YoYo" / "v_YoYo_g01_c01.avi", 20, size=(64, 48), gop=20, seed=3)  # one bigger
    fixtures.write_broken(root / "YoYo" / "v_YoYo_g02_c01.avi", "text")
    return root


def test_prepare_keeps_layout_frames_and_splits(source, tmp_path):
    dst = tmp_path / "prepared"
    cfg = PrepareConfig(short_side=16, gop=4, qscale=2)
    report = prepare_dataset(source, dst, cfg, progress=False)
    assert report.encoded == 5 and report.failed[0][0] == "YoYo/v_YoYo_g02_c01.avi"
    assert (dst / "ucfTrainTestlist" / "trainlist02.txt").read_text() == (
        source / "ucfTrainTestlist" / "trainlist02.txt"
    ).read_text()
    out = dst / "YoYo" / "v_YoYo_g01_c01.avi"
    with open_video(out, "pyav") as v, open_video(source / "YoYo" / "v_YoYo_g01_c01.avi", "pyav") as s:
        assert (v.width, v.height) == (22, 16) and v.num_frames == s.num_frames == 20
        assert v.mode == "grid"
    assert keyframes(out) == [0, 4, 8, 12, 16]
    a = build_index(DatasetLocation("s", source, "ucf101"), 1, "all")
    b = build_index(DatasetLocation("d", dst, "ucf101"), 1, "all")
    assert [r.video_id for r in b.records] == [
        r.video_id for r in a.records if "g02_c01" not in r.video_id or "YoYo" not in r.video_id
    ]


def test_prepare_resumes_and_refuses_other_settings(source, tmp_path):
    dst = tmp_path / "prepared"
    cfg = PrepareConfig(short_side=16, gop=4)
    prepare_dataset(source, dst, cfg, progress=False)
    victim = dst / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi"
    victim.unlink()  # as if interrupted while encoding it: no output, a stale temporary file
    (victim.parent / (TMP_PREFIX + victim.name)).write_bytes(b"half")
    kept = (dst / "YoYo" / "v_YoYo_g01_c01.avi").stat().st_mtime_ns
    report = prepare_dataset(source, dst, cfg, progress=False)
    assert report.encoded == 1 and report.skipped == 4 and report.copied == 0
    assert victim.exists() and not (victim.parent / (TMP_PREFIX + victim.name)).exists()
    assert (dst / "YoYo" / "v_YoYo_g01_c01.avi").stat().st_mtime_ns == kept
    with pytest.raises(UserError, match="prepared with"):
        prepare_dataset(source, dst, PrepareConfig(short_side=32, gop=4), progress=False)


def test_prepare_refuses_a_target_inside_the_source_or_holding_other_files(source, tmp_path):
    cfg = PrepareConfig(short_side=16, gop=4)
    with pytest.raises(UserError, match="is inside SRC"):
        prepare_dataset(source, source / "copy", cfg, progress=False)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("mine")
    with pytest.raises(UserError, match="holds files that vssl prepare did not write"):
        prepare_dataset(source, notes, cfg, progress=False)
    assert (notes / "README.md").read_text() == "mine" and not (source / "copy").exists()


def test_cli(source, tmp_path, capsys):
    assert (
        main(["prepare", str(source), str(tmp_path / "p"), "--short-side", "16", "--workers", "1", "--no-progress"])
        == 1
    )
    out = capsys.readouterr().out
    assert "failed: YoYo/v_YoYo_g02_c01.avi" in out and "5 videos encoded" in out
    assert main(["prepare", str(source), str(tmp_path / "q"), "--short-side", "15"]) == 2
    assert "even" in capsys.readouterr().err


def test_prepare_refuses_two_sources_with_one_output_before_encoding(tmp_path, capsys):
    """x.webm becomes x.mkv, beside a source x.mkv: one of the two videos would be lost while both count as encoded."""
    src = tmp_path / "src"
    fixtures.write_video(src / "a" / "x.mkv", 8, size=(32, 24))
    fixtures.write_video(src / "a" / "x.webm", 8, size=(32, 24), codec="libvpx", fmt="webm")
    fixtures.write_video(src / "a" / "y.webm", 8, size=(32, 24), codec="libvpx", fmt="webm")  # no clash: y.mkv
    assert main(["prepare", str(src), str(tmp_path / "dst"), "--short-side", "16", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{src / 'a' / 'x.mkv'} and {src / 'a' / 'x.webm'} would both be written to {tmp_path / 'dst' / 'a' / 'x.mkv'}: "
        "give them distinct names in SRC first"
    ), err
    assert "\n" not in err and "y.webm" not in err
    assert not (tmp_path / "dst").exists()  # refused before anything was written, prepare.json included


def test_prepare_refuses_names_that_differ_in_case_only_where_dst_ignores_case(tmp_path, capsys, monkeypatch):
    """A/x.avi and a/x.avi are two files on Linux, one on macOS or Windows: the second encode would replace the first."""
    from benchmark.data import prepare

    assert prepare._case_insensitive(tmp_path / "not" / "yet") is False  # this machine's filesystem keeps case
    assert list(tmp_path.iterdir()) == []  # the probe left nothing behind
    src = tmp_path / "src"
    fixtures.write_video(src / "A" / "x.avi", 8, size=(32, 24))
    fixtures.write_video(src / "a" / "x.avi", 8, size=(32, 24))
    monkeypatch.setattr(prepare, "_case_insensitive", lambda folder: True)
    assert main(["prepare", str(src), str(tmp_path / "dst"), "--short-side", "16", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{src / 'A' / 'x.avi'} and {src / 'a' / 'x.avi'} would both be written to {tmp_path / 'dst' / 'a' / 'x.avi'}: "
        "give them distinct names in SRC first"
    ), err
    assert not (tmp_path / "dst").exists()


def test_a_case_probe_left_by_a_kill_does_not_make_dst_foreign(tmp_path, capsys):
    src = tmp_path / "src"
    fixtures.write_video(src / "a" / "x.avi", 8, size=(32, 24))
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / ".vssl-CaseProbe-k1ll3d").write_bytes(b"")  # killed between the probe's creation and removal
    assert main(["prepare", str(src), str(tmp_path / "dst"), "--short-side", "16", "--no-progress"]) == 0
    assert (tmp_path / "dst" / "a" / "x.avi").exists()


def test_target_size():
    assert target_size(320, 240, 128) == (170, 128)
    assert target_size(240, 320, 128) == (128, 170)
    assert target_size(100, 80, 128) == (100, 80)  # never upscaled
    assert target_size(341, 256, 0) == (340, 256)  # odd sizes rounded to even
