"""`vssl evaluate`: several protocols in one call, one-line errors with exit status 2."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.rundir import RunDir


@pytest.mark.slow
def test_evaluate_linear_and_knn(tiny_run, synth_data_home, capsys):
    assert main(["evaluate", str(tiny_run.path), "--protocol", "linear,knn", "--no-progress", "eval.knn_k=1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("linear/synthetic/split1: top1=") and out[1].startswith("knn/synthetic/split1: r@1=")
    assert tiny_run.metrics()["knn/synthetic/split1"]["k"] == 1


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--protocol", "fintune"], "unknown protocol 'fintune' (did you mean 'finetune'?)"),
        (["--checkpoint", "step_7.pt"], "no checkpoint step_7.pt"),
        (["eval.knn_kk=3"], "unknown config key 'eval.knn_kk'"),
        (["--split", "3"], "split 3"),
        (["method.name=vcop"], "method.name: the run's trained model comes from its config.yaml"),
        (["backbone.name=resnet18"], "backbone.name: the run's trained model"),
    ],
)
def test_bad_input_is_one_line(tiny_run, synth_data_home, capsys, argv, message):
    assert main(["evaluate", str(tiny_run.path), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_not_a_run_directory(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_last_pt_of_an_unfinished_pre_training_is_not_evaluated(tiny_run, synth_data_home, tmp_path, capsys):
    """An interrupted pre-training has a last.pt but no pretrain entry: its evaluation would be counted as the
    final result by tables, so evaluate refuses with one line (an intermediate step_N.pt stays evaluable)."""
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("pretrain")
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["evaluate", str(run), "--no-progress", "--protocol", "knn"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has not finished pre-training" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_evaluating_again_says_it_replaces_the_entry(tiny_run, synth_data_home, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    argv = ["evaluate", str(run), "--protocol", "knn", "--no-progress", "eval.knn_k=1"]
    assert main(argv) == 0  # (the shared tiny run may hold a knn entry already)
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("note: replaced") == 1 and "knn/synthetic/split1 entry" in err
    # k=1 is not the run's recipe: said, and recorded so that tables never pool this entry with the row's others
    assert "note: knn/synthetic/split1 is evaluated with eval.knn_k=1, not the run's config" in err
    assert RunDir(run).metrics()["knn/synthetic/split1"]["config_overrides"] == "eval.knn_k=1"
    assert main(["evaluate", str(run), "--protocol", "knn", "--no-progress", "eval.batch_size=4"]) == 0
    assert "evaluated with" not in capsys.readouterr().err  # a bookkeeping field is still the run's recipe
    assert "config_overrides" not in RunDir(run).metrics()["knn/synthetic/split1"]
