import pandas as pd
import pytest

from benchmark.results.collect import collect
from benchmark.results.plots import (
    ABLATION_AXES,
    ablation_fields,
    ablation_frame,
    checkpoint_evals,
    hn_ablation,
    over_training,
    scalars_frame,
    smoothness,
)
from benchmark.results.report import ReportOptions, write_report
from benchmark.results.table import build_table

AXES = ("method.hn_schedule", "method.hn_rate")  # field names are arguments, not fixed in the plots


def test_ablation_reads_the_configured_fields(ablation_sweep, tmp_path):
    table = build_table(collect(ablation_sweep))
    assert hn_ablation(table, tmp_path) is None  # the default field names are absent: nothing to draw
    sub, fields, col = ablation_frame(table, AXES)
    assert fields == ["cfg.method.hn_schedule", "cfg.method.hn_rate"] and col.label == "synthetic linear top-1"
    assert sorted(sub["schedule"].unique()) == ["hn_schedule=exp, hn_rate=1", "hn_schedule=exp, hn_rate=5",
                                               "hn_schedule=linear, hn_rate=0", "hn_schedule=none, hn_rate=0"]
    means = sub.groupby("row.id")["value"].mean()
    for rid, mean in means.items():  # the bars are the table's cells
        assert mean == pytest.approx(table.cells[(rid, col.source)].mean)


def test_default_axes_are_tces_mining_fields():
    runs = pd.DataFrame({"cfg.method.mining_schedule": ["none", "exponential"], "cfg.method.mining_r": [5.0, 5.0],
                         "cfg.method.max_hard_fraction": [1.0, 0.5]})
    assert ablation_fields(runs, ABLATION_AXES) == ["cfg.method.mining_schedule", "cfg.method.max_hard_fraction"]


def test_checkpoint_evaluations_over_training(ablation_sweep, table1_sweep, tmp_path):
    table = build_table(collect(ablation_sweep))
    long = checkpoint_evals(table)
    tce_runs = set(table.collection.runs.loc[table.collection.runs["cfg.method.name"] == "tce", "run"])
    assert set(long.loc[long["intermediate"], "run"]) == tce_runs
    assert set(long.loc[long["run"].isin(tce_runs), "step"]) == {50, 100}
    assert over_training(build_table(collect(table1_sweep)), tmp_path) is None  # no intermediate checkpoints


def test_scalars_for_loss_and_smoothness(table1_sweep, ablation_sweep, tmp_path):
    table = build_table(collect(table1_sweep))
    loss = scalars_frame(table, names=("loss",))
    assert set(loss["name"]) == {"loss"} and len(loss) == 9 * 10  # 9 training runs x 10 logged steps (random init logs none)
    smooth = scalars_frame(table, prefix="smooth_", names=())
    assert set(smooth["name"]) == {"smooth_same_video_cos", "smooth_other_video_cos"}
    assert smoothness(build_table(collect(ablation_sweep)), tmp_path) is None


@pytest.mark.slow
def test_report_writes_every_figure_as_png_and_pdf(ablation_sweep, table1_sweep, tmp_path):
    smoothness(build_table(collect(table1_sweep)), tmp_path / "smooth")  # also a real PNG to stand in for a trajectory plot
    tce_run = next(p for p in sorted((ablation_sweep / "cells").iterdir()) if "tce" in (p / "config.yaml").read_text())
    (tce_run / "trajectories.png").write_bytes((tmp_path / "smooth" / "smoothness.png").read_bytes())
    readme = write_report(ablation_sweep, ReportOptions(out_dir=tmp_path / "report", ablation_axes=AXES, n_boot=200))
    text = readme.read_text()
    names = ["table1", "hn_ablation", "over_training", "loss_curves"]
    for name in names:
        assert f"![{name}](figures/{name}.png)" in text and f"([PDF](figures/{name}.pdf))" in text
    assert "![smoothness]" not in text  # no smooth_* scalars in this sweep
    assert "![trajectories_" in text and f"run {tce_run.name}" in text  # copied from the run directory
    files = [tmp_path / "report" / "figures" / f"{n}.{ext}" for n in names for ext in ("png", "pdf")]
    files += [tmp_path / "smooth" / "smoothness.png", tmp_path / "smooth" / "smoothness.pdf"]
    for f in files:
        assert f.read_bytes()[:4] == (b"\x89PNG" if f.suffix == ".png" else b"%PDF")


def test_runs_differing_in_anything_else_are_never_pooled_into_one_bar(tmp_path):
    """Two losses share the schedules: each (schedule, loss) is its own bar, as each is its own table row."""
    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    specs = [FakeRun(seed=s, accuracy=acc, overrides={"method.mining_schedule": sched, "method.loss": loss})
             for s in (0, 1) for sched in ("none", "exponential")
             for loss, acc in (("infonce", 0.45), ("nce", 0.20))]
    table = build_table(collect(write_fake_sweep(tmp_path / "sweep", specs)))
    sub, fields, col = ablation_frame(table)
    assert fields == ["cfg.method.mining_schedule"] and sorted(sub["others"].unique()) == ["loss=infonce", "loss=nce"]
    for (_, _), group in sub.groupby(["schedule", "others"]):
        (rid,) = group["row.id"].unique()  # one table row per bar
        assert group["value"].mean() == pytest.approx(table.cells[(rid, col.source)].mean)
    assert hn_ablation(table, tmp_path / "fig") is not None
