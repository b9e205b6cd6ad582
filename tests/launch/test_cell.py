"""One cell through run_cell: every stage, and evaluations of intermediate checkpoints (Figure 5's x axis)."""

from __future__ import annotations

import types

from benchmark.config import build_experiment
from benchmark.launch.cell import required_keys, run_cell
from benchmark.rundir import RunDir

from .conftest import tiny_base


def _spec(tmp_path, tree):
    return {"sweep": "t", "cell_id": "c", "tree": tree, "run_path": str(tmp_path / "run"), "label": "c", "env": {}}


def test_epoch_checkpoints_are_evaluated_when_asked_and_make_the_run_complete(tmp_path, synth_data_home):
    tree = tiny_base()
    tree["run"].update(stages=["pretrain", "knn"], epoch_checkpoints=[2, 4, 99], evaluate_epoch_checkpoints=True)
    cfg = build_experiment(tree)
    keys = required_keys(cfg)
    assert keys == ["pretrain", "knn/synthetic/split1", "knn/synthetic/split1@step_2", "knn/synthetic/split1@step_4"]
    results = run_cell(_spec(tmp_path, tree), progress_bar=False)
    run = RunDir(tmp_path / "run")
    assert run.is_complete() and set(keys) <= set(run.metrics())
    assert [run.metrics()[k]["checkpoint_step"] for k in keys[1:]] == [6, 2, 4]  # last.pt is step 6
    assert all(isinstance(results[k], dict) for k in keys)
    again = run_cell(_spec(tmp_path, tree), progress_bar=False)  # a relaunch redoes nothing
    assert all(again[k] == "skipped (done)" for k in keys)


def test_a_cells_end_time_is_stamped_after_its_evaluations(tmp_path, synth_data_home, monkeypatch):
    """env.json's end_time is when the cell's last stage ended (pre-training alone stamps its own end first); a
    relaunch that finds every stage done leaves it alone."""
    import benchmark.rundir as rundir

    tree = tiny_base()
    tree["run"].update(stages=["pretrain", "knn"])
    monkeypatch.setattr(rundir, "time", types.SimpleNamespace(strftime=lambda fmt: "2099-01-01T00:00:00+0000"))
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    run = RunDir(tmp_path / "run")
    assert run.is_complete() and run.env()["end_time"] == "2099-01-01T00:00:00+0000"
    monkeypatch.setattr(rundir, "time", types.SimpleNamespace(strftime=lambda fmt: "2100-01-01T00:00:00+0000"))
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    assert run.env()["end_time"] == "2099-01-01T00:00:00+0000"


def test_without_the_switch_only_last_pt_is_evaluated(tmp_path, synth_data_home):
    tree = tiny_base()
    tree["run"].update(stages=["pretrain", "knn"], epoch_checkpoints=[2])
    assert required_keys(build_experiment(tree)) == ["pretrain", "knn/synthetic/split1"]
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    run = RunDir(tmp_path / "run")
    assert run.is_complete() and sorted(run.metrics()) == ["knn/synthetic/split1", "pretrain"]
    assert (run.path / "checkpoints" / "step_2.pt").exists()


def test_an_evaluation_made_before_pre_training_ended_is_run_again(tmp_path, synth_data_home):
    """A `vssl evaluate` on an interrupted run left an entry from an earlier checkpoint: the relaunched cell
    evaluates the finished last.pt again instead of counting that entry as the final result."""
    import json

    tree = tiny_base()
    tree["run"].update(stages=["pretrain", "knn"])
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    path = tmp_path / "run" / "metrics.json"
    metrics = json.loads(path.read_text())
    final = metrics["pretrain"]["steps"]
    metrics["knn/synthetic/split1"]["checkpoint_step"] = final - 4
    path.write_text(json.dumps(metrics))
    again = run_cell(_spec(tmp_path, tree), progress_bar=False)
    assert isinstance(again["knn/synthetic/split1"], dict)  # evaluated, not "skipped (done)"
    assert RunDir(tmp_path / "run").metrics()["knn/synthetic/split1"]["checkpoint_step"] == final


def test_a_split_ddp_cell_pre_trains_in_one_job_and_evaluates_in_the_next(tmp_path, synth_data_home, monkeypatch):
    """The parts benchmark.launch.slurm submits for a DDP cell: "pretrain" stops after pre-training (no evaluation;
    env.json's end_time is pre-training's); "evaluate" runs the evaluations on the finished run and stamps the
    cell's end."""
    import benchmark.rundir as rundir

    tree = tiny_base()
    tree["run"].update(stages=["pretrain", "knn"])
    spec = _spec(tmp_path, tree)
    monkeypatch.setattr(rundir, "time", types.SimpleNamespace(strftime=lambda fmt: "2099-01-01T00:00:00+0000"))
    first = run_cell({**spec, "part": "pretrain"}, progress_bar=False)
    run = RunDir(tmp_path / "run")
    assert list(first) == ["pretrain"] and sorted(run.metrics()) == ["pretrain"]
    monkeypatch.setattr(rundir, "time", types.SimpleNamespace(strftime=lambda fmt: "2100-01-01T00:00:00+0000"))
    second = run_cell({**spec, "part": "evaluate"}, progress_bar=False)
    assert second["pretrain"] == "skipped (done)" and isinstance(second["knn/synthetic/split1"], dict)
    assert run.is_complete() and run.env()["end_time"] == "2100-01-01T00:00:00+0000"
    assert run_cell({**spec, "part": "pretrain"}, progress_bar=False) == {"pretrain": "skipped (done)"}


def test_an_evaluation_job_after_unfinished_pre_training_keeps_its_traceback(tmp_path, synth_data_home):
    """The pre-training job failed (its traceback is in error.txt): the evaluation job that starts after it neither
    pre-trains on one task nor replaces that traceback; it adds one line saying how to go on."""
    import pytest

    from benchmark.launch.cell import CellJob

    tree = tiny_base()
    tree["run"].update(stages=["pretrain", "knn"])
    run_path = tmp_path / "run"
    run_path.mkdir()
    (run_path / "error.txt").write_text("Traceback (most recent call last):\nRuntimeError: loss is nan at step 2\n")
    spec = {**_spec(tmp_path, tree), "part": "evaluate", "after": "12_0"}
    with pytest.raises(Exception, match="job 12_0"):
        CellJob()(spec)
    lines = (run_path / "error.txt").read_text().splitlines()
    assert lines[1] == "RuntimeError: loss is nan at step 2"
    assert lines[2].startswith("evaluation job: the cell's pre-training (job 12_0) ended before it finished")
    assert not RunDir(run_path).finished_pretraining() and not (run_path / "checkpoints" / "last.pt").exists()


def test_a_new_attempt_removes_an_earlier_attempts_traceback(tmp_path, synth_data_home):
    """error.txt says why the last attempt failed: a relaunch that starts again removes it (status would otherwise
    show an interrupted new attempt as the old failure, and an evaluation job's line would land under it)."""
    from benchmark.launch.cell import CellJob

    tree = tiny_base()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "error.txt").write_text("RuntimeError: loss is nan at step 2\n")
    CellJob()(_spec(tmp_path, tree))
    assert not (tmp_path / "run" / "error.txt").exists()


def test_a_requeue_slurm_made_without_the_harness_is_counted(tmp_path, synth_data_home, monkeypatch):
    """`scontrol requeue` (or a node failure) restarts the job without submitit's checkpoint(), which counts the
    harness's own requeues: env.json takes SLURM's restart count when it is larger. A first attempt, whose
    env.json pre-training writes whole, is left to it."""
    tree = tiny_base()
    tree["run"].update(stages=["pretrain"])
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    run = RunDir(tmp_path / "run")
    assert "requeues" not in run.env() and run.env()["seed"] == 0  # a first attempt: nothing to count yet
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")  # requeued again: it finds the finished run
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    assert run.env()["requeues"] == 3
    run.update_env(requeues=5)  # the harness's own count is larger: kept
    run_cell(_spec(tmp_path, tree), progress_bar=False)
    assert run.env()["requeues"] == 5
