"""Malformed input, one table: every case is one line on stderr, exit 2, no traceback, and nothing written.

Each row is a `vssl` command run in a fresh working folder (holding the files the case needs); the folder's
whole tree is compared before and after, so a half-made run directory (config.yaml, env.json, checkpoints/)
fails the case. The commands run in process through benchmark.cli.main, which is what the console script
calls (one real subprocess case lives in tests/test_config.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main

DPC_SWEEP = """name: bad
base: {method: {name: dpc, pred_steps: 7}, backbone: {name: resnet10t, inflate: true}}
stages: [pretrain]
"""
FILES = {
    "twice.yaml": "optim: {lr: 0.01}\nrun: {seed: 1}\noptim: {steps: 5}\n",
    "key-twice.yaml": "optim:\n  lr: 0.01\n  lr: 0.02\n",
    "axis-twice.yaml": "name: s\ngrid:\n  optim.lr: [0.1]\n  optim.lr: [0.2]\n",
    "negative-grid.yaml": "name: s\ngrid:\n  optim.steps: [10, -1]\n",
    "latin1.yaml": "optim: {lr: 0.01}  # caf\xe9\n",
    "dpc.yaml": DPC_SWEEP,
    "split2.yaml": "name: s2\nbase: {optim: {steps: 2}}\nstages: [pretrain, 'knn:synthetic:2']\n",
    "badrun/config.yaml": "method: {name: tce\n",  # a truncated config.yaml
    "listrun/config.yaml": "- 1\n",
    "badsweep/sweep.json": '{"name": "s", "cells": [1, 2]}',  # a hand-edited manifest
    "listkey.yaml": "optim: {[1]: 2}\n",  # a YAML key that is a list
    "nullrun.yaml": "name: s\nbase:\n  run:\n  method: {name: random_init}\n",  # `run:` with nothing under it
    "strrun/config.yaml": "method: tce\nbackbone: {name: resnet10t}\n",  # a hand-edited run config
    "empty.yaml": "",
    "seed-axis.yaml": "name: s\nbase: {method: {name: tce}}\ngrid:\n  run.seed: [1, 2]\n",
    "intrun/config.yaml": "method: {name: random_init}\n",
    "intrun/metrics.json": '{"pretrain": 5}',  # a hand edit
    "nan.yaml": "method: {name: tce, temperature: .nan}\n",
    "nan-grid.yaml": "name: s\nbase: {method: {name: tce}}\ngrid:\n  method.mining_r: [0.5, -.inf]\n",
    "comments.yaml": "# optim: {lr: 0.1}\n",
}
CASES = [
    (["pretrain", "optim.steps=-5"], "optim.steps = -5: must be 0 (no pre-training) or more"),
    (["pretrain", "method.name=tce", "optim.steps=0"], "optim.steps = 0: method 'tce' pre-trains"),
    (["pretrain", "optim.batch_size=0"], "optim.batch_size = 0: must be at least 1"),
    (["pretrain", "twice.yaml"], "key 'optim' appears twice in one mapping"),
    (["pretrain", "key-twice.yaml"], "key 'lr' appears twice in one mapping"),
    (["sweep", "axis-twice.yaml", "--dry-run"], "key 'optim.lr' appears twice in one mapping"),
    (["sweep", "negative-grid.yaml", "--dry-run"], "optim.steps = -1: must be 0"),
    (["pretrain", "latin1.yaml"], "latin1.yaml is not UTF-8 text (byte 0xe9"),
    (["pretrain", "folder"], "folder is a directory, not a config file"),
    (["pretrain", "backbone.name=resnet19"], "unknown backbone 'resnet19' (did you mean 'resnet18'?)"),
    (["pretrain", "method.name=vcop"], "method 'vcop' needs a 3D backbone, but 'resnet10t' is 2D"),
    (["pretrain", "method.name=dpc", "backbone.inflate=true", "method.pred_steps=7"], "method.pred_steps = 7"),
    (
        ["pretrain", "method.name=cubic_puzzles", "backbone.inflate=true", "method.piece_scale=1.5"],
        "method.piece_scale = 1.5",
    ),
    (["pretrain", "method.name=skip_clip", "backbone.inflate=true", "method.num_targets=1"], "method.num_targets = 1"),
    (["sweep", "dpc.yaml", "--cluster", "slurm"], "method.pred_steps = 7 must be at least 1 and below"),
    (["sweep", "dpc.yaml", "--dry-run"], "method.pred_steps = 7 must be at least 1 and below"),
    (["sweep", "split2.yaml", "--dry-run"], "UCF101 split 2: missing"),  # before any cell pre-trains
    (
        ["pretrain", "method.name=videogan", "backbone.inflate=true", "method.scale=paper", "data.resolution=32"],
        "method.scale = paper generates 64 x 64 frames; data.resolution = 32",
    ),
    (["pretrain", "method.name=videogan", "backbone.inflate=true", "method.mask_l1=-1"], "method.mask_l1 = -1"),
    (["pretrain", "data.dataset=nosuchset"], "unknown dataset 'nosuchset'"),
    (["pretrain", "run.stages=[]"], "run.stages is empty"),
    (["pretrain", "optim.steps=5", "optim.warmup_steps=5"], "optim.warmup_steps = 5 is not below optim.steps = 5"),
    (["evaluate", "folder", "--protocol", "linear"], "folder is not a run directory"),
    # a file where a folder belongs, or a folder that cannot be made: the OS's reason and the path, one line
    (["status", "twice.yaml"], "twice.yaml is a file: pass a sweep folder"),
    (["synth", "/proc/vssl-audit/out", "classes=2"], "/proc/vssl-audit"),
    (["pretrain", "optim.steps=2", "--out", "twice.yaml/run"], "twice.yaml"),
    # a broken run folder: the file and what is wrong with it, in one line
    (["evaluate", "badrun"], "badrun/config.yaml is not valid YAML"),
    (["evaluate", "listrun"], "listrun/config.yaml: expected a mapping of config sections, got list"),
    (
        ["export", "folder", "--format", "timm", "--out", "w.pt"],
        "--out w.pt: export writes safetensors, so name the file *.safetensors",
    ),
    (["status", "badsweep"], "badsweep/sweep.json: 'cells' should map cell ids to their entries"),
    (["synth", "s", "--workers", "0"], "--workers 0: must be at least 1"),
    (["check-data", "folder", "--min-frames", "-3"], "--min-frames -3: must be at least 1"),
    (["check-data", "folder", "--csv", "folder"], "--csv folder: needs a file in an existing folder"),
    (["check-data", "folder"], "no videos found in folder as format 'folder'"),
    (["tb", "folder", "--port", "99999"], "--port 99999: a TCP port is 1..65535"),
    (["report", "folder", "--summary", "latin1.yaml"], "--summary latin1.yaml is not UTF-8 text"),
    # absurd values and odd YAML (a traceback audit): one line each
    (["pretrain", "listkey.yaml"], "listkey.yaml line 1: a key must be a name, not a list"),
    (["sweep", "nullrun.yaml", "--dry-run"], "sweep base: 'run' must be a mapping of its keys"),
    (["evaluate", "strrun"], "strrun/config.yaml: section 'method' is 'tce', not a mapping of its keys"),
    (["pretrain", "optim.lr=.inf"], "config key 'optim.lr' = inf: must be a finite number"),
    (["tb", "badsweep", "--print"], "badsweep/sweep.json: 'cells' should map cell ids to their entries"),
    (["pretrain", "method.name=random_init", "--out", "intrun"], "intrun/metrics.json: entry 'pretrain' is 5, not an"),
    (["sweep", "split2.yaml", "--out", "intrun"], "intrun is a run directory (it holds config.yaml), not a sweep"),
    (["bench", "collect", "--runs", "2", "--dir", "intrun"], "--dir intrun is not empty and no earlier `vssl bench"),
    (["table", "badsweep", "--out", "intrun/metrics.json"], "--out: intrun/metrics.json is the run directory intrun's"),
    (["table", "badsweep", "--runs-csv", "badsweep/sweep.json"], "--runs-csv: badsweep/sweep.json is the sweep folder"),
    (["trajectories", "intrun", "--out", "x.txt"], "--out x.txt: name the figure .png, .pdf, .svg (or another of"),
    (["trajectories", "intrun", "--out", "intrun/metrics.json"], "name the figure .png, .pdf, .svg"),
    (
        ["pretrain", "backbone.name=vit_tiny_patch16_224", "data.resolution=32"],
        "backbone 'vit_tiny_patch16_224' does not run at data.resolution = 32 (Input height (32) doesn't match model "
        "(224).); it is built for 224 x 224 frames: set data.resolution=224",
    ),
    (["bench", "tce", "--backbone", "r3d_18"], "--backbone r3d_18 is a 3D backbone; TCE's step takes a timm 2D one"),
    (["bench", "tce", "--backbone", "vit_tiny_patch16_224"], "backbone 'vit_tiny_patch16_224' does not run at"),
    (["sweep", "seed-axis.yaml", "--dry-run"], "'run.seed' is an axis of grid, but a sweep's seeds come from its"),
    (["pretrain", "eval.linear_weight_decays=[-0.1, 0.001]"], "eval.linear_weight_decays = [-0.1, 0.001]: every"),
    (["pretrain", "eval.finetune_weight_decay=-5"], "eval.finetune_weight_decay = -5.0: must be >= 0"),
    (["synth", "s", "size=100000"], "size must be even and in 16..1024"),
    (["synth", "s", "frames=100000000"], "frames must be in 2..1000"),
    (["pretrain", "nan.yaml"], "config key 'method.temperature' = nan: must be a finite number"),
    (["sweep", "nan-grid.yaml", "--dry-run"], "config key 'method.mining_r' = -inf: must be a finite number"),
    (["pretrain", "data.resolution=100000"], "data.resolution = 100000: must be 8 to 2048 px"),
    (["sweep", "split2.yaml", "--dry-run", "--out", "runs/a\nb"], "--out 'runs/a\\nb' holds a control character"),
    (["pretrain", "empty.yaml"], "config file empty.yaml is empty: it sets nothing"),
    (["pretrain", "comments.yaml"], "config file comments.yaml is empty"),
]


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1 for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, synth_data_home, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "folder").mkdir()
    for name, text in FILES.items():
        (work / name).parent.mkdir(exist_ok=True)
        (work / name).write_bytes(text.encode("latin-1") if name == "latin1.yaml" else text.encode())
    monkeypatch.chdir(work)
    before = tree(work)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    # the tiny set's pool is smaller than the default batch, which load-time validation warns about in one line
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: optim.batch_size = ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert tree(work) == before, "the command wrote files before failing"


def test_a_float_written_1e_3_in_a_yaml_file_is_a_number(tmp_path):
    from benchmark.config import load_config

    (tmp_path / "c.yaml").write_text("optim: {lr: 1e-3, weight_decay: 5e-4}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.optim.lr == 0.001 and cfg.optim.weight_decay == 0.0005


def test_synth_with_only_settings_does_not_take_the_first_for_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VSSL_DATA", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    settings = ["classes=2", "videos_per_class=2", "groups=2", "test_groups=1", "size=16", "frames=4", "pool_videos=0"]
    assert main(["synth", *settings, "--workers", "1"]) == 0
    assert (tmp_path / "home" / "synthetic" / "synth.json").exists()
    assert not (tmp_path / "classes=2").exists()
    capsys.readouterr()
    assert main(["pretrain", "data.dataset=synthetic-pool"]) == 2  # pool_videos=0 made no pool: say that
    assert "made without a pool: rerun `vssl synth` with pool_videos > 0" in capsys.readouterr().err


def test_a_batch_larger_than_the_pool_is_said_once_per_sweep_not_per_cell(
    synth_data_home, tmp_path, monkeypatch, capsys
):
    """Legal (the tests' tiny sets do it), so not an error; but each batch then holds videos twice (a false
    negative for a contrastive method) and 100000 was most likely a typo: one warning, before anything runs."""
    from benchmark import train

    monkeypatch.setattr(train, "_WARNED", set())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "name: s\nbase: {method: {name: tce}, optim: {batch_size: 100000}}\nseeds: [0, 1, 2]\n"
    )
    assert main(["sweep", "s.yaml", "--dry-run"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert "optim.batch_size = 100000 is more than the " in warnings[0]
    assert "videos 'tce' pre-trains on (dataset 'synthetic-pool'): each batch holds videos twice" in warnings[0]
