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
import torch
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


# --------------------------------------------------------------------------- broken plugins: one line each
_METHOD_HEAD = """\
import torch
from dataclasses import dataclass
from torch import nn
from benchmark.config import MethodConfig
from benchmark.method import Chance, Method, StepOutput
from benchmark.registry import register_method


@dataclass
class MkConfig(MethodConfig):
    name: str = "mk"
    clip_len: int = 4


@register_method("mk")
class Mk(Method):
    \"\"\"A plugin with one mistake (tests/methods/test_plugin.py).\"\"\"

    Config = MkConfig
    sampler = "clip"
    backbone_kind = "2d"

    def __init__(self, cfg, backbone, info):
        super().__init__(cfg, backbone, info)
        self.head = nn.Linear(backbone.num_features, 2)
"""
_STEP = """
    def training_step(self, batch, progress):
        logits = self.head(self.backbone(batch["clip"]).mean(1))
        loss = logits.float().pow(2).mean()
        return StepOutput(loss, {"loss": loss.detach()})  # no "accuracy" for the default pretext_eval
"""
_CHANCE = """
    def chance(self, batch_size):
        return Chance(0.69, 0.5)
"""
BROKEN = {  # module text -> what the one line must say
    "import_error": ("import torch\nSIZES = {}['missing']\n", ["failed to import at ", "mk_plugin.py:2", "KeyError"]),
    "registers_nothing": ("import torch\n", ["registered nothing"]),
    "missing_module": (None, ["failed to import: ModuleNotFoundError", "mk_plugin"]),  # no file:line of importlib
    "no_chance": (_METHOD_HEAD + _STEP, ["method 'mk' (mk_plugin.Mk) does not implement chance()"]),
    "sampler_typo": (
        _METHOD_HEAD.replace('backbone_kind = "2d"', 'backbone_kind = "2d"\n    sampler_fields = ("clip_lne",)')
        + _STEP
        + _CHANCE,
        ["method 'mk' cannot build its sampler 'clip' from its config: AttributeError", "clip_lne"],
    ),
    "no_accuracy": (_METHOD_HEAD + _STEP + _CHANCE, ["Mk.training_step logs no 'accuracy' scalar"]),
    "config_without_dataclass": (
        _METHOD_HEAD.replace("@dataclass\nclass MkConfig", "class MkConfig") + _STEP + _CHANCE,
        ["method 'mk' (mk_plugin): its config class MkConfig is not decorated with @dataclass"],
    ),
    "field_without_a_default": (
        _METHOD_HEAD.replace("    clip_len: int = 4", "    clip_len: int = 4\n    width: int") + _STEP + _CHANCE,
        ["failed to import at ", "mk_plugin.py:", "TypeError: non-default argument 'width'"],
    ),
    "backbone_kind_in_capitals": (
        _METHOD_HEAD.replace('backbone_kind = "2d"', 'backbone_kind = "2D"') + _STEP + _CHANCE,
        ["method 'mk' (mk_plugin) declares backbone_kind = '2D': one of '2d', '3d', 'either'"],
    ),
    # return values of the wrong kind: once tracebacks from the harness's own code
    "step_returns_a_tensor": (
        _METHOD_HEAD + _STEP.replace('return StepOutput(loss, {"loss": loss.detach()})', "return loss") + _CHANCE,
        ["method 'mk' (mk_plugin): training_step returned Tensor; it must return StepOutput(loss="],
    ),
    "string_scalar": (
        _METHOD_HEAD + _STEP.replace('{"loss": loss.detach()}', '{"accuracy": loss.detach(), "high": "x"}') + _CHANCE,
        ["training_step's scalar 'high' is 'x': StepOutput.scalars takes numbers or one-element tensors"],
    ),
    "chance_is_a_number": (
        _METHOD_HEAD
        + _STEP.replace('{"loss": loss.detach()}', '{"accuracy": loss.detach()}')
        + _CHANCE.replace("Chance(0.69, 0.5)", "0.5"),
        ["method 'mk' (mk_plugin): chance() returned 0.5, not a Chance(loss, accuracy[, measure])"],
    ),
    "chance_in_percent": (
        _METHOD_HEAD
        + _STEP.replace('{"loss": loss.detach()}', '{"accuracy": loss.detach()}')
        + _CHANCE.replace("Chance(0.69, 0.5)", "Chance(None, 100 / batch_size)"),
        ["method 'mk' (mk_plugin): chance(2) returned Chance(loss=None, accuracy=50.0", "a fraction in (0, 1]"],
    ),  # said before the first step (the run folder holds its lock only), not after the whole pre-training
    "detached_loss": (
        _METHOD_HEAD
        + _STEP.replace(
            'return StepOutput(loss, {"loss": loss.detach()})',
            'return StepOutput(loss.detach(), {"accuracy": loss.detach()})',
        )
        + _CHANCE,
        ["method 'mk' (mk_plugin): training_step's loss reaches no trainable parameter (detached"],
    ),
    "loss_not_finite_from_the_start": (
        _METHOD_HEAD
        + _STEP.replace(
            "loss = logits.float().pow(2).mean()", "loss = (logits.float().pow(2).mean() * 0).log()"
        ).replace('{"loss": loss.detach()}', '{"accuracy": loss.detach()}')
        + _CHANCE,
        [
            "the loss is nan at step 2 and was -inf already at step 1, before any update: method 'mk' (mk_plugin)",
            "not a learning-rate problem",
        ],  # first seen at the logging step 2 (EXTRA_ARGS), said of step 1
    ),
    "pretext_eval_changes_the_model": (
        _METHOD_HEAD
        + _STEP.replace('{"loss": loss.detach()}', '{"accuracy": loss.detach()}')
        + _CHANCE
        + """
    def pretext_eval(self, batch, progress):
        self.head.weight.add_(1.0)  # the mistake: a side effect
        return {"loss": torch.tensor(0.7), "accuracy": torch.tensor(0.5)}
""",
        ["method 'mk' (mk_plugin): pretext_eval changed its state ('head.weight'); it must leave the method"],
    ),
}


EXTRA_ARGS = {"loss_not_finite_from_the_start": ["optim.steps=3", "run.log_every=2"]}
BEFORE_THE_RUN_FOLDER = {
    "import_error", "registers_nothing", "missing_module", "no_chance", "sampler_typo", "backbone_kind_in_capitals",
    "config_without_dataclass", "field_without_a_default",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plugin_is_one_line_that_names_it(case, synth_data_home, tmp_path):
    """Each mistake a plugin author makes stops `vssl pretrain` with one line (exit 2) that names the plugin and
    the mistake; the ones a config or data check can see stop it before the run folder is written."""
    site = tmp_path / "site"
    (site / "vssl_mk-0.1.dist-info").mkdir(parents=True)
    (site / "vssl_mk-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: vssl-mk\nVersion: 0.1\n")
    (site / "vssl_mk-0.1.dist-info" / "entry_points.txt").write_text("[vssl.methods]\nmk = mk_plugin\n")
    text, expected = BROKEN[case]
    if text is not None:  # None: the entry point names a module that is not there
        (site / "mk_plugin.py").write_text(text)
    run_dir = tmp_path / "run"
    done = run_python(
        ["pretrain", "method.name=mk", "backbone.name=test_resnet", "data.resolution=32", "optim.steps=1",
         "optim.batch_size=2", "run.device=cpu", "--no-progress", "--out", str(run_dir), *EXTRA_ARGS.get(case, [])],
        site,
        {"VSSL_DATA": str(synth_data_home), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(part in lines[0] for part in expected), lines[0]
    if case in BEFORE_THE_RUN_FOLDER:  # the others show when the run starts, after the run folder is made
        assert not run_dir.exists()
    if case == "chance_in_percent":  # checked when the method is built: before any step or file of the run
        assert [p.name for p in run_dir.iterdir()] == [".lock"]


def test_the_walkthroughs_own_config_and_method_code_train_and_pass_the_pretext_check():
    """docs/adding-a-method.md sections 4 and 5, as printed: the config and method blocks run, one training step
    gives a finite loss, and the default pretext_eval finds the accuracy it reads (the registry is left alone:
    the doc's name is the example package's)."""
    import re

    from benchmark.backbones import build_backbone
    from benchmark.config import BackboneConfig
    from benchmark.method import Chance, DataInfo, Progress

    doc = (REPO / "docs" / "adding-a-method.md").read_text()
    section = {m.group(1): m.group(2) for m in re.finditer(r"\n## (\d)\. .*?\n(.*?)(?=\n## \d\. |\Z)", doc, re.S)}
    blocks = [b for n in ("4", "5") for b in re.findall(r"```python\n(.*?)```", section[n], re.S)]
    assert len(blocks) == 2
    namespace: dict = {}
    exec(compile("\n".join(blocks).replace('@register_method("simclr_clips")', ""), "adding-a-method.md", "exec"),
         namespace)  # fmt: skip
    cfg = namespace["SimCLRClipsConfig"](clip_len=2, embed_dim=8, hidden_dim=16)
    backbone = build_backbone(BackboneConfig(name="test_resnet"))
    method = namespace["SimCLRClips"](cfg, backbone, DataInfo(num_videos=8, num_classes=0, resolution=32))
    batch = {k: torch.rand(4, 2, 3, 32, 32) for k in ("clip_a", "clip_b")}
    out = method.training_step(batch, Progress(0, 10))
    assert torch.isfinite(out.loss) and "accuracy" in out.scalars
    method.eval()
    with torch.no_grad():
        measured = method.pretext_eval(batch, Progress(0, 10))
    assert set(measured) == {"loss", "accuracy"} and isinstance(method.chance(4), Chance)


def test_the_readme_example_method_runs_as_written(tmp_path, synth_data_home, monkeypatch):
    """README.md's "Adding a method" block, copied as a user would: it registers, pre-trains through the harness
    and gets the pretext verdict (so the snippet keeps its chance() and its accuracy scalar)."""
    import importlib
    import re

    from benchmark.cli import main

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Adding a method", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    METHODS.entries()  # load the registry first, so the copy below holds every method
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))  # the registration goes away with the test
    (tmp_path / "readme_example.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("readme_example")
    finally:
        sys.modules.pop("readme_example", None)
    out = tmp_path / "run"
    args = ["pretrain", "method.name=my_method", "optim.steps=3", "optim.batch_size=4", "data.resolution=32"]
    assert main([*args, "backbone.name=test_resnet", "--out", str(out), "--no-progress"]) == 0
    pretext = RunDir(out).metrics()["pretrain"]["pretext"]
    assert pretext["measure"] == "accuracy" and pretext["chance"]["accuracy"] == 0.25 and "learned" in pretext
    # dropped into methods/, it meets the in-tree contract too: its augmentation comes from its config
    from benchmark.config import load_config
    from benchmark.method import DataInfo

    milder = load_config(None, ["method.name=my_method", "method.crop_scale_min=0.9"]).method
    assert METHODS.get("my_method").sampler_options(milder, DataInfo(16))["aug"].crop_scale == (0.9, 1.0)
