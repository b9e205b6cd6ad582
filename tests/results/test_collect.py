import json

import pytest

from benchmark.errors import UserError
from benchmark.results.collect import collect, parse_eval_key
from benchmark.results.fakeruns import FakeRun, write_fake_run, write_fake_sweep
from benchmark.rundir import RunDir


def test_one_row_per_run_with_flat_config_and_every_metric(table1_sweep):
    coll = collect(table1_sweep)
    assert len(coll.runs) == 12 and not coll.skipped
    assert set(coll.runs["cfg.method.name"]) == {"random_init", "tce", "arrow_of_time", "supervised"}
    some = coll.runs.iloc[0]
    metrics = RunDir(coll.paths[some["run"]]).metrics()
    assert some["linear/synthetic/split1.top1"] == metrics["linear/synthetic/split1"]["top1"]
    assert some["knn/synthetic/split1.r@5"] == metrics["knn/synthetic/split1"]["r@5"]
    assert (
        bool(some["pretrain.backbone_init.zero_init_last"])
        and some["pretrain.backbone_init.seed"] == some["cfg.run.seed"]
    )
    assert some["env.sweep"] == "fake" and some["cfg.eval.knn_ks"] == "[1, 5, 10, 20, 50]"
    # per-video lists stay out of the frame but are kept for the paired test
    assert not any(c.endswith("per_video_correct") for c in coll.runs.columns)
    ids, correct = coll.per_video[(some["run"], "linear/synthetic/split1")]
    assert (
        ids == metrics["linear/synthetic/split1"]["test_video_ids"]
        and correct == metrics["linear/synthetic/split1"]["per_video_correct"]
    )


def test_incomplete_and_corrupt_runs_are_listed_and_skipped(table1_sweep):
    cells = sorted((table1_sweep / "cells").iterdir())
    (cells[0] / "metrics.json").write_text('{"pretrain": {"steps": 100}, "linear/synth')  # half written
    metrics = json.loads((cells[1] / "metrics.json").read_text())
    del metrics["knn/synthetic/split1"]
    (cells[1] / "metrics.json").write_text(json.dumps(metrics))
    (cells[2] / "config.yaml").unlink()
    (cells[3] / "env.json").write_text('{"sweep": "fa')
    coll = collect(table1_sweep)
    skipped = dict(coll.skipped)
    assert len(coll.runs) == 8
    assert skipped[cells[3].name].startswith("corrupt: env.json does not parse")
    assert skipped[cells[0].name].startswith("corrupt: metrics.json does not parse")
    assert skipped[cells[1].name] == "incomplete: missing stages: knn/synthetic/split1"
    assert skipped[cells[2].name].startswith("empty")
    assert cells[0].name not in set(coll.runs["run"])
    with_incomplete = collect(table1_sweep, include_incomplete=True)
    assert len(with_incomplete.runs) == 9
    (cells[4] / "config.yaml").write_bytes(b"\xff\xfe")  # not UTF-8
    (cells[5] / "config.yaml").write_text("")
    skipped = dict(collect(table1_sweep).skipped)
    assert skipped[cells[4].name].startswith("corrupt: config.yaml is not UTF-8 text")
    assert skipped[cells[5].name] == "corrupt: config.yaml is empty"
    assert with_incomplete.runs.set_index("run").at[cells[1].name, "status"] == "incomplete"


def test_a_hand_edited_figure_makes_the_run_corrupt_for_table_and_status_alike(table1_sweep):
    """A top-1 of "abc" or an entry of 5 once crashed the table's statistics (TypeError) while `vssl status` called
    the cell done: both now call it corrupt and name the field."""
    from benchmark.rundir import RunDir

    cells = sorted((table1_sweep / "cells").iterdir())
    edits = {
        cells[0]: lambda m: m["linear/synthetic/split1"].update(top1="abc"),
        cells[1]: lambda m: m["pretrain"].update(params_millions="x"),
        cells[2]: lambda m: m.update({"knn/synthetic/split1": []}),
    }
    for cell, edit in edits.items():
        metrics = json.loads((cell / "metrics.json").read_text())
        edit(metrics)
        (cell / "metrics.json").write_text(json.dumps(metrics))
    skipped = dict(collect(table1_sweep).skipped)
    assert skipped[cells[0].name] == "corrupt: metrics.json: 'linear/synthetic/split1.top1' is 'abc', not a number"
    assert skipped[cells[1].name] == "corrupt: metrics.json: 'pretrain.params_millions' is 'x', not a number"
    assert skipped[cells[2].name] == (
        "corrupt: metrics.json: entry 'knn/synthetic/split1' is [], not an object of its figures"
    )
    for cell in edits:
        assert RunDir(cell).status()[0] == "corrupt"
    assert RunDir(cells[3]).status()[0] == "complete"


def test_no_runs_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no run directories"):
        collect(tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        collect(tmp_path / "missing")


def test_only_corrupt_runs_is_an_error_not_an_empty_table(tmp_path):
    run = write_fake_run(tmp_path / "s" / "cells" / "a", FakeRun())
    (run.path / "metrics.json").write_text("{")
    with pytest.raises(UserError, match="none of its 1 run directories is usable"):
        collect(tmp_path / "s")


def test_mixed_sweeps_are_refused_unless_allowed(tmp_path):
    write_fake_sweep(tmp_path / "runs" / "a", [FakeRun(seed=0, sweep="a")], name="a")
    write_fake_sweep(tmp_path / "runs" / "b", [FakeRun(seed=1, sweep="b")], name="b")
    with pytest.raises(UserError, match="mixes runs of different sweeps: 'a' \\(1 runs\\), 'b' \\(1 runs\\)"):
        collect(tmp_path / "runs")  # a folder of sweeps
    assert len(collect(tmp_path / "runs", allow_mixed=True).runs) == 2
    # the same cell in two sweeps of the folder: two runs, each with its own per-video results
    write_fake_sweep(tmp_path / "twin" / "a", [FakeRun(seed=0, sweep="a")], name="a")
    write_fake_sweep(tmp_path / "twin" / "b", [FakeRun(seed=0, sweep="b")], name="b")
    twins = collect(tmp_path / "twin", allow_mixed=True)
    (cell,) = {p.name for p in (tmp_path / "twin" / "a" / "cells").iterdir()}
    assert sorted(twins.runs["run"]) == [f"a/cells/{cell}", f"b/cells/{cell}"]
    assert len(twins.per_video) == 2 * len(collect(tmp_path / "twin" / "a").per_video)
    assert set(twins.cell_ids().values()) == {cell}
    # a run without a sweep name among a sweep's cells is a mix too
    write_fake_run(tmp_path / "runs" / "b" / "cells" / "loose", FakeRun(seed=3, sweep=None))
    with pytest.raises(UserError, match="mixes runs of different sweeps: '\\(no sweep\\)' \\(1 runs\\), 'b'"):
        collect(tmp_path / "runs" / "b")
    # a run copied into another sweep's folder is caught by its env.json
    write_fake_run(tmp_path / "runs" / "a" / "cells" / "stray", FakeRun(seed=2, sweep="b"))
    with pytest.raises(UserError, match="mixes runs"):
        collect(tmp_path / "runs" / "a")


def test_single_run_directory(tmp_path):
    write_fake_run(tmp_path / "run", FakeRun(sweep=None))
    coll = collect(tmp_path / "run")
    assert list(coll.runs["run"]) == ["run"]


def test_parse_eval_key():
    assert parse_eval_key("pretrain") is None
    k = parse_eval_key("finetune/ucf101/split2")
    assert (k.protocol, k.dataset, k.split, k.step) == ("finetune", "ucf101", 2, None)
    assert parse_eval_key("linear/synthetic/split1@step_200").step == 200
