import json
import re
from pathlib import Path

import pytest

from benchmark.errors import UserError
from benchmark.sweeps import cell_id, load_sweep

BASE = {"optim": {"steps": 2}}


REPO = Path(__file__).resolve().parents[1]


def spec(**kw):
    return {"name": "t", "base": BASE, **kw}


def test_grid_x_zip_x_seeds():
    sweep = load_sweep(
        spec(
            grid={"optim.lr": [0.1, 0.01], "optim.batch_size": [4, 8]},
            zip=[{"method.name": ["tce", "random_init"], "backbone.name": ["resnet10t", "resnet18"]}],
            seeds=[0, 1, 2],
            stages=["pretrain", "linear"],
        )
    )
    assert len(sweep.cells) == 2 * 2 * 2 * 3
    pairs = {(c.config.method.name, c.config.backbone.name) for c in sweep.cells}
    assert pairs == {("tce", "resnet10t"), ("random_init", "resnet18")}
    assert {c.config.run.seed for c in sweep.cells} == {0, 1, 2}
    assert all(c.config.run.stages == ["pretrain", "linear"] for c in sweep.cells)
    assert len({c.id for c in sweep.cells}) == len(sweep.cells)


def test_cell_ids_are_stable_and_ignore_base_changes():
    a = load_sweep(spec(grid={"optim.lr": [0.1, 0.01]}))
    b = load_sweep({"name": "t", "base": {"optim": {"steps": 99}}, "grid": {"optim.lr": [0.1, 0.01]}})
    assert [c.id for c in a.cells] == [c.id for c in b.cells]
    assert a.cells[0].id == cell_id({"optim.lr": 0.1, "run.seed": 0})
    # adding an axis value keeps the old cells' ids
    c = load_sweep(spec(grid={"optim.lr": [0.1, 0.01, 0.001]}))
    assert {x.id for x in a.cells} < {x.id for x in c.cells}


def test_cli_overrides_reach_cells_and_resources():
    sweep = load_sweep(spec(), ["optim.lr=0.5", "resources.timeout_min=5"])
    assert sweep.cells[0].config.optim.lr == 0.5
    assert sweep.resources.timeout_min == 5


@pytest.mark.parametrize(
    "bad, message",
    [
        (spec(grid={"optim.lr": []}), "is empty"),
        (spec(grid={"optim.lrr": [1]}), "did you mean 'optim.lr'"),
        (spec(grid={"method.name": ["nope"]}), "unknown method 'nope'"),
        (spec(zip=[{"optim.lr": [1, 2], "optim.steps": [1]}]), "equal lengths"),
        (spec(seeds=[]), "non-empty list of integers"),
        (spec(stages=["pretrain", "lin"]), "unknown stage 'lin'"),
        (spec(gird={}), "unknown sweep key 'gird' (did you mean 'grid'?)"),
        (spec(resources={"gpus": 1}), "did you mean 'resources.gpus_per_node'"),
        (spec(seeds=["a"]), "sweep key 'seeds' = ['a'] should be a list of int or null (or left out)"),
        (
            spec(grid={"method.temperature": [0.1]}, zip=[{"method.temperature": [0.2]}]),
            "'method.temperature' is an axis of both grid and zip[0]",
        ),
        (spec(zip=[{"optim.lr": [0.1]}, [{"optim.lr": 0.2}]]), "'optim.lr' is an axis of both zip[0] and zip[1]"),
        (
            spec(grid={"method": [{"name": "tce"}]}, zip=[{"method.name": ["vcop"]}]),
            "'method' and 'method.name' are axes",
        ),
        (spec(base=None), "sweep key 'base' = None should be str or dict"),
        (spec(seeds=[0, 0]), "two cells have the same values"),  # a repeated seed: two cells, one id
        (spec(grid={"optim.lr": [0.1, 0.1]}), "two cells have the same values"),
    ],
)
def test_bad_sweeps(bad, message):
    with pytest.raises(UserError) as exc:
        load_sweep(bad)
    assert message in str(exc.value)


def test_malformed_yaml_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\ngrid: {a: [1,\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_sweep(f)


def test_repo_sweep_files_parse():
    from pathlib import Path

    files = sorted(Path(__file__).resolve().parents[1].joinpath("sweeps").glob("*.yaml"))
    assert files
    for f in files:
        assert load_sweep(f).cells, f


@pytest.mark.parametrize("name", [f.stem for f in sorted((REPO / "sweeps").glob("*.yaml"))])
def test_every_backbone_of_a_repo_sweep_has_both_controls(name):
    """The developers' guide: every table keeps its controls. A trained row's backbone (name, inflation, init) has
    a random-init and a BatchNorm-statistics row in the same sweep."""
    controls = ("random_init", "random_init_bn")
    rows: dict[tuple, set[str]] = {}
    for cell in load_sweep(REPO / "sweeps" / f"{name}.yaml").cells:
        b = cell.config.backbone
        rows.setdefault((b.name, b.inflate, b.zero_init_last), set()).add(cell.config.method.name)
    lacking = {backbone: sorted(set(controls) - methods) for backbone, methods in rows.items()
               if methods - set(controls) and not set(controls) <= methods}  # fmt: skip
    assert not lacking, f"sweeps/{name}.yaml: backbones without their controls: {lacking}"


def test_zip_group_as_rows_equals_lists():
    rows = load_sweep(
        spec(zip=[[{"method.name": "tce", "optim.lr": 0.1}, {"method.name": "random_init", "optim.lr": 0.2}]])
    )
    lists = load_sweep(spec(zip=[{"method.name": ["tce", "random_init"], "optim.lr": [0.1, 0.2]}]))
    assert [c.id for c in rows.cells] == [c.id for c in lists.cells]


def test_zip_rows_may_set_different_keys():
    sweep = load_sweep(spec(zip=[[{"method.name": "tce"}, {"method.name": "random_init", "optim.lr": 0.2}]]))
    assert [(c.config.method.name, c.config.optim.lr) for c in sweep.cells] == [("tce", 0.001), ("random_init", 0.2)]
    with pytest.raises(UserError, match="non-empty mappings"):
        load_sweep(spec(zip=[[{"method.name": "tce"}, 3]]))


def test_command_line_overrides_win_over_sweep_stages():
    sweep = load_sweep(spec(stages=["pretrain", "linear", "finetune"]), ["run.stages=[pretrain, linear]"])
    assert sweep.cells[0].config.run.stages == ["pretrain", "linear"]


@pytest.mark.parametrize(
    "zip_spec",
    [
        [
            [
                {
                    "method.name": "tce",
                    "optim.steps": 100,
                    "budget_selection": "steps from 60/100/240 by held-out top-1",
                },
                {"method.name": "random_init", "optim.steps": 0},
            ]
        ],
        [
            {
                "method.name": ["tce", "random_init"],
                "optim.steps": [100, 0],
                "budget_selection": ["steps from 60/100/240 by held-out top-1", "none needed"],
            }
        ],
    ],
)
def test_budget_selection_is_kept_on_the_cell_never_hashed(tmp_path, zip_spec):
    from benchmark.launch.local import write_manifest

    sweep = load_sweep(spec(zip=zip_spec, seeds=[0]), out_dir=tmp_path / "out")
    tce, rnd = sweep.cells
    assert tce.budget_selection == "steps from 60/100/240 by held-out top-1"
    assert "budget_selection" not in tce.overrides and "budget_selection" not in tce.tree
    assert tce.id == cell_id({"method.name": "tce", "optim.steps": 100, "run.seed": 0})  # same id as without the note
    assert rnd.budget_selection in (None, "none needed")
    manifest = json.loads(write_manifest(sweep).read_text())
    assert manifest["cells"][tce.id]["budget_selection"] == tce.budget_selection
    assert "budget_selection" not in manifest["cells"][tce.id]["overrides"]


def test_budget_selection_notes_of_a_grid_point_and_a_zip_row_are_both_kept():
    """Two zip groups each note how they chose their setting: the report shows both."""
    both = load_sweep(
        {
            "name": "t",
            "base": BASE,
            "zip": [
                [{"optim.lr": 0.1, "budget_selection": "lr by held-out top-1"}],
                [{"method.name": "tce", "budget_selection": "steps by held-out top-1"}],
            ],
            "seeds": [0],
        }
    )
    assert both.cells[0].budget_selection == "lr by held-out top-1; steps by held-out top-1"


def test_budget_selection_must_be_text():
    with pytest.raises(UserError, match="budget_selection must be non-empty text"):
        load_sweep(spec(zip=[[{"method.name": "tce", "budget_selection": 3}]]))


def test_labels_show_nested_method_fields_so_two_rows_of_one_method_differ():
    sweep = load_sweep(
        spec(
            zip=[
                [{"method": {"name": "cmc", "view2": "frame", "eval_features": "concat"}}, {"method": {"name": "cmc"}}]
            ]
        )
    )
    labels = [c.label for c in sweep.cells]
    assert labels == ["method=cmc(view2=frame,eval_features=concat) seed=0", "method=cmc seed=0"]


def test_a_command_line_value_for_a_swept_key_is_refused_not_ignored(tmp_path):
    """The cell's own value would replace it (a grid or zip axis, the seeds, a zip row that sets the whole method
    section); one line naming the cell instead. A value every cell keeps is fine, the seed of a sweep without
    seeds too."""
    from benchmark.errors import UserError
    from benchmark.sweeps import load_sweep

    spec = {"name": "s", "grid": {"optim.lr": [0.1, 0.2]}, "seeds": [0, 1],
            "zip": [[{"method": {"name": "tce"}}, {"method": {"name": "random_init"}}]]}  # fmt: skip
    with pytest.raises(UserError, match=r"optim.lr=0.5 on the command line does not reach cell"):
        load_sweep(spec, ["optim.lr=0.5"])
    with pytest.raises(UserError, match=r"method.name=vcop on the command line does not reach cell"):
        load_sweep(spec, ["method.name=vcop"])
    with pytest.raises(UserError, match=r"run.seed=3 on the command line"):
        load_sweep(spec, ["run.seed=3"])
    with pytest.raises(UserError, match=r"method.temperature=0.2 on the command line does not reach cell"):
        load_sweep(spec, ["method.temperature=0.2"])  # the zip rows set the whole method section
    assert len(load_sweep(spec, ["optim.steps=5"]).cells) == 8  # a key no cell sets reaches every cell
    gpus = {"name": "s", "zip": [[{"resources.gpus_per_node": 8}, {"optim.lr": 0.2}]]}
    with pytest.raises(UserError, match=r"resources.gpus_per_node=4 .* own resources.gpus_per_node .* gives 8"):
        load_sweep(gpus, ["resources.gpus_per_node=4"])
    unseeded = {"name": "s", "grid": {"optim.lr": [0.1, 0.2]}}
    assert {c.config.run.seed for c in load_sweep(unseeded, ["run.seed=3"]).cells} == {3}
    # a whole section on the command line reaches the cells whose own values lie under it (none set eval.*)
    sections = load_sweep(unseeded, ["eval={dataset: synthetic, frames: 3}"])
    assert {(c.config.eval.dataset, c.config.eval.frames) for c in sections.cells} == {("synthetic", 3)}


@pytest.mark.parametrize(
    "raw, message",
    [({}, "is empty"), ({"name": "../../escape"}, "sweep name '../../escape'"), ({"name": "a/b"}, "sweep name 'a/b'")],
)
def test_an_empty_sweep_or_a_name_that_is_not_a_folder_name_is_refused(raw, message):
    from benchmark.errors import UserError
    from benchmark.sweeps import load_sweep

    with pytest.raises(UserError, match=re.escape(message)):
        load_sweep(raw)
    if raw:  # with an output folder of its own, the name is only a name
        assert load_sweep(raw, out_dir="runs/elsewhere").name == raw["name"]


@pytest.mark.parametrize("text", ["", '{"name": "s", "cells": {', "\xff\xfe", "[1, 2]"])
def test_an_unreadable_sweep_json_is_one_line_and_left_alone(tmp_path, text):
    """A sweep.json cut short (a full disk, a killed copy) stops a relaunch with one line, not a JSON traceback,
    and is not overwritten (its cells' records are the user's to recover)."""
    from benchmark.launch.local import write_manifest

    sweep = load_sweep(spec(seeds=[0]), out_dir=tmp_path / "out")
    path = tmp_path / "out" / "sweep.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError) as exc:
        write_manifest(sweep)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)
    assert path.read_bytes() == text.encode("latin-1")


def test_two_sweep_processes_writing_one_manifest_keep_each_others_cells(tmp_path):
    """The Makefile starts two `vssl sweep` processes on one folder (3D rows | the rest): each extends sweep.json
    under the folder's update lock, so neither drops the cells the other added."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    together = ctx.Barrier(2)  # both write at once, after their slow start
    procs = [ctx.Process(target=_write_manifests, args=(str(tmp_path / "out"), seed, together)) for seed in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cells = json.loads((tmp_path / "out" / "sweep.json").read_text())["cells"]
    assert len(cells) == 2 * 40


def _write_manifests(out: str, seed: int, together) -> None:
    import methods  # noqa: F401  (registers the in-tree methods in this fresh process)
    from benchmark.launch.local import write_manifest

    sweeps = [load_sweep(spec(seeds=[100 * seed + i]), out_dir=out) for i in range(40)]
    together.wait(60)
    for sweep in sweeps:
        write_manifest(sweep)
