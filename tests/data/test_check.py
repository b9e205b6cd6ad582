"""vssl check-data: bad, missing and odd videos of a fixture UCF101 copy are found and reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data.check import CheckOptions, check_dataset
from benchmark.paths import DatasetLocation
from tests.data import fixtures

BAD = {
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": "zero",
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi": "truncated",
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi": "text",
}
ODD = {
    "HandStandPushups/v_HandStandPushups_g01_c01.avi": "h264_avi",
    "HandStandPushups/v_HandStandPushups_g02_c01.mp4": "vfr_mp4",
    "HandStandPushups/v_HandStandPushups_g03_c01.avi": "short",
}
MISSING = "YoYo/v_YoYo_g01_c01.avi"


@pytest.fixture(scope="module")
def messy_ucf(tmp_path_factory) -> Path:
    root = fixtures.make_ucf(tmp_path_factory.mktemp("messy") / "UCF101", frames=12)
    for rel, kind in BAD.items():
        fixtures.write_broken(root / rel, kind, donor=fixtures.write_video(root / ".donor.avi", 40))
    for rel, kind in ODD.items():
        (root / rel).with_suffix(".avi").unlink()
        fixtures.write_odd(root / rel, kind)
    (root / MISSING).unlink()
    return root


def test_check_finds_bad_missing_and_odd(messy_ucf):
    report = check_dataset(DatasetLocation("u", messy_ucf, "ucf101"), CheckOptions(decoder="pyav"), progress=False)

    def rel(findings):
        return {
            str(Path(f.path).relative_to(messy_ucf)) if Path(f.path).is_absolute() else f.path: f.reason
            for f in findings
        }

    assert set(rel(report.bad)) == set(BAD)
    assert "empty file" in rel(report.bad)["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"]
    assert set(rel(report.missing)) == {MISSING}
    odd = rel(report.odd)
    assert set(odd) == set(ODD)
    assert "seeking unreliable" in odd["HandStandPushups/v_HandStandPushups_g01_c01.avi"]
    assert "variable frame rate" in odd["HandStandPushups/v_HandStandPushups_g02_c01.mp4"]
    assert "only 3 frames" in odd["HandStandPushups/v_HandStandPushups_g03_c01.avi"]
    assert report.checked == 8 and report.failed == 4


def test_full_check_with_torchcodec_agrees(messy_ucf):
    from benchmark.data.video import torchcodec_status

    decoder = "torchcodec" if torchcodec_status()[0] else "pyav"
    report = check_dataset(
        DatasetLocation("u", messy_ucf, "ucf101"), CheckOptions(decoder=decoder, full=True), progress=False
    )
    assert {Path(f.path).name for f in report.bad} == {Path(p).name for p in BAD}
    assert len(report.odd) == 3 and report.checked == 8


def test_cli_table_summary_and_exit_status(messy_ucf, tmp_path, capsys):
    out_csv = tmp_path / "findings.csv"
    rc = main(
        [
            "check-data",
            str(messy_ucf),
            "--format",
            "ucf101",
            "--decoder",
            "pyav",
            "--no-progress",
            "--csv",
            str(out_csv),
        ]
    )
    text = capsys.readouterr().out
    assert rc == 1
    assert "bad (3):" in text and "v_ApplyEyeMakeup_g02_c01.avi" in text and "missing (1):" in text
    assert "8 videos checked: 3 bad, 1 missing, 3 with warnings, 5 decode" in text
    assert len(out_csv.read_text().splitlines()) == 1 + 3 + 1 + 3


def test_cli_clean_dataset_exits_0(tmp_path, capsys):
    root = fixtures.make_ucf(tmp_path / "clean", groups=2, frames=10)
    assert main(["check-data", str(root), "--format", "ucf101", "--no-progress"]) == 0
    assert "6 videos checked: 0 bad" in capsys.readouterr().out


def test_a_broken_symlink_in_a_folder_set_is_reported_not_dropped(tmp_path, capsys):
    """A `folder` set whose links point to a disk that is gone once checked '1 videos: 0 bad'."""
    root = tmp_path / "pool" / "a"
    fixtures.write_video(root / "real.avi", 8, size=(32, 24))
    for i in range(3):
        (root / f"gone{i}.avi").symlink_to(tmp_path / "mnt" / "gone" / f"{i}.avi")
    assert main(["check-data", str(tmp_path / "pool"), "--format", "folder", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "4 videos checked: 3 bad" in out and "gone0.avi" in out


def test_cli_reads_a_named_datasets_split_dir_from_the_paths_file(tmp_path, capsys, monkeypatch):
    import shutil

    root = fixtures.make_ucf(tmp_path / "clean", groups=2, frames=10)
    shutil.move(root / "ucfTrainTestlist", tmp_path / "splits")  # the split files live elsewhere
    paths = tmp_path / "paths.yaml"
    paths.write_text(f"datasets:\n  mini: {{root: {root}, format: ucf101, split_dir: {tmp_path / 'splits'}}}\n")
    monkeypatch.setenv("VSSL_PATHS", str(paths))
    assert main(["check-data", "mini", "--no-progress"]) == 0
    assert "6 videos checked: 0 bad" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["check-data", str(tmp_path / "nope"), "--format", "ucf101"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["check-data", str(tmp_path), "--format", "ucf101"]) == 2  # no split files
    assert "ucfTrainTestlist" in capsys.readouterr().err


@pytest.mark.parametrize("decoder", ["pyav", "torchcodec"])
def test_a_damaged_file_gets_a_plain_sentence_without_decoder_internals(messy_ucf, decoder):
    from benchmark.data.check import check_video
    from benchmark.data.video import torchcodec_status

    if decoder == "torchcodec" and not torchcodec_status()[0]:
        pytest.skip("torchcodec is not importable here")
    not_a_video = next(str(messy_ucf / rel) for rel, kind in BAD.items() if kind == "text")
    reason, _, _ = check_video(not_a_video, CheckOptions(decoder=decoder))
    assert reason == "cannot open: invalid data: not a video FFmpeg can read (damaged or another format)", reason
    assert ".cpp" not in reason and "/" not in reason
