import io

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import UserError
from benchmark.results.collect import collect
from benchmark.results.fakeruns import FakeRun, write_fake_sweep
from benchmark.results.table import MetricSpec, build_table, display_frame, paired_vs_baseline, render
from benchmark.rundir import RunDir


def _row(table, method, variant=""):
    rows = table.rows[(table.rows["method"] == method) & (table.rows["variant"] == variant)]
    assert len(rows) == 1
    return rows.index[0]


def test_cells_are_mean_std_and_t_interval_over_seeds(table1_sweep):
    table = build_table(collect(table1_sweep))
    assert list(table.rows["method"]) == ["random_init", "arrow_of_time", "tce", "supervised"]
    assert [c.label for c in table.columns] == ["synthetic linear top-1", "synthetic kNN top-1", "synthetic kNN R@1", "synthetic kNN R@5"]
    tce = _row(table, "tce")
    top1 = [RunDir(p).metrics()["linear/synthetic/split1"]["top1"] for p in sorted((table1_sweep / "cells").iterdir())
            if RunDir(p).config()["method"]["name"] == "tce"]
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
    assert variants == ["hn_schedule=exp, hn_rate=1", "hn_schedule=exp, hn_rate=5",
                        "hn_schedule=linear, hn_rate=0", "hn_schedule=none, hn_rate=0"]
    assert all(table.cells[(rid, table.columns[0].source)].n == 2 for rid in table.rows.index)
    # intermediate checkpoints are not table columns
    assert all("@" not in c.key for c in table.columns)


def test_columns_come_from_the_declarative_list(table1_sweep):
    table = build_table(collect(table1_sweep), metrics=[MetricSpec("knn", "r@5", "kNN recall@5")])
    assert [c.label for c in table.columns] == ["synthetic kNN recall@5", "synthetic linear top-1"]  # linear: fallback top1


def test_synthetic_rows_show_the_paper_but_never_a_difference(table1_sweep):
    table = build_table(collect(table1_sweep))
    frame = display_frame(table).set_index("method")
    assert frame.at["TCE", "paper UCF101"] == "68.8" and frame.at["Arrow of time", "paper HMDB51"] == ""
    assert frame.at["TCE", "vs paper"] == "≠backbone ≠pre-training ≠protocol"
    assert frame.at["random init", "vs paper"] == ""
    assert not [c for c in frame.columns if c.startswith("Δ")]
    assert "minus paper" not in " ".join(render(table, "csv").splitlines()[0].split(","))


def test_difference_printed_when_protocol_matches(tmp_path):
    specs = [FakeRun(method=m, seed=s, backbone=bb, pretrain_dataset="kinetics400", eval_dataset="ucf101",
                     stages=("pretrain", "finetune"), accuracy=0.5, sweep="ucf")
             for m, bb in (("tce", "resnet18"), ("tce", "resnet10t")) for s in (0, 1, 2)]
    table = build_table(collect(write_fake_sweep(tmp_path / "ucf", specs, name="ucf")))
    frame = display_frame(table).set_index("backbone")
    col = "Δ paper: ucf101 fine-tune top-1"
    exact = table.cells[(table.rows.index[table.rows["backbone"] == "resnet18"][0], "finetune/ucf101/split1.top1")]
    assert frame.at["resnet18", col].startswith(f"{exact.mean - 68.8:+.1f}")
    assert frame.at["resnet18", "vs paper"] == "match"
    assert frame.at["resnet10t", "vs paper"] == "≠backbone" and frame.at["resnet10t", col] != ""
    csv = pd.read_csv(io.StringIO(render(table, "csv")))
    got = csv.loc[csv["backbone"] == "resnet18", "ucf101 fine-tune top-1 minus paper"].iloc[0]
    assert got == pytest.approx(exact.mean - 68.8)


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
    by = {m: {int(runs.at[r, "cfg.run.seed"]): np.array(coll.per_video[(r, "linear/synthetic/split1")][1])
              for r in runs.index if runs.at[r, "cfg.method.name"] == m} for m in ("tce", "random_init")}
    expected = 100 * np.mean([by["tce"][s] - by["random_init"][s] for s in (0, 1, 2)])
    assert tce.result.mean == pytest.approx(expected)
    for p in paired:  # a difference is claimed exactly when its interval excludes 0
        assert ("CI excludes 0" in p.verdict) == (p.result.ci_low > 0 or p.result.ci_high < 0)


def test_paired_without_baseline_says_why(table1_sweep):
    table = build_table(collect(table1_sweep))
    paired = paired_vs_baseline(table, baseline="nonexistent", n_boot=100)
    assert paired and all(p.result is None and p.verdict.startswith("not tested: no nonexistent row") for p in paired)


def test_runs_without_evaluations_are_an_error(tmp_path):
    write_fake_sweep(tmp_path / "s", [FakeRun(stages=("pretrain",))])
    with pytest.raises(UserError, match="no evaluation results yet"):
        build_table(collect(tmp_path / "s"))
