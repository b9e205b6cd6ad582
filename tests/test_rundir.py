import json

import pytest

from benchmark.rundir import CorruptRun, RunDir, atomic_write_text


def make_run(tmp_path, stages=("pretrain", "linear")):
    run = RunDir(tmp_path / "run").create()
    run.write_config(
        {"run": {"stages": list(stages)}, "eval": {"dataset": "synthetic", "split": 1}}, {"method": {"name": "tce"}}
    )
    return run


def test_complete_only_when_every_stage_has_an_entry(tmp_path):
    run = make_run(tmp_path)
    assert run.status()[0] == "incomplete"
    run.add_metrics("pretrain", {"steps": 3})
    status, reason = run.status()
    assert status == "incomplete" and "linear/synthetic/split1" in reason
    run.add_metrics("linear/synthetic/split1", {"top1": 50.0})
    assert run.status() == ("complete", "")
    assert run.metrics()["pretrain"] == {"steps": 3}


def test_pretraining_is_finished_only_once_its_entry_is_written(tmp_path):
    run = make_run(tmp_path)
    run.checkpoint_path().write_bytes(b"")  # last.pt exists from the first checkpoint on
    assert not run.finished_pretraining()
    run.add_metrics("pretrain", {"steps": 3})
    assert run.finished_pretraining()


def test_half_written_metrics_is_corrupt(tmp_path):
    run = make_run(tmp_path)
    (run.path / "metrics.json").write_text('{"pretrain": {"steps": ')
    assert run.status()[0] == "corrupt"
    with pytest.raises(CorruptRun):
        run.metrics()


def test_empty_dir(tmp_path):
    assert RunDir(tmp_path).status()[0] == "empty"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.json", json.dumps({"x": 1}))
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_scalars_append_and_truncate_on_resume(tmp_path):
    run = make_run(tmp_path)
    run.log_scalars([{"stage": "pretrain", "step": s, "loss": 1.0 / s} for s in range(1, 6)])
    run.log_scalars([{"stage": "finetune/synthetic/split1", "step": s, "loss": 0.5} for s in (1, 9)])
    with open(run.path / "scalars.jsonl", "a") as f:
        f.write('{"stage": "pretrain", "st')  # a line cut by a kill
    run.truncate_scalars("pretrain", after_step=3)
    assert [(r["stage"][:4], r["step"]) for r in run.scalars()] == [("pret", 1), ("pret", 2), ("pret", 3),
                                                                    ("fine", 1), ("fine", 9)]  # fmt: skip
    run.truncate_scalars("finetune/synthetic/split1", after_step=1)  # a fine-tune resumed at its epoch 1
    assert [(r["stage"][:4], r["step"]) for r in run.scalars()] == [("pret", 1), ("pret", 2), ("pret", 3), ("fine", 1)]


def test_overrides_and_config_roundtrip(tmp_path):
    run = make_run(tmp_path)
    assert run.overrides() == {"method": {"name": "tce"}}
    assert run.config()["eval"]["dataset"] == "synthetic"


def test_required_stages_follow_stage_specs(tmp_path):
    run = RunDir(tmp_path / "r").create()
    run.write_config(
        {
            "run": {"stages": ["pretrain", "finetune:ucf101", "finetune:hmdb51"]},
            "eval": {"dataset": "ucf101", "split": 1},
        },
        {},
    )
    assert run.required_stages() == ["pretrain", "finetune/ucf101/split1", "finetune/hmdb51/split1"]


def test_evaluated_checkpoints_are_required_for_a_complete_run(tmp_path):
    """With evaluate_epoch_checkpoints, each step_N.pt's evaluation is a stage: a run without it is incomplete."""
    run = RunDir(tmp_path / "r").create()
    run.write_config({"run": {"stages": ["pretrain", "linear"], "epoch_checkpoints": [2, 4, 99],
                              "evaluate_epoch_checkpoints": True},
                      "optim": {"steps": 10}, "eval": {"dataset": "synthetic", "split": 1}}, {})  # fmt: skip
    required = run.required_stages()
    assert "linear/synthetic/split1@step_2" in required and "linear/synthetic/split1@step_4" in required
    assert not any("step_99" in k for k in required)  # past the run's steps: never written
    for key in ("pretrain", "linear/synthetic/split1"):
        run.add_metrics(key, {"top1": 1.0} if "linear" in key else {})
    assert run.status()[0] == "incomplete"
    for key in ("linear/synthetic/split1@step_2", "linear/synthetic/split1@step_4"):
        run.add_metrics(key, {"top1": 1.0})
    assert run.status()[0] == "complete"


@pytest.mark.parametrize("bad", ["lineer", "pretrain:x", "knn:a:b", "knn:a:1:2"])
def test_bad_stage_specs(bad):
    from benchmark.config import load_config
    from benchmark.errors import UserError

    with pytest.raises(UserError):
        load_config(None, [f"run.stages=[{bad}]"])


def test_git_state_can_leave_out_the_folder_being_written(tmp_path):
    import subprocess

    from benchmark.rundir import git_state

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "table.md").write_text("old\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    (tmp_path / "report" / "table.md").write_text("new\n")
    assert git_state(tmp_path)["git_dirty"] is True
    assert git_state(tmp_path, exclude=tmp_path / "report")["git_dirty"] is False
    (tmp_path / "other").mkdir()  # a second report, written earlier from the same commit
    (tmp_path / "other" / "table.md").write_text("old\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "d")
    (tmp_path / "other" / "table.md").write_text("new\n")
    (tmp_path / "report" / "table.md").write_text("newer\n")
    assert git_state(tmp_path, exclude=tmp_path / "report")["git_dirty"] is True
    assert git_state(tmp_path, exclude=[tmp_path / "report", tmp_path / "other"])["git_dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path, exclude=tmp_path / "report")["git_dirty"] is True
    assert git_state(tmp_path, exclude=[tmp_path / "report", tmp_path / "other"])["git_dirty"] is True


def test_run_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    run = make_run(tmp_path)
    run.add_metrics("pretrain", {"steps": 1})
    for name in ("config.yaml", "metrics.json"):
        assert stat.S_IMODE((run.path / name).stat().st_mode) == 0o666 & ~mask, name


def test_a_run_goes_only_into_a_new_empty_or_run_folder(tmp_path):
    from benchmark.errors import UserError
    from benchmark.rundir import check_run_target

    check_run_target(tmp_path / "new")  # not there yet
    (tmp_path / "empty").mkdir()
    check_run_target(tmp_path / "empty")
    run = make_run(tmp_path)
    (run.path / "wandb").mkdir()  # what tracking, trajectories and a report put into a run directory
    (run.path / "trajectories.png").write_bytes(b"")
    check_run_target(run.path)  # a run directory: resumed
    sweep = tmp_path / "sweep"
    (sweep / "cells").mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    with pytest.raises(UserError, match=r"--out .*sweep already holds other things \(cells, sweep.json\)"):
        check_run_target(sweep)
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_run_target(tmp_path / "f")


def _add_entries(path: str, prefix: str, n: int, together) -> None:
    from pathlib import Path

    from benchmark.rundir import RunDir

    run = RunDir(Path(path))
    together.wait(60)  # both write at once, after their slow start
    for i in range(n):
        run.add_metrics(f"{prefix}/{i}", {"top1": float(i)})
        run.update_env(**{f"{prefix}_{i}": i})


def test_two_processes_adding_entries_to_one_run_keep_each_others(tmp_path):
    """Two `vssl evaluate` of one run (or a sweep cell and an evaluate) each read, change and rewrite metrics.json
    and env.json: without the run's update lock one process's rewrite dropped the other's new entry."""
    import multiprocessing

    from benchmark.rundir import RunDir

    ctx = multiprocessing.get_context("spawn")
    together = ctx.Barrier(2)
    procs = [ctx.Process(target=_add_entries, args=(str(tmp_path), p, 40, together)) for p in ("linear", "knn")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    run = RunDir(tmp_path)
    assert len(run.metrics()) == 80 and len(run.env()) == 80
