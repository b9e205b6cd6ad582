"""The out-of-tree path, end to end: the example package examples/simclr_clips is pip-installed (into a
temporary --target folder, so the shared environment is never modified), then, in fresh processes that see
that folder on PYTHONPATH, `vssl methods` lists it as a plugin and a tiny local sweep runs it to a complete
run directory. Its sampler "two_clips" comes from the plugin, not from this repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.registry import METHODS, SAMPLERS
from benchmark.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "simclr_clips"
VSSL = [sys.executable, "-m", "benchmark"]


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """examples/simclr_clips built and installed into a temp folder; the build runs on a copy, so setuptools'
    build/ and egg-info never land in the repository."""
    work = tmp_path_factory.mktemp("plugin")
    source, target = work / "src", work / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "simclr_clips.py").exists()
    return target


def run_python(
    args: list[str] | str, plugin: Path, extra_env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """A fresh interpreter that sees the installed plugin: ``python -m benchmark ARGS`` (the vssl CLI), or ``python -c CODE``."""
    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": os.pathsep.join([str(plugin), str(REPO)])}
    command = [sys.executable, "-c", args] if isinstance(args, str) else [*VSSL, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)


def test_the_example_is_not_part_of_this_repository():
    assert "simclr_clips" not in METHODS and "two_clips" not in SAMPLERS


@pytest.mark.slow
def test_vssl_methods_lists_the_plugin_and_its_sampler(plugin_path):
    # both listings from one interpreter (each start imports torch): `vssl methods`, then `vssl methods --samplers`
    both = run_python(
        "from benchmark.cli import main; main(['methods']); print('---'); main(['methods', '--samplers'])", plugin_path
    )
    assert both.returncode == 0, both.stderr
    methods, samplers = both.stdout.split("\n---\n")
    row = next(line for line in methods.splitlines() if line.startswith("simclr_clips"))
    assert "two_clips" in row and "plugin vssl-simclr-clips" in row
    row = next(line for line in samplers.splitlines() if line.startswith("two_clips"))
    assert "plugin vssl-simclr-clips" in row


@pytest.mark.slow
def test_a_tiny_sweep_runs_the_plugin_to_a_complete_run_directory(plugin_path, synth_data_home, tmp_path):
    spec = {
        "name": "plugin",
        "base": {
            "data": {"dataset": "synthetic-pool", "resolution": 32},
            "backbone": {"name": "resnet10t"},
            "method": {"name": "simclr_clips", "clip_len": 2, "stride": 2, "embed_dim": 16, "hidden_dim": 32},
            "optim": {"batch_size": 4, "steps": 2},
            "eval": {"dataset": "synthetic", "frames": 2, "linear_epochs": 3, "batch_size": 8},
            "run": {"device": "cpu", "precision": "fp32", "log_every": 1},
        },
        "stages": ["pretrain", "linear"],
    }
    sweep_file = tmp_path / "plugin.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "runs"
    done = run_python(
        ["sweep", str(sweep_file), "--out", str(out), "--no-progress"],
        plugin_path,
        {"VSSL_DATA": str(synth_data_home), "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (cell,) = (out / "cells").iterdir()
    run = RunDir(cell)
    assert run.is_complete(), run.status()
    assert run.config()["method"]["name"] == "simclr_clips" and run.config()["method"]["clip_len"] == 2
    metrics = run.metrics()
    assert metrics["pretrain"]["steps"] == 2 and metrics["pretrain"]["trained"] is True
    assert 0.0 <= metrics["linear/synthetic/split1"]["top1"] <= 100.0
    assert run.checkpoint_path().exists()
    logged = [json.loads(line) for line in (cell / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["stage"] == "pretrain"] == [1, 2] and all(
        "pos_sim" in r for r in logged if r["stage"] == "pretrain"
    )
    # provenance: the run says which distribution (and version) its method and sampler came from,
    # and the report's provenance section shows it
    code = json.loads((cell / "env.json").read_text())["code"]
    assert code["method"]["distribution"] == "vssl-simclr-clips" and code["method"]["version"] == "0.1.0"
    assert code["sampler"]["distribution"] == "vssl-simclr-clips" and code["method"]["editable"] is False
    report = run_python(["report", str(out), "--out", str(tmp_path / "report")], plugin_path)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "README.md").read_text()
    assert "plugin method: simclr_clips from vssl-simclr-clips 0.1.0" in text


def test_an_editable_plugin_records_its_git_commit(tmp_path, monkeypatch):
    """An editable install's direct_url.json points at its source folder: provenance adds that folder's git
    commit and dirty flag."""
    import subprocess
    import sys

    from benchmark.registry import Registry, _loading_dist, provenance

    source = tmp_path / "src"
    source.mkdir()
    (source / "m.py").write_text("x = 1\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "m.py"], ["commit", "-qm", "one"]):
        subprocess.run([*git, *args], cwd=source, check=True)
    (source / "m.py").write_text("x = 2\n")  # uncommitted change
    site = tmp_path / "site"
    info = site / "vssl_editable_demo-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vssl-editable-demo\nVersion: 1.2.3\n")
    (info / "direct_url.json").write_text(json.dumps({"url": source.as_uri(), "dir_info": {"editable": True}}))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(_loading_dist, "editable_demo_module", "vssl-editable-demo")
    reg = Registry("method")

    class Demo:
        pass

    Demo.__module__ = "editable_demo_module"
    reg.register("demo")(Demo)
    monkeypatch.setattr("benchmark.registry.load_plugins", lambda: None)
    got = provenance(reg, "demo")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True).stdout.strip()
    assert got["distribution"] == "vssl-editable-demo" and got["version"] == "1.2.3" and got["editable"] is True
    assert got["git_commit"] == commit and got["git_dirty"] is True
    assert sys.modules.get("editable_demo_module") is None  # nothing was imported to find this out
