"""A video listed in a split file but absent on disk: counted, named and footnoted, never dropped silently."""

from __future__ import annotations

import shutil

import pytest

from benchmark.errors import UserError
from benchmark.evaluation import evaluate
from tests.evaluation.conftest import make_run, tiny_config


@pytest.fixture
def holed_synth(tiny_synth, tmp_path, monkeypatch):
    """A copy of the tiny set whose test split lists a video that is not on disk."""
    home = tmp_path / "data"
    shutil.copytree(tiny_synth, home / "synthetic")
    test_list = (home / "synthetic" / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    (home / "synthetic" / test_list[0]).unlink()
    monkeypatch.setenv("VSSL_DATA", str(home))
    return home / "synthetic", test_list[0]


def test_a_missing_test_video_is_counted_named_and_footnoted(holed_synth, tmp_path, capsys):
    from benchmark.results.collect import collect
    from benchmark.results.table import build_table, notes

    _, gone = holed_synth
    run = make_run(tmp_path / "run")
    cfg = tiny_config(run, "data.max_bad_fraction=0.5")
    entry = evaluate(run, cfg, "linear", progress_bar=False)
    assert entry["missing_videos"] == 1 and entry["missing"]["test"] == [gone]
    assert f"left out: {gone}" in capsys.readouterr().err
    table = build_table(collect(tmp_path, include_incomplete=True))  # the run asks for more stages than this test ran
    assert any(
        "missing on disk were left out" in line and "linear/synthetic/split1: 1" in line for line in notes(table)
    )


def test_past_the_allowed_fraction_the_stage_fails_with_the_list(holed_synth, tmp_path):
    _, gone = holed_synth
    run = make_run(tmp_path / "run")
    with pytest.raises(UserError, match=rf"1 of 6 test videos .* missing on disk .*: {gone}"):
        evaluate(run, tiny_config(run, "data.max_bad_fraction=0.05"), "knn", progress_bar=False)


def test_pre_training_names_its_missing_videos_and_goes_on(tiny_synth, tmp_path, monkeypatch, capsys):
    """Pre-training once left out videos missing on disk without a word. It says so now, once, and goes on at any
    fraction: most Kinetics copies lack a good share of their listed clips (evaluations stop past
    data.max_bad_fraction instead: their test sets must be whole)."""
    from benchmark import train
    from benchmark.cli import main

    home = tmp_path / "data"
    shutil.copytree(tiny_synth, home / "synthetic")
    train_list = (home / "synthetic" / "ucfTrainTestlist" / "trainlist01.txt").read_text().split()
    videos = [v for v in train_list if v.endswith(".avi")]
    for gone in videos[:2]:
        (home / "synthetic" / gone).unlink()
    monkeypatch.setenv("VSSL_DATA", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "_WARNED", set())
    (tmp_path / "s.yaml").write_text(
        "name: s\nbase: {method: {name: supervised}, data: {dataset: synthetic}}\nseeds: [0, 1]\n"
    )
    assert main(["sweep", "--dry-run", "s.yaml"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "missing on disk" in line]
    assert warnings == [
        f"warning: 2 pre-training videos of 'synthetic' are listed in the split files but missing on disk, left out: "
        f"{videos[0]}, {videos[1]}"
    ]
