"""Feeding a GPU: data.num_workers auto, pinned batches, the optional torch.compile, and the GPU check's
no-CUDA path (what CI can run of it)."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark.cli import main
from benchmark.device import resolve_workers


def test_num_workers_auto_uses_the_slurm_cpus_or_affinity_and_stays_0_on_a_plain_cpu(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert resolve_workers("auto", cpu) == 0  # today's CPU default, measured best on 2 cores
    assert resolve_workers(3, cpu) == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "10")
    assert resolve_workers("auto", cpu) == 9  # one CPU stays with the training process
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    import os

    assert resolve_workers("auto", cuda) == max(0, len(os.sched_getaffinity(0)) - 1)


@pytest.mark.slow
def test_compile_keeps_the_checkpoint_keys_and_trains(synth_data_home, tmp_path):
    """run.compile with the cheap aot_eager backend (inductor took 195 s for a first CPU step here)."""
    from benchmark.checkpoint import load
    from benchmark.config import load_config
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    cfg = load_config({}, ["method.name=tce", "method.negatives=1", "data.resolution=32", "optim.batch_size=4",
                           "optim.steps=2", "run.compile=aot_eager", "run.precision=fp32", "run.pretext_samples=4"])  # fmt: skip
    threads = torch.get_num_threads()
    try:
        entry = pretrain(RunDir(tmp_path / "run"), cfg, {}, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    state = load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert entry["final_loss"] > 0 and not any("_orig_mod" in k for k in state["backbone"])


def test_the_gpu_check_without_cuda_resolves_every_stage_and_marks_it_skipped(tmp_path, capsys, monkeypatch):
    from benchmark.perf.gpu import STAGES

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "gpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("gpu check: no CUDA")
    figures = json.loads((tmp_path / "results" / "perf" / "gpu.json").read_text())
    for stage in STAGES:
        entry = figures["stages"][stage]
        assert entry["status"] == "skipped: no CUDA" and entry["params_millions"] > 0
        assert f"{stage}: {entry['method']} on {entry['backbone']} ({entry['params_millions']} M parameters), " in out
        assert "x".join(map(str, entry["input_shape"])) in out
    assert (tmp_path / "results" / "perf" / "gpu.md").exists()


def test_pretrain_into_a_run_of_other_settings_is_refused_before_anything_is_written(synth_data_home, tmp_path, capsys):
    """`vssl pretrain --out RUN` resumes RUN; with another method (or schedule) it would load the old checkpoint
    into a different model and overwrite RUN's config.yaml: one line instead, RUN untouched. Same settings and
    a changed run.* setting still resume."""
    from benchmark.cli import main

    base = ["pretrain", "backbone.name=test_resnet", "data.resolution=32", "optim.batch_size=2", "run.device=cpu",
            "--no-progress", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main([*base, "optim.steps=2"]) == 0
    printed = capsys.readouterr().out.splitlines()  # the summary and the held-out pretext verdict, one line each
    assert printed[-2].startswith("pre-trained tce into") and printed[-1].startswith("pretext")
    before = (tmp_path / "run" / "config.yaml").read_text()
    assert main([*base, "optim.steps=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a run with other settings (optim.steps 2 -> 4)" in err and len(err.splitlines()) == 1
    assert main([*base, "method.name=vcop", "backbone.inflate=true", "optim.steps=2"]) == 2
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    assert main([*base, "optim.steps=2", "run.seed=1"]) == 2  # another seed draws other batches
    assert main([*base, "optim.steps=2", "run.log_every=1"]) == 0  # resumes: nothing left to train
    import yaml

    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del config["method"]["crop_scale_max"]  # as a run made before the field existed records it
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(config))
    assert main([*base, "optim.steps=2"]) == 0


def test_pretrain_on_a_finished_run_changes_nothing(synth_data_home, tmp_path, capsys):
    """Running the same `vssl pretrain` again on a finished run (or with a changed eval.* or run.* setting, which a
    resume may change) leaves its pretrain entry (wall time, throughput), config.yaml and checkpoint as they were,
    and says so: rewriting them zeroed the cost figures reports read and relabelled earlier evaluations."""
    from benchmark.cli import main

    base = ["pretrain", "backbone.name=test_resnet", "data.resolution=32", "optim.batch_size=2", "run.device=cpu",
            "optim.steps=2", "--no-progress", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main([*base, "run.seed=5"]) == 0
    from benchmark.rundir import RunDir

    env = RunDir(tmp_path / "run").env()  # provenance: the seed, and the hash a relaunch compares against
    assert env["seed"] == 5 and isinstance(env["config_hash"], str) and len(env["config_hash"]) == 12
    base.append("run.seed=5")
    files = {n: (tmp_path / "run" / n).read_bytes() for n in ("metrics.json", "config.yaml", "env.json")}
    checkpoint = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    capsys.readouterr()
    assert main([*base, "eval.linear_epochs=7", "run.log_every=1"]) == 0
    assert "has finished pre-training; nothing was changed" in capsys.readouterr().err
    assert {n: (tmp_path / "run" / n).read_bytes() for n in files} == files
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == checkpoint


def test_the_gpu_check_keeps_earlier_stages_of_the_same_gpu_and_never_overwrites_figures_without_cuda(
    tmp_path, capsys, monkeypatch
):
    """`vssl bench gpu --stages mining` after a full run keeps the other stages measured on that GPU; a call on a
    machine without CUDA leaves measured figures alone (a lent GPU's 15 minutes are not lost to a laptop run)."""
    from benchmark.perf import gpu

    perf = tmp_path / "results" / "perf"
    perf.mkdir(parents=True)
    done = {"status": "done", "step_ms": 12.5, "date": "2026-12-01T10:00:00+0000"}
    earlier = {"stages": {s: dict(done) for s in gpu.STAGES}, "gpu": "NVIDIA H200", "date": "2026-12-01T10:00:00+0000"}
    (perf / "gpu.json").write_text(json.dumps(earlier))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "gpu", "--out", str(tmp_path)]) == 0
    assert "holds measured figures and is left as it is" in capsys.readouterr().out
    assert json.loads((perf / "gpu.json").read_text()) == earlier
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H200")
    monkeypatch.setitem(gpu.STAGE_FUNCTIONS, "mining", lambda figures: {"mining_ms": 3.0})
    assert main(["bench", "gpu", "--out", str(tmp_path), "--stages", "mining"]) == 0
    stages = json.loads((perf / "gpu.json").read_text())["stages"]
    assert list(stages) == list(gpu.STAGES)
    assert stages["mining"]["status"] == "done" and stages["mining"]["mining_ms"] == 3.0
    assert stages["mining"]["date"] != done["date"]
    assert all(stages[s] == done for s in gpu.STAGES if s != "mining")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA A100")  # another GPU: earlier ones dropped
    assert main(["bench", "gpu", "--out", str(tmp_path), "--stages", "mining"]) == 0
    assert list(json.loads((perf / "gpu.json").read_text())["stages"]) == ["mining"]


def test_setting_changes_count_evaluation_settings_only_for_an_evaluated_run(tmp_path):
    """What `vssl sweep` compares before relaunching onto cells (commands/sweep.check_existing_cells): a finished
    cell's evaluations were made with its eval.* settings, so changing them is a different recipe; before its
    evaluations they may change like workers or logging (bookkeeping such as eval.batch_size never counts)."""
    from benchmark.config import build_experiment, dump_yaml, merge_overrides, to_dict
    from benchmark.rundir import RunDir
    from benchmark.train import setting_changes

    cfg = build_experiment({"method": {"name": "tce"}})
    (tmp_path / "config.yaml").write_text(dump_yaml(to_dict(cfg)))
    run = RunDir(tmp_path)
    epochs = build_experiment(merge_overrides(to_dict(cfg), ["eval.linear_epochs=7", "eval.batch_size=3"]))
    assert setting_changes(run, epochs) == ""
    assert setting_changes(run, epochs, evaluated=True) == f"eval.linear_epochs {cfg.eval.linear_epochs} -> 7"
    steps = build_experiment(merge_overrides(to_dict(cfg), ["optim.steps=9", "run.log_every=3"]))
    assert setting_changes(run, steps) == f"optim.steps {cfg.optim.steps} -> 9"


def test_file_names_that_are_not_utf8_are_hashed_and_written_back(tmp_path):
    """A video named with Latin-1 bytes reaches Python as surrogates: the held-out split hashed it with a strict
    encode (UnicodeEncodeError before any run was written), and check-data's CSV lost its findings."""
    import dataclasses

    from benchmark.config import build_experiment
    from benchmark.data.check import CheckReport, Finding, write_csv
    from benchmark.data.index import VideoRecord
    from benchmark.method import Pretraining
    from benchmark.train import split_pretext

    name = b"c2/good_\xe9".decode("utf-8", "surrogateescape")
    records = [VideoRecord(f"/d/{i}.avi", 0, f"c1/v{i}") for i in range(9)] + [VideoRecord("/d/x.avi", 1, name)]
    cfg = build_experiment({"method": {"name": "tce"}})
    trained = dataclasses.make_dataclass("M", [], namespace={"pretraining": Pretraining.WEIGHTS})
    train, held = split_pretext(records, cfg, trained)
    assert len(train) + len(held) == 10 and len(held) == 2
    write_csv(CheckReport(checked=1, bad=[Finding(f"/d/{name}.avi", "cannot decode")]), tmp_path / "f.csv")
    assert b"/d/c2/good_\xe9.avi" in (tmp_path / "f.csv").read_bytes()


def test_a_diverged_pre_training_is_one_line(synth_data_home, tmp_path, capsys):
    """optim.lr=1e30 (finite, so accepted) makes the loss NaN within a few steps: one line that says training
    diverged and what to lower, exit 2 (it was a RuntimeError traceback)."""
    from benchmark.cli import main

    argv = ["pretrain", "backbone.name=test_resnet", "data.resolution=32", "optim.batch_size=2", "run.device=cpu",
            "optim.steps=6", "optim.warmup_steps=0", "optim.lr=1e30", "run.log_every=1", "--no-progress",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "training diverged; lower optim.lr (now 1e+30)" in err and "\n" not in err


def test_a_checkpoint_missing_backbone_weights_is_refused_in_one_line(synth_data_home, tmp_path, capsys):
    """Never evaluated on partly random weights: a last.pt whose backbone lacks a key stops the evaluation."""
    from benchmark.cli import main

    run = tmp_path / "run"
    assert main(["pretrain", "backbone.name=test_resnet", "data.resolution=32", "optim.batch_size=2", "run.device=cpu",
                 "optim.steps=1", "--no-progress", "--out", str(run)]) == 0  # fmt: skip
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    dropped = sorted(state["backbone"])[0]
    del state["backbone"][dropped]
    torch.save(state, run / "checkpoints" / "last.pt")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "knn", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not hold the weights of this run's backbone (test_resnet)" in err and dropped in err
    assert len(err.splitlines()) == 1
