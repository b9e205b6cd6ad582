"""`vssl sweep`: bad input fails with one line and submits nothing; dry run; smoke run; relaunch; debug cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main

from .conftest import tiny_base


def write(tmp_path: Path, spec: dict | str, name: str = "s.yaml") -> Path:
    f = tmp_path / name
    f.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return f


def random_init_spec(**kw) -> dict:
    """Cells that need no data: random init, pre-train stage only (saves the seeded init)."""
    base = {"backbone": {"name": "resnet10t"}, "method": {"name": "random_init"}, "run": {"device": "cpu"}}
    return {
        "name": "r",
        "base": base,
        "stages": ["pretrain"],
        "resources": {"timeout_min": 5, "cpus_per_task": 1, "mem_gb": 1},
        **kw,
    }


BAD = [
    ("name: x\ngrid: {optim.lr: [1,\n", [], "is not valid YAML"),
    (random_init_spec(grid={"optim.lrr": [0.1]}), [], "unknown config key 'optim.lrr' (did you mean 'optim.lr'?)"),
    (random_init_spec(grid={"optim.lr": []}), [], "is empty"),
    (random_init_spec(zip=[{"method.name": ["random_init", "tcee"]}]), [], "unknown method 'tcee'"),
    (random_init_spec(grid={"backbone.name": ["resnet10t", "resnet_nope"]}), [], "unknown backbone 'resnet_nope'"),
    (random_init_spec(), ["--cluster", "slurn"], "unknown cluster 'slurn' (did you mean 'slurm'?)"),
    (random_init_spec(grid={"method.name": ["tce"], "backbone.name": ["r3d_18"]}), [], "needs a 2D backbone"),
    (random_init_spec(stages=["pretrain", "linear"]), ["eval.dataset=ucf101"], "unknown dataset 'ucf101'"),
    (random_init_spec(resources={"gpus_per_node": 2}), ["--cluster", "slurm"], "tasks_per_node=2 for DDP"),
    (
        random_init_spec(),
        ["--cluster", "slurm", "optim.batch_size=3", "resources.tasks_per_node=2"],
        "not divisible by the 2 DDP",
    ),
]


@pytest.mark.parametrize("spec, extra, message", BAD, ids=[b[2][:30] for b in BAD])
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, capsys, spec, extra, message):
    out = tmp_path / "out"
    rc = main(["sweep", str(write(tmp_path, spec)), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SLURM_CONF": "/nonexistent/slurm.conf"}, "SLURM_CONF=/nonexistent/slurm.conf does not exist"),
        ({"PATH": "/nonexistent"}, "no sbatch/srun on PATH"),
    ],
)
def test_slurm_unreachable_submits_nothing(tmp_path, capsys, monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    rc = main(["sweep", str(write(tmp_path, random_init_spec())), "--cluster", "slurm", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "SLURM is not reachable" in err and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_dry_run_prints_cells_ids_resources_and_submits_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no SLURM needed to plan a SLURM sweep
    spec = random_init_spec(
        grid={"backbone.name": ["resnet10t", "resnet18"], "resources.timeout_min": [5, 30]}, seeds=[0, 1]
    )
    out = tmp_path / "out"
    # overrides may come after the options
    rc = main(
        [
            "sweep",
            str(write(tmp_path, spec)),
            "--cluster",
            "slurm",
            "--dry-run",
            "--out",
            str(out),
            "resources.mem_gb=3",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and not out.exists()
    from benchmark.sweeps import load_sweep

    sweep = load_sweep(spec)
    assert len(sweep.cells) == 8
    for cell in sweep.cells:
        assert cell.id in text
    from benchmark.backbones import build_backbone, param_count_millions
    from benchmark.config import BackboneConfig

    for name in ("resnet10t", "resnet18"):  # model sizes (random init = the bare backbone), from meta-device models
        assert f"{param_count_millions(build_backbone(BackboneConfig(name=name), device_meta=True)):.2f}" in text
    assert text.count("5 min") == 1 and text.count("30 min") == 1  # two job arrays, one per time limit
    assert "3 GB" in text
    assert "8 cells (8 to run)" in text and "2 job array(s) on slurm" in text and "nothing submitted" in text
    assert "note: SLURM is not reachable: no sbatch/srun on PATH" in text  # the real launch would stop there


@pytest.mark.parametrize("fails", ["on_meta", "always"])
def test_dry_run_builds_a_method_that_needs_real_tensors_and_names_one_that_cannot_be_built(
    tmp_path, capsys, monkeypatch, synth_data_home, fails
):
    """The dry run counts parameters on the meta device; a plugin whose __init__ reads a value (.item()) is built
    on the CPU instead and the dry run goes on; a bug in __init__ is one line naming the cell and the line."""
    from dataclasses import dataclass

    import torch

    from benchmark.config import MethodConfig
    from benchmark.method import Method
    from benchmark.registry import METHODS

    @dataclass
    class ReadsConfig(MethodConfig):
        name: str = "reads_a_value"

    class ReadsAValue(Method):
        Config = ReadsConfig
        sampler = "frame_pair"

        def __init__(self, cfg, backbone, info):
            super().__init__(cfg, backbone, info)
            scale = next(backbone.parameters()).abs().mean().item()  # no value on the meta device
            self.head = torch.nn.Linear(backbone.num_features, 8 if fails == "on_meta" else backbone.out_dim)
            self.head.weight.data.mul_(scale)

        def chance(self, batch_size):
            raise NotImplementedError  # never called by a dry run

        def training_step(self, batch, progress):
            raise NotImplementedError

    METHODS.entries()
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.register("reads_a_value")(ReadsAValue)
    spec = random_init_spec(zip=[{"method.name": ["reads_a_value"]}])
    rc = main(["sweep", str(write(tmp_path, spec)), "--dry-run", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    if fails == "on_meta":
        assert rc == 0 and "1 cells (1 to run)" in captured.out
    else:
        # the error's one line (a warning printed once per process, such as a batch larger than the set, may precede)
        (line,) = [x for x in captured.err.strip().splitlines() if x.startswith("vssl sweep: error:")]
        assert rc == 2 and "method 'reads_a_value' could not be built at " in line and __file__ in line
        assert "AttributeError: 'TimmBackbone2D' object has no attribute 'out_dim'" in line


def test_a_label_only_resource_does_not_split_job_arrays(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    spec = random_init_spec(grid={"resources.gpu_hours_estimate": [1, 2.5]}, seeds=[0])
    assert (
        main(["sweep", str(write(tmp_path, spec)), "--cluster", "slurm", "--dry-run", "--out", str(tmp_path / "o")])
        == 0
    )
    text = capsys.readouterr().out
    assert "1 job array(s) on slurm" in text and "array 1: 2 cells" in text and "~3.5 GPU-h in all" in text


def test_a_cluster_smoke_asks_for_minutes_not_the_full_time_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    spec = random_init_spec(seeds=[0])
    spec["resources"] = {"timeout_min": 2880, "gpu_hours_estimate": 40}
    spec["stages"] = ["finetune:synthetic:1"]
    out = tmp_path / "o"
    assert (
        main(
            [
                "sweep",
                str(write(tmp_path, spec)),
                "--cluster",
                "slurm",
                "--smoke",
                "--dry-run",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "array 1: 1 cells: 30 min" in text and "GPU-h" not in text and "stages ['finetune']" in text


@pytest.mark.slow
def test_local_relaunch_skips_done_and_runs_only_new_cells(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(write(tmp_path, random_init_spec(seeds=[0]))), "--out", str(out), "--no-progress"]) == 0
    (first,) = [d for d in (out / "cells").iterdir()]
    before = (first / "metrics.json").read_text()
    stamp = (first / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert (
        main(["sweep", str(write(tmp_path, random_init_spec(seeds=[0, 1]))), "--out", str(out), "--no-progress"]) == 0
    )
    text = capsys.readouterr().out
    assert f"{first.name} seed=0: complete, skipped" in text
    assert len(list((out / "cells").iterdir())) == 2
    assert (first / "metrics.json").read_text() == before and (first / "metrics.json").stat().st_mtime_ns == stamp
    manifest = json.loads((out / "sweep.json").read_text())
    assert len(manifest["cells"]) == 2 and all(c["required"] == ["pretrain"] for c in manifest["cells"].values())


def test_a_relaunch_with_changed_settings_never_counts_old_cells_complete(tmp_path, capsys):
    """Cell ids hash a cell's axes and seed, not the base: a relaunch with another base value (or command-line
    value) would print "complete" for cells made with the old one. One line instead, nothing written; settings a
    resume may change (workers, logging) still relaunch."""
    out = tmp_path / "out"
    sweep = write(tmp_path, random_init_spec(seeds=[0]))
    assert main(["sweep", str(sweep), "--out", str(out), "--no-progress"]) == 0
    (cell,) = (out / "cells").iterdir()
    files = {p.name: p.read_bytes() for p in cell.iterdir() if p.is_file()}
    manifest = (out / "sweep.json").read_bytes()
    capsys.readouterr()
    for changed in (["backbone.name=resnet18"], ["optim.lr=0.5"], ["--dry-run", "backbone.name=resnet18"]):
        assert main(["sweep", str(sweep), "--out", str(out), "--no-progress", *changed]) == 2
        err = capsys.readouterr().err.strip()
        assert f"cell {cell.name} (seed=0) in {out} ran with other settings (" in err and "\n" not in err
        assert "launch into another --out" in err
    assert {p.name: p.read_bytes() for p in cell.iterdir() if p.is_file()} == files
    assert (out / "sweep.json").read_bytes() == manifest
    assert main(["sweep", str(sweep), "--out", str(out), "--no-progress", "run.log_every=5", "data.num_workers=0"]) == 0


def test_two_local_processes_never_run_the_same_cell(tmp_path, capsys):
    """A cell whose lock another process holds is passed by (and said so); the lock dies with its holder."""
    from benchmark.launch.local import cell_dir, cell_lock
    from benchmark.sweeps import load_sweep

    out = tmp_path / "out"
    spec = write(tmp_path, random_init_spec(seeds=[0, 1]))
    busy = load_sweep(spec, [], out).cells[0]
    with cell_lock(cell_dir(out, busy.id)) as held:  # stands in for a second `vssl sweep` working on that cell
        assert held
        assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"{busy.id} {busy.label}: running in another process, skipped" in text
    assert "1 of 2 cells complete, 1 held by another process (not waited for; `vssl status" in text
    assert not (cell_dir(out, busy.id) / "metrics.json").exists()
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0  # lock released: now it runs
    assert (cell_dir(out, busy.id) / "metrics.json").exists() and "2 of 2 cells complete" in capsys.readouterr().out


def test_a_cell_that_raises_is_named_at_its_failing_line_and_the_sweep_goes_on(tmp_path, capsys, monkeypatch):
    """A plugin's bug: the FAILED line names the plugin's line (not torch's or the harness's beneath it) and the
    file that keeps the traceback; bad input (a UserError) keeps its one line. The other cell still runs."""
    import importlib.util

    from benchmark.errors import UserError
    from benchmark.launch import local

    plugin = tmp_path / "my_plugin.py"
    # the error is raised inside torch's own Python (nn.Linear.forward): the plugin's call is the line to name
    plugin.write_text(
        "import torch\n\ndef training_step(spec, **kw):\n    return torch.nn.Linear(3, 2)(torch.ones(4))\n"
    )
    module_spec = importlib.util.spec_from_file_location("my_plugin", plugin)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    real = local.run_cell
    calls = iter([module.training_step, real])
    monkeypatch.setattr(local, "run_cell", lambda spec, **kw: next(calls)(spec, **kw))
    out = tmp_path / "out"
    assert (
        main(["sweep", str(write(tmp_path, random_init_spec(seeds=[0, 1]))), "--out", str(out), "--no-progress"]) == 1
    )
    (failed,) = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
    cell = failed.split()[1]
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in failed
    assert f" at {plugin}:4 (traceback: {out / 'cells' / cell / 'error.txt'})" in failed
    assert "my_plugin.py" in (out / "cells" / cell / "error.txt").read_text()
    assert sum((d / "metrics.json").exists() for d in (out / "cells").iterdir()) == 1  # the other cell ran

    def bad_input(spec, **kw):
        raise UserError("data.root = /nowhere: no such folder")

    monkeypatch.setattr(local, "run_cell", bad_input)
    assert (
        main(["sweep", str(write(tmp_path, random_init_spec(seeds=[0, 1]))), "--out", str(out), "--no-progress"]) == 1
    )
    (failed,) = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
    assert failed.endswith("FAILED: UserError: data.root = /nowhere: no such folder")

    # raised in a DataLoader worker (data.num_workers > 0): torch hands both back with the worker's traceback as
    # text; the line is still one, and names the plugin's frame in that text
    from torch._utils import ExceptionWrapper

    def in_a_worker(raise_it):
        def run(spec, **kw):
            try:
                raise_it(spec)
            except Exception:
                ExceptionWrapper(where="in DataLoader worker process 0").reraise()

        return run

    for raise_it, expected in [
        (module.training_step, f"RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x4 and 3x2) at {plugin}:4"),
        (bad_input, "UserError: data.root = /nowhere: no such folder"),
    ]:
        monkeypatch.setattr(local, "run_cell", in_a_worker(raise_it))
        out = tmp_path / expected[:4]
        assert (
            main(["sweep", str(write(tmp_path, random_init_spec(seeds=[0]))), "--out", str(out), "--no-progress"]) == 1
        )
        (failed,) = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
        assert f"FAILED: {expected}" in failed


@pytest.mark.slow
def test_debug_cluster_runs_cells_and_reports_a_failure(tmp_path, capsys):
    out = tmp_path / "out"
    spec = random_init_spec(zip=[{"backbone.name": ["resnet10t", "resnet18"], "run.device": ["cpu", "cuda:7"]}])
    rc = main(["sweep", str(write(tmp_path, spec)), "--cluster", "debug", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1  # one cell failed, the other completed
    from benchmark.launch.state import sweep_status
    from benchmark.sweeps import load_sweep

    by_id = {r.cell_id: r for r in sweep_status(out)}
    rows = {c.config.backbone.name: by_id[c.id] for c in load_sweep(spec).cells}
    assert rows["resnet10t"].state == "done"
    assert rows["resnet18"].state == "failed"
    assert "cuda:7" in rows["resnet18"].error[-1] and "FAILED" in captured.err


@pytest.mark.slow
def test_smoke_runs_every_cell_for_two_steps_on_a_stand_in(tmp_path, capsys):
    spec = {
        "name": "sm",
        "base": {**tiny_base(), "data": {"dataset": "synthetic-pool", "resolution": 64}},
        "zip": [{"method": [tiny_base()["method"], {"name": "random_init"}]}],
        "stages": ["pretrain", "linear"],
        "overrides": {"optim.steps": 500, "eval.linear_epochs": 300},
    }
    out = tmp_path / "out"
    rc = main(["sweep", str(write(tmp_path, spec)), "--smoke", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert not out.exists()  # the real sweep folder is untouched
    from benchmark.sweeps import load_sweep

    ids = {c.id for c in load_sweep(spec).cells}
    smoke = Path(str(out) + "-smoke")
    assert {d.name for d in (smoke / "cells").iterdir()} == ids  # the same cells
    for cid in ids:
        metrics = json.loads((smoke / "cells" / cid / "metrics.json").read_text())
        assert "linear/synthetic/split1" in metrics
        cfg = yaml.safe_load((smoke / "cells" / cid / "config.yaml").read_text())
        assert cfg["data"]["resolution"] == 32 and cfg["eval"]["linear_epochs"] == 2
        if metrics["pretrain"]["trained"]:
            assert metrics["pretrain"]["steps"] == 2
    assert (smoke / "data" / "synthetic").is_dir()
    # its table and report say what it is (they open with the manifest's description)
    description = json.loads((smoke / "sweep.json").read_text())["description"]
    assert description.startswith("SMOKE RUN of sm: every cell ran two steps") and "not the methods" in description
    capsys.readouterr()
    assert main(["report", str(smoke), "--out", str(tmp_path / "report")]) == 0
    assert "SMOKE RUN of sm" in (tmp_path / "report" / "README.md").read_text()
    assert main(["table", str(smoke)]) == 0
    assert capsys.readouterr().out.startswith("SMOKE RUN of sm: ")


def test_smoke_resolves_a_bank_sized_k_on_the_stand_in_and_checks_the_pretext_on_one_batch():
    """table1.yaml's Kinetics TCE rows set K = 8192: the stand-in's handful of videos must not refuse them."""
    from benchmark.config import load_config
    from benchmark.launch.local import smoke_overrides

    kinetics = smoke_overrides(load_config(None, ["method.name=tce", "method.negatives=8192"]), world_size=4)
    assert kinetics["method.negatives"] == "auto" and kinetics["run.pretext_samples"] == 8
    assert "method.negatives" not in smoke_overrides(load_config(None, ["method.name=tce"]))
    assert "method.negatives" not in smoke_overrides(load_config(None, ["method.name=rotnet3d"]))
    videogan = smoke_overrides(load_config(None, ["method.name=videogan", "method.scale=paper", "data.resolution=64"]))
    assert videogan["method.scale"] == "lite" and videogan["data.resolution"] == 32
