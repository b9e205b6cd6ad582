import io
import json

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import UserError
from benchmark.results.collect import collect
from benchmark.results.fakeruns import FakeRun, write_fake_sweep
from benchmark.results.table import MetricSpec, build_table, display_frame, notes, paired_vs_baseline, render
from benchmark.rundir import RunDir


def _row(table, method, variant=""):
    rows = table.rows[(table.rows["method"] == method) & (table.rows["variant"] == variant)]
    assert len(rows) == 1
    return rows.index[0]


def test_cells_are_mean_std_and_t_interval_over_seeds(table1_sweep):
    table = build_table(collect(table1_sweep))
    assert list(table.rows["method"]) == ["random_init", "arrow_of_time", "tce", "supervised"]
    assert [c.label for c in table.columns] == [
        "synthetic linear top-1",
        "synthetic kNN top-1",
        "synthetic kNN R@1",
        "synthetic kNN R@5",
    ]
    tce = _row(table, "tce")
    top1 = [
        RunDir(p).metrics()["linear/synthetic/split1"]["top1"]
        for p in sorted((table1_sweep / "cells").iterdir())
        if RunDir(p).config()["method"]["name"] == "tce"
    ]
    s = table.cells[(tce, "linear/synthetic/split1.top1")]
    assert s.n == 3 and s.mean == pytest.approx(np.mean(top1)) and s.std == pytest.approx(np.std(top1, ddof=1))
    row = table.rows.loc[tce]
    assert (row["dims"], row["params_m"], row["pretrain"], row["seeds"]) == ("2D", 4.9, "synthetic-pool", "0,1,2")
    assert table.rows.loc[_row(table, "random_init"), "pretrain"] == "none"
    cell = display_frame(table).set_index("method").at["TCE", "synthetic linear top-1"]
    assert cell == f"{s.mean:.1f} ± {s.std:.1f} (n=3) [{s.ci_low:.1f}, {s.ci_high:.1f}]"


def test_swept_config_fields_split_rows_instead_of_pooling(ablation_sweep):
    table = build_table(collect(ablation_sweep))
    assert table.variant_fields == ["cfg.method.hn_schedule", "cfg.method.hn_rate"]
    variants = sorted(table.rows.loc[table.rows["method"] == "tce", "variant"])
    assert variants == [
        "hn_schedule=exp, hn_rate=1",
        "hn_schedule=exp, hn_rate=5",
        "hn_schedule=linear, hn_rate=0",
        "hn_schedule=none, hn_rate=0",
    ]
    assert all(table.cells[(rid, table.columns[0].source)].n == 2 for rid in table.rows.index)
    # intermediate checkpoints are not table columns
    assert all("@" not in c.key for c in table.columns)


def _relaunched(tmp_path):
    """Seeds 0 and 1 ran with temperature 0.07; the default then changed and the relaunch ran seed 2 with 0.1.
    The cells' own values are the same, so the sweep treats the three as one row."""
    specs = [FakeRun(method="random_init", seed=s, accuracy=0.25) for s in (0, 1, 2)]
    specs += [
        FakeRun(seed=s, accuracy=0.4, defaults={"method.temperature": t, "data.resolution": 64})
        for s, t in ((0, 0.07), (1, 0.07), (2, 0.1))
    ]
    return collect(write_fake_sweep(tmp_path / "s", specs))


def test_runs_with_different_recipes_are_never_pooled_into_one_row(tmp_path):
    with pytest.raises(UserError) as exc:
        build_table(_relaunched(tmp_path))
    msg = str(exc.value)
    assert "\n" not in msg and "1 table row(s) would pool runs with different recipes" in msg
    assert "TCE (resnet10t, synthetic-pool): method.temperature 0.07 (2 runs: " in msg and "0.1 (1 run: " in msg
    assert "--split-recipes" in msg


def test_split_recipes_shows_each_recipe_as_its_own_row(tmp_path):
    table = build_table(_relaunched(tmp_path), split_recipes=True)
    tce = table.rows[table.rows["method"] == "tce"]
    assert sorted(zip(tce["variant"], tce["n_runs"], strict=True)) == [("temperature=0.07", 2), ("temperature=0.1", 1)]
    assert table.variant_fields == ["cfg.method.temperature"]


def _reevaluated(tmp_path, overridden_seeds):
    """Three TCE seeds; the runs of ``overridden_seeds`` had their linear entry redone with
    `vssl evaluate RUN eval.linear_epochs=50` (benchmark.evaluation.config_overrides records it)."""
    sweep = write_fake_sweep(tmp_path / "s", [FakeRun(seed=s, accuracy=0.4) for s in (0, 1, 2)])
    for cell in sorted((sweep / "cells").iterdir()):
        run = RunDir(cell)
        if run.config()["run"]["seed"] in overridden_seeds:
            metrics = run.metrics()
            metrics["linear/synthetic/split1"]["config_overrides"] = "eval.linear_epochs=50"
            (cell / "metrics.json").write_text(json.dumps(metrics))
    return collect(sweep)


def test_an_entry_evaluated_with_other_settings_is_never_pooled_with_its_rows_others(tmp_path):
    with pytest.raises(UserError) as exc:
        build_table(_reevaluated(tmp_path, {2}))
    msg = str(exc.value)
    assert "\n" not in msg and "1 table row(s) would pool runs with different recipes" in msg
    assert "TCE (resnet10t, synthetic-pool): linear/synthetic/split1 evaluated with " in msg
    assert "eval.linear_epochs=50 (1 run: " in msg and "none (2 runs: " in msg
    assert "re-evaluate those runs without overrides" in msg and "--split-recipes" in msg
    table = build_table(_reevaluated(tmp_path / "again", {2}), split_recipes=True)
    assert sorted(zip(table.rows["variant"], table.rows["n_runs"], strict=True)) == [
        ("linear overrides=eval.linear_epochs=50", 1),
        ("linear overrides=none", 2),
    ]
    assert (
        "Evaluated with settings other than the run's config (`vssl evaluate RUN key=value`): "
        "linear/synthetic/split1: eval.linear_epochs=50 (1 run)"
    ) in notes(table)


def test_a_row_whose_every_run_was_reevaluated_alike_says_so(tmp_path):
    from benchmark.results.report import protocol_section

    table = build_table(_reevaluated(tmp_path, {0, 1, 2}))
    assert len(table.rows) == 1 and table.rows["n_runs"].iloc[0] == 3
    assert any("linear/synthetic/split1: eval.linear_epochs=50 (3 runs)" in n for n in notes(table))
    assert "every run evaluated with eval.linear_epochs=50 over their config" in "\n".join(protocol_section(table))
    plain = build_table(_reevaluated(tmp_path / "none", set()))
    assert not any("settings other than" in n for n in notes(plain))
    assert "over their config" not in "\n".join(protocol_section(plain))


def test_a_field_only_newer_runs_record_is_noted_not_a_difference(tmp_path):
    specs = [FakeRun(seed=s, defaults={"method.new_knob": 1} if s == 2 else {}) for s in (0, 1, 2)]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    assert len(table.rows) == 1 and table.rows["n_runs"].iloc[0] == 3
    assert any(n.startswith("Recorded by only some runs of a row") and "method.new_knob" in n for n in notes(table))


def test_columns_come_from_the_declarative_list(table1_sweep):
    table = build_table(collect(table1_sweep), metrics=[MetricSpec("knn", "r@5", "kNN recall@5")])
    assert [c.label for c in table.columns] == [
        "synthetic kNN recall@5",
        "synthetic linear top-1",
    ]  # linear: fallback top1


def test_synthetic_rows_show_the_paper_but_never_a_difference(table1_sweep):
    table = build_table(collect(table1_sweep))
    frame = display_frame(table).set_index("method")
    assert frame.at["TCE", "paper UCF101"] == "68.8" and frame.at["Arrow of time", "paper HMDB51"] == ""
    assert frame.at["TCE", "vs paper"] == "≠backbone ≠pre-training ≠protocol"
    assert frame.at["random init [control]", "vs paper"] == ""
    assert not [c for c in frame.columns if c.startswith("Δ")]
    assert "minus paper" not in " ".join(render(table, "csv").splitlines()[0].split(","))


def _ucf_table(tmp_path, rows):
    """Fine-tuned on a UCF101-format set, split 1; rows: (backbone, pre-training set, eval.frames)."""
    specs = [
        FakeRun(
            method="tce",
            seed=s,
            backbone=bb,
            pretrain_dataset=pt,
            eval_dataset="ucf101",
            stages=("pretrain", "finetune"),
            accuracy=0.5,
            sweep="ucf",
            overrides={"eval.frames": frames},
        )
        for bb, pt, frames in rows
        for s in (0, 1, 2)
    ]
    return build_table(collect(write_fake_sweep(tmp_path / "ucf", specs, name="ucf")))


def test_difference_printed_only_when_everything_matches(tmp_path):
    table = _ucf_table(
        tmp_path,
        [
            ("resnet18", "kinetics400", 19),
            ("resnet10t", "kinetics400", 19),
            ("resnet18", "synthetic-pool", 19),
            ("resnet18", "ucf101", 8),
        ],
    )
    frame = display_frame(table)
    col = "Δ paper: ucf101 fine-tune top-1"
    exact = table.rows.index[(table.rows["backbone"] == "resnet18") & (table.rows["pretrain"] == "kinetics400")][0]
    s = table.cells[(exact, "finetune/ucf101/split1.top1")]
    got = dict(
        zip(
            frame["backbone"] + "/" + frame["pre-training"],
            zip(frame["vs paper"], frame[col], strict=True),
            strict=True,
        )
    )
    assert got["resnet18/kinetics400"][0] == "match" and got["resnet18/kinetics400"][1].startswith(
        f"{s.mean - 68.8:+.1f}"
    )
    assert got["resnet10t/kinetics400"] == ("≠backbone", "")  # ResNet-10t is not the paper's ResNet-18
    assert got["resnet18/synthetic-pool"] == ("≠pre-training", "")
    assert got["resnet18/ucf101"] == ("≠protocol", "")  # 8 test frames, the paper 19
    assert any("test views: ours frames=8,crops=1, paper frames=19,crops=1" in n for n in notes(table))
    assert any("the fine-tuning recipe is this harness's one protocol" in n for n in notes(table))  # the match's note
    csv = pd.read_csv(io.StringIO(render(table, "csv")))
    diffs = csv["ucf101 fine-tune top-1 minus paper"]
    assert diffs.notna().sum() == 1
    assert diffs[(csv["backbone"] == "resnet18") & (csv["pretrain"] == "kinetics400")].iloc[0] == pytest.approx(
        s.mean - 68.8
    )


def test_an_entry_evaluated_on_fewer_labels_than_its_config_says_is_no_paper_match(tmp_path):
    """`vssl evaluate RUN eval.label_fraction=0.1` records 0.1 in the entry while config.yaml keeps 1.0."""
    table = _ucf_table(tmp_path, [("resnet18", "kinetics400", 19)])
    (rid,) = table.rows.index
    assert table.matches[(rid, "finetune/ucf101/split1.top1")][0]
    metrics_file = next((tmp_path / "ucf" / "cells").iterdir()) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["finetune/ucf101/split1"]["label_fraction"] = 0.1
    metrics_file.write_text(json.dumps(metrics))
    table = build_table(collect(tmp_path / "ucf"))
    ok, why = table.matches[(rid, "finetune/ucf101/split1.top1")]
    assert not ok and "labels: ours 10% of train, paper all" in why


def test_mismatched_backbone_and_pretraining_never_get_a_difference(tmp_path):
    """The issue's case: a resnet10t TCE run pre-trained on the synthetic pool, fine-tuned on UCF101 split 1."""
    table = _ucf_table(tmp_path, [("resnet10t", "synthetic-pool", 19)])
    frame = display_frame(table)
    assert frame.at[0, "vs paper"] == "≠backbone ≠pre-training"
    assert not [c for c in frame.columns if c.startswith("Δ")]
    assert "minus paper" not in render(table, "csv").splitlines()[0]


def test_latex_explains_paper_mismatches_in_table_notes_not_comments(table1_sweep):
    tex = render(build_table(collect(table1_sweep)), "latex")
    comments = [line for line in tex.splitlines() if line.lstrip().startswith("%")]
    assert comments == [tex.splitlines()[0]]  # the generator line only; nothing a paper would drop
    body, after = tex.split("\\end{tabular}")
    tce = next(line for line in body.splitlines() if line.startswith("TCE "))
    cell, mark = tce.rstrip(" \\").rsplit(" & ", 1)[1].split("\\textsuperscript")
    assert cell == "$\\neq$backbone $\\neq$pre-training $\\neq$protocol" and mark in ("{a}", "{b}")
    note = next(line for line in after.splitlines() if line.startswith(f"\\textsuperscript{mark}~"))
    assert (
        "TCE (resnet10t, synthetic-pool) vs paper row 'TCE, 2D ResNet-18, Kinetics400': backbone: ours resnet10t"
        in note
    )
    assert "Cells: mean $\\pm$ std over seeds" in after and after.count("\\par") >= 3


def test_formats(ablation_sweep):
    table = build_table(collect(ablation_sweep))
    md = render(table, "md")
    assert md.splitlines()[0].startswith("| method") and "| TCE" in md
    tex = render(table, "latex")
    assert all(k in tex for k in ("\\toprule", "\\midrule", "\\bottomrule", "$\\pm$", "hn\\_schedule=exp"))
    assert "±" not in tex.split("\\bottomrule")[0]
    csv = pd.read_csv(io.StringIO(render(table, "csv")))
    assert len(csv) == len(table.rows)
    rid = _row(table, "tce", "hn_schedule=exp, hn_rate=5")
    got = csv.loc[(csv["variant"] == "hn_schedule=exp, hn_rate=5"), "synthetic linear top-1 mean"].iloc[0]
    assert got == pytest.approx(table.cells[(rid, "linear/synthetic/split1.top1")].mean)
    with pytest.raises(UserError, match="unknown format 'html'"):
        render(table, "html")


def test_paired_difference_vs_random_init(table1_sweep):
    coll = collect(table1_sweep)
    table = build_table(coll)
    paired = paired_vs_baseline(table, n_boot=2000)
    assert {(p.label.split(" (")[0], p.column.label) for p in paired} >= {("TCE", "synthetic linear top-1")}
    tce = next(p for p in paired if p.label.startswith("TCE") and p.column.protocol == "linear")
    runs = coll.runs.set_index("run")
    by = {
        m: {
            int(runs.at[r, "cfg.run.seed"]): np.array(coll.per_video[(r, "linear/synthetic/split1")][1])
            for r in runs.index
            if runs.at[r, "cfg.method.name"] == m
        }
        for m in ("tce", "random_init")
    }
    expected = 100 * np.mean([by["tce"][s] - by["random_init"][s] for s in (0, 1, 2)])
    assert tce.result.mean == pytest.approx(expected)
    assert tce.result.seed_diffs == pytest.approx(
        [100 * np.mean(by["tce"][s] - by["random_init"][s]) for s in (0, 1, 2)]
    )
    sup = next(p for p in paired if p.label.startswith("supervised") and p.column.protocol == "linear")
    assert tce.baseline == "random_init" and sup.verdict.startswith("better than random init")
    for p in paired:  # a difference is claimed exactly when the seed-level t-interval excludes 0
        claimed = p.verdict.startswith(("better", "worse"))
        assert claimed == (p.result.t_low > 0 or p.result.t_high < 0)


def test_each_control_is_a_baseline_and_rows_pair_with_their_own_2d_or_3d_control(tmp_path):
    specs = [
        FakeRun(method=m, seed=s, accuracy=a, backbone_kind=kind, overrides=over)
        for m, a in (("random_init", 0.25), ("random_init_bn", 0.30), ("tce", 0.42))
        for kind, over in (("2d", {}), ("3d", {"backbone.inflate": True}))
        for s in (0, 1)
    ]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    paired = paired_vs_baseline(table, n_boot=200)
    assert {p.baseline for p in paired} == {"random_init", "random_init_bn"}
    for p in paired:
        assert p.result is not None
        row, base = table.rows.loc[p.row_id], table.rows.loc[p.baseline_id]
        assert base["method"] == p.baseline and (base["dims"], base["backbone"]) == (row["dims"], row["backbone"])
        assert row["method"] != p.baseline
    names = display_frame(table)["method"].tolist()
    assert names.count("random init [control]") == 2 and names.count("random init + BN stats [control]") == 2
    csv = pd.read_csv(io.StringIO(render(table, "csv")))
    assert sorted(set(csv["role"])) == ["control", "method"]


def test_one_seed_rows_claim_nothing(tmp_path):
    specs = [FakeRun(method=m, seed=0, accuracy=a) for m, a in (("random_init", 0.10), ("tce", 0.80))]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    paired = paired_vs_baseline(table, n_boot=500)
    lin = next(p for p in paired if p.column.protocol == "linear")
    assert lin.result.boot_low > 0  # the video bootstrap alone would claim it
    assert lin.verdict.startswith("no claim: 1 seed")


def test_a_baseline_that_selects_no_row_is_one_line_naming_the_methods(table1_sweep):
    """A typo in --baseline would compare nothing and only say so row by row."""
    table = build_table(collect(table1_sweep))
    with pytest.raises(
        UserError, match=r"baseline 'random_inti' selects no row of this table \(did you mean 'random_init'"
    ):
        paired_vs_baseline(table, baseline="random_inti", n_boot=100)
    assert paired_vs_baseline(table, baseline="controls", n_boot=100)[0].baseline == "random_init"


def test_runs_without_evaluations_are_an_error(tmp_path):
    write_fake_sweep(tmp_path / "s", [FakeRun(stages=("pretrain",))])
    with pytest.raises(UserError, match="no evaluation results yet"):
        build_table(collect(tmp_path / "s"))


def test_hard_negative_labels_show_only_parameters_that_act(tmp_path):
    """The hn-ablation-mini zip: mining_r is listed on every row and the fixed threshold is constant."""
    rows = [
        ("infonce", "none", 5),
        ("infonce", "exponential", 3),
        ("infonce", "exponential", 5),
        ("infonce", "linear", 5),
        ("infonce", "fixed", 5),
        ("nce", "none", 5),
        ("nce", "exponential", 5),
    ]
    specs = [
        FakeRun(
            seed=s,
            overrides={
                "method.loss": loss,
                "method.mining_schedule": sched,
                "method.mining_r": r,
                "method.mining_fixed_threshold": 0.5,
            },
        )
        for loss, sched, r in rows
        for s in (0, 1)
    ]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    assert sorted(table.rows["variant"]) == [
        "loss=infonce, mining_schedule=exponential, mining_r=3",
        "loss=infonce, mining_schedule=exponential, mining_r=5",
        "loss=infonce, mining_schedule=fixed, mining_fixed_threshold=0.5",
        "loss=infonce, mining_schedule=linear",
        "loss=infonce, mining_schedule=none",
        "loss=nce, mining_schedule=exponential, mining_r=5",
        "loss=nce, mining_schedule=none",
    ]
    assert (table.rows["n_runs"] == 2).all()
    from benchmark.results.plots import ablation_frame

    sub, fields, _ = ablation_frame(table)
    assert fields == ["cfg.method.mining_schedule", "cfg.method.mining_r"]
    assert sorted(sub["schedule"].unique()) == [
        "mining_schedule=exponential, mining_r=3",
        "mining_schedule=exponential, mining_r=5",
        "mining_schedule=fixed, mining_fixed_threshold=0.5",
        "mining_schedule=linear",
        "mining_schedule=none",
    ]


def test_runs_differing_only_in_a_parameter_that_does_not_act_stay_apart(tmp_path):
    specs = [
        FakeRun(seed=s, overrides={"method.mining_schedule": "none", "method.mining_r": r})
        for r in (3, 5)
        for s in (0, 1)
    ]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    assert sorted(table.rows["variant"]) == ["mining_r=3", "mining_r=5"]  # same label otherwise: everything shown
    assert (table.rows["n_runs"] == 2).all()


def test_a_note_says_when_2d_and_3d_rows_read_different_temporal_coverage(tmp_path):
    from benchmark.results.collect import collect
    from benchmark.results.fakeruns import FakeRun, write_fake_run
    from benchmark.results.table import build_table, notes

    ev = {"eval.frames": 4, "eval.clips": 1, "eval.clip_len": 4}
    write_fake_run(tmp_path / "s" / "cells" / "a", FakeRun(method="tce", overrides=ev))
    write_fake_run(tmp_path / "s" / "cells" / "b", FakeRun(method="vcop", backbone_kind="3d", overrides=ev))
    text = " ".join(notes(build_table(collect(tmp_path / "s"))))
    assert "did not read the same temporal coverage" in text
    assert "4 frames spread over the video" in text and "1 clip(s) of 4 frames (stride 1), one window" in text
    same = {"eval.frames": 8, "eval.clips": 2, "eval.clip_len": 4}
    write_fake_run(tmp_path / "t" / "cells" / "a", FakeRun(method="tce", overrides=same))
    write_fake_run(tmp_path / "t" / "cells" / "b", FakeRun(method="vcop", backbone_kind="3d", overrides=same))
    assert "temporal coverage" not in " ".join(notes(build_table(collect(tmp_path / "t"))))


def test_a_row_that_did_not_learn_its_pretext_shows_no_numbers(tmp_path):
    from benchmark.results.collect import collect
    from benchmark.results.fakeruns import FakeRun, write_fake_run
    from benchmark.results.table import NOT_LEARNED, build_table, display_frame, notes, numeric_frame

    for seed in (0, 1):
        write_fake_run(tmp_path / "s" / "cells" / f"o{seed}", FakeRun(method="opn", seed=seed, learned=False))
        write_fake_run(tmp_path / "s" / "cells" / f"t{seed}", FakeRun(method="tce", seed=seed, learned=seed == 0))
        write_fake_run(tmp_path / "s" / "cells" / f"r{seed}", FakeRun(method="random_init", seed=seed))
    table = build_table(collect(tmp_path / "s"))
    shown = display_frame(table).set_index("method")
    assert shown.loc["OPN", "synthetic linear top-1"] == NOT_LEARNED and shown.loc["OPN", "pretext"] == NOT_LEARNED
    assert shown.loc["TCE", "pretext"] == "learned in 1 of 2 runs" and "±" in shown.loc["TCE", "synthetic linear top-1"]
    assert shown.loc["random init [control]", "pretext"] == "control"
    csv = numeric_frame(table).set_index("method")
    assert pd.isna(csv.loc["opn", "synthetic linear top-1 mean"]) and csv.loc["tce", "synthetic linear top-1 mean"] > 0
    assert any(NOT_LEARNED in line for line in notes(table))


def test_a_variant_baseline_pairs_every_other_setting_with_it(tmp_path):
    """A mining ablation: each schedule minus TCE with mining_schedule=none, seed by seed."""
    specs = [
        FakeRun(seed=s, accuracy=a, overrides={"method.mining_schedule": sched})
        for s in (0, 1, 2)
        for sched, a in (("none", 0.30), ("exponential", 0.45), ("linear", 0.31))
    ]
    specs += [FakeRun(method="random_init_bn", seed=s, accuracy=0.2) for s in (0, 1, 2)]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    none = _row(table, "tce", "mining_schedule=none")
    paired = [
        p for p in paired_vs_baseline(table, "tce:mining_schedule=none", n_boot=200) if p.column.protocol == "linear"
    ]
    assert {p.row_id for p in paired} == {
        _row(table, "tce", "mining_schedule=exponential"),
        _row(table, "tce", "mining_schedule=linear"),
        _row(table, "random_init_bn"),
    }
    assert all(p.baseline_id == none for p in paired)
    exp = next(p for p in paired if p.row_id == _row(table, "tce", "mining_schedule=exponential"))
    assert exp.result.mean > 0 and len(exp.result.seed_diffs) == 3


@pytest.mark.parametrize("spec", ["tce:mining_schedule", "tce:=none"])
def test_a_malformed_variant_baseline_is_one_line(table1_sweep, spec):
    with pytest.raises(UserError, match="method:field=value"):
        paired_vs_baseline(build_table(collect(table1_sweep)), spec, n_boot=10)


def test_an_unknown_variant_field_is_named(table1_sweep):
    with pytest.raises(UserError, match="no run has method.nonexistent"):
        paired_vs_baseline(build_table(collect(table1_sweep)), "tce:nonexistent=1", n_boot=10)


def test_a_row_that_did_not_learn_its_pretext_is_not_compared_with_its_control(tmp_path):
    """Its numbers are not reported, so no paired difference is either (a row at chance could otherwise be
    'better than random init' on its BatchNorm statistics alone)."""
    from benchmark.results.fakeruns import write_fake_run
    from benchmark.results.table import NOT_LEARNED, render_paired

    for seed in (0, 1, 2):
        write_fake_run(
            tmp_path / "s" / "cells" / f"o{seed}", FakeRun(method="opn", seed=seed, accuracy=0.6, learned=False)
        )
        write_fake_run(tmp_path / "s" / "cells" / f"r{seed}", FakeRun(method="random_init", seed=seed, accuracy=0.1))
    paired = paired_vs_baseline(build_table(collect(tmp_path / "s")), n_boot=100)
    assert paired and all(p.result is None and p.verdict == NOT_LEARNED for p in paired)
    text = render_paired(paired, "md")
    assert "better than" not in text and NOT_LEARNED in text


def _paired_row(table1_sweep, result):
    from benchmark.results.table import PairedRow

    table = build_table(collect(table1_sweep))
    return PairedRow("r", "TCE (resnet10t)", table.columns[0], "b", result, "", "random_init")


def test_the_paired_frame_prints_the_seed_level_interval_and_the_seeds_in_order(table1_sweep):
    """The column headed 't-interval (seeds)' must hold the t-interval (the one the verdict rests on), not the
    narrower bootstrap, and the per-seed differences in seed order."""
    from benchmark.results.stats import PairedResult
    from benchmark.results.table import paired_frame

    result = PairedResult(1.3, (3.0, -1.0, 2.0), -3.9, 6.5, 0.4, 2.2, 3, 144, 777)
    frame = paired_frame([_paired_row(table1_sweep, result)]).iloc[0]
    assert frame["95% t-interval (seeds)"] == "[-3.9, +6.5]"
    assert frame["95% bootstrap (seeds x videos)"] == "[+0.4, +2.2]"
    assert frame["per-seed differences"] == "+3.0 / -1.0 / +2.0"
    assert frame["minus random init (points)"] == "+1.3" and frame["seeds x videos"] == "3 x 144"
    assert frame["verdict"] == "no difference claimed (seed-level interval includes 0)"


def test_paired_results_use_the_requested_bootstrap_replicates(table1_sweep):
    paired = paired_vs_baseline(build_table(collect(table1_sweep)), n_boot=123)
    assert paired and all(p.result.n_boot == 123 for p in paired if p.result is not None)


def test_per_video_results_that_do_not_reproduce_top1_are_not_paired(table1_sweep):
    """Stale per-video lists would pair a difference that is not the one the table's cells show."""
    cell = next(p for p in sorted((table1_sweep / "cells").iterdir()) if RunDir(p).config()["method"]["name"] == "tce")
    metrics = json.loads((cell / "metrics.json").read_text())
    entry = metrics["linear/synthetic/split1"]
    entry["per_video_correct"] = [1 - c for c in entry["per_video_correct"]]
    (cell / "metrics.json").write_text(json.dumps(metrics))
    paired = paired_vs_baseline(build_table(collect(table1_sweep)), n_boot=50)
    tce = next(p for p in paired if p.label.startswith("TCE") and p.column.protocol == "linear")
    assert tce.result is None and "per_video_correct does not reproduce top1" in tce.verdict


def test_two_runs_of_one_row_with_the_same_seed_are_not_paired(tmp_path):
    """A relaunch into a second folder: the cell pools both runs, so pairing only one of them would not be the
    difference the table shows."""
    from benchmark.results.fakeruns import write_fake_run

    for name, spec in (
        ("t0", FakeRun(seed=0)),
        ("t0-again", FakeRun(seed=0, accuracy=0.35)),
        ("t1", FakeRun(seed=1)),
        ("r0", FakeRun(method="random_init", seed=0)),
        ("r1", FakeRun(method="random_init", seed=1)),
    ):
        write_fake_run(tmp_path / "s" / "cells" / name, spec)
    paired = paired_vs_baseline(build_table(collect(tmp_path / "s")), n_boot=50)
    tce = next(p for p in paired if p.label.startswith("TCE") and p.column.protocol == "linear")
    assert tce.result is None and "two runs with seed 0" in tce.verdict


def test_the_control_that_matches_the_rows_settings_is_chosen_and_a_tie_is_refused(tmp_path):
    """BN-statistics controls at 30 and 60 steps: a row at 30 steps pairs with the 30-step control; a row that
    matches neither better refuses to pick one."""
    specs = [
        FakeRun(method="random_init_bn", seed=s, accuracy=0.3, overrides={"optim.steps": st})
        for s in (0, 1)
        for st in (30, 60)
    ]
    specs += [FakeRun(seed=s, accuracy=0.4, overrides={"optim.steps": st}) for s in (0, 1) for st in (30, 100)]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    linear = {p.row_id: p for p in paired_vs_baseline(table, n_boot=50) if p.column.protocol == "linear"}
    at30, at100 = linear[_row(table, "tce", "steps=30")], linear[_row(table, "tce", "steps=100")]
    assert at30.baseline_id == _row(table, "random_init_bn", "steps=30") and at30.result is not None
    assert at100.baseline_id is None and at100.result is None
    assert "2 random_init_bn rows fit equally well as the baseline; none is chosen" in at100.verdict


def test_runs_outside_a_manifest_split_rows_by_the_fields_they_differ_in(tmp_path):
    """Without sweep.json nothing says which fields are axes: runs that differ in a method field are two rows
    (variants), never a recipe conflict."""
    from benchmark.results.fakeruns import write_fake_run

    for seed in (0, 1):
        for t in (0.07, 0.2):
            write_fake_run(tmp_path / "s" / f"t{t}-{seed}", FakeRun(seed=seed, overrides={"method.temperature": t}))
    table = build_table(collect(tmp_path / "s", allow_mixed=True))
    assert sorted(table.rows["variant"]) == ["temperature=0.07", "temperature=0.2"]
    assert list(table.rows["n_runs"]) == [2, 2]
