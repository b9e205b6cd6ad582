import re
from pathlib import Path

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
    assert sorted(sub["schedule"].unique()) == [
        "hn_schedule=exp, hn_rate=1",
        "hn_schedule=exp, hn_rate=5",
        "hn_schedule=linear, hn_rate=0",
        "hn_schedule=none, hn_rate=0",
    ]
    means = sub.groupby("row.id")["value"].mean()
    for rid, mean in means.items():  # the bars are the table's cells
        assert mean == pytest.approx(table.cells[(rid, col.source)].mean)


def test_default_axes_are_tces_mining_fields():
    runs = pd.DataFrame(
        {
            "cfg.method.mining_schedule": ["none", "exponential"],
            "cfg.method.mining_r": [5.0, 5.0],
            "cfg.method.max_hard_fraction": [1.0, 0.5],
        }
    )
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
    assert (
        set(loss["name"]) == {"loss"} and len(loss) == 9 * 10
    )  # 9 training runs x 10 logged steps (random init logs none)
    smooth = scalars_frame(table, prefix="smooth_", names=())
    assert set(smooth["name"]) == {"smooth_same_video_cos", "smooth_other_video_cos"}
    assert smoothness(build_table(collect(ablation_sweep)), tmp_path) is None


@pytest.mark.slow
def test_report_writes_every_figure_as_png_and_pdf(ablation_sweep, table1_sweep, tmp_path):
    smoothness(
        build_table(collect(table1_sweep)), tmp_path / "smooth"
    )  # also a real PNG to stand in for a trajectory plot
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

    specs = [
        FakeRun(seed=s, accuracy=acc, overrides={"method.mining_schedule": sched, "method.loss": loss})
        for s in (0, 1)
        for sched in ("none", "exponential")
        for loss, acc in (("infonce", 0.45), ("nce", 0.20))
    ]
    table = build_table(collect(write_fake_sweep(tmp_path / "sweep", specs)))
    sub, fields, col = ablation_frame(table)
    assert fields == ["cfg.method.mining_schedule"] and sorted(sub["others"].unique()) == ["loss=infonce", "loss=nce"]
    for (_, _), group in sub.groupby(["schedule", "others"]):
        (rid,) = group["row.id"].unique()  # one table row per bar
        assert group["value"].mean() == pytest.approx(table.cells[(rid, col.source)].mean)
    assert hn_ablation(table, tmp_path / "fig") is not None


def _drawn_texts(fig):
    """Every text a reader sees: figure texts and legends, axes titles, axis labels, tick labels, legends."""
    texts = list(fig.texts)
    for leg in fig.legends:
        texts += [*leg.get_texts(), leg.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):  # the ticks drawn (inside the view), not every located one
            texts += [t for tick in axis._update_ticks() for t in (tick.label1, tick.label2) if t.get_visible()]
        if ax.get_legend() is not None:
            texts += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _outside(fig, bbox_inches=None, pad_inches=None) -> list[str]:
    """Texts not entirely inside the image savefig writes with these arguments."""
    import matplotlib as mpl
    from matplotlib.transforms import TransformedBbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    if bbox_inches == "tight":
        pad = mpl.rcParams["savefig.pad_inches"] if pad_inches is None else pad_inches
        area = TransformedBbox(fig.get_tightbbox(renderer).padded(pad), fig.dpi_scale_trans)
    elif bbox_inches is None:
        area = fig.bbox
    else:
        area = TransformedBbox(bbox_inches, fig.dpi_scale_trans)
    out = []
    for t in _drawn_texts(fig):
        e = t.get_window_extent(renderer)
        if e.x0 < area.x0 - 1 or e.y0 < area.y0 - 1 or e.x1 > area.x1 + 1 or e.y1 > area.y1 + 1:
            out.append(t.get_text())
    return out


@pytest.mark.slow
def test_every_text_of_every_figure_lies_inside_the_saved_image(ablation_sweep, tmp_path, monkeypatch):
    """Titles, axis labels, legends and tick labels of each figure, checked against what savefig keeps."""
    from matplotlib.figure import Figure as MplFigure

    from benchmark.results.fakeruns import FakeRun, write_fake_sweep
    from benchmark.results.plots import all_figures

    checked: dict[str, list[str]] = {}
    real = MplFigure.savefig

    def checking_savefig(self, fname, *args, **kwargs):
        if str(fname).endswith(".png"):
            checked[Path(fname).stem] = _outside(self, kwargs.get("bbox_inches"), kwargs.get("pad_inches"))
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(MplFigure, "savefig", checking_savefig)
    # a Table-1 sweep as wide as the CPU table: 12 rows (2D and 3D controls), five columns, long labels
    specs = []
    for m, kind in [
        ("random_init", "2d"),
        ("random_init_bn", "2d"),
        ("tce", "2d"),
        ("arrow_of_time", "2d"),
        ("opn", "2d"),
        ("shuffle_learn", "2d"),
        ("supervised", "2d"),
        ("random_init", "3d"),
        ("random_init_bn", "3d"),
        ("dpc", "3d"),
        ("vcop", "3d"),
        ("rotnet3d", "3d"),
    ]:
        over = {"backbone.inflate": True} if kind == "3d" else {}
        specs += [
            FakeRun(
                method=m,
                seed=s,
                accuracy=0.3,
                backbone_kind=kind,
                overrides=over,
                smooth=True,
                stages=("pretrain", "linear", "knn", "finetune"),
            )
            for s in (0, 1, 2)
        ]
    wide = build_table(collect(write_fake_sweep(tmp_path / "wide", specs)))
    names = [f.name for f in all_figures(wide, tmp_path / "wide-figs")]
    names += [f.name for f in all_figures(build_table(collect(ablation_sweep)), tmp_path / "abl-figs", AXES)]
    assert {"table1", "loss_curves", "smoothness", "hn_ablation", "over_training"} <= set(names) <= set(checked)
    assert {name: texts for name, texts in checked.items() if texts} == {}


def test_table1_has_one_panel_per_column_and_marks_control_rows(tmp_path, monkeypatch):
    from benchmark.results import plots
    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    specs = [
        FakeRun(method=m, seed=s, accuracy=a)
        for m, a in (("random_init", 0.25), ("random_init_bn", 0.3), ("tce", 0.4))
        for s in (0, 1)
    ]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, out_dir, name: figs.append(fig) or ())
    plots.table1_bars(table, tmp_path)
    (fig,) = figs
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["linear top-1", "kNN top-1", "kNN R@1", "kNN R@5"][: len(panels)]
    assert len(panels) == len(table.columns)
    ax = panels[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:2] == [
        "random init [control] (resnet10t)",
        "random init + BN stats [control] (resnet10t, synthetic-pool)",
    ]
    bars = ax.patches  # one per row, in the table's order
    assert [b.get_hatch() for b in bars] == ["///", "///", None]
    assert bars[0].get_facecolor() != bars[2].get_facecolor()
    from matplotlib.collections import PathCollection

    assert sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)) == 6  # the seed dots


def _mining_sweep(tmp_path):
    """Three schedules x two seeds; 'none' logs no bank fraction (mining off), as TCE does."""
    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    logged = {
        "none": {"hard_found": 0.0, "mining_threshold": -1.0},
        "exponential": {"hard_found": 12.0, "bank_above_thr": 0.25, "mining_threshold": 0.5},
        "fixed": {"hard_found": 30.0, "bank_above_thr": 0.05, "mining_threshold": 0.5},
    }
    specs = [
        FakeRun(seed=s, accuracy=0.3 + 0.05 * i, overrides={"method.mining_schedule": sched}, scalars=logged[sched])
        for s in (0, 1)
        for i, sched in enumerate(logged)
    ]
    specs += [FakeRun(method="random_init_bn", seed=s, accuracy=0.25) for s in (0, 1)]
    return write_fake_sweep(tmp_path / "sweep", specs)


def test_mining_summary_says_per_schedule_whether_mining_acted(tmp_path):
    from benchmark.results.plots import mining_curves, mining_summary

    table = build_table(collect(_mining_sweep(tmp_path)))
    summary = mining_summary(table).set_index("setting")
    assert sorted(summary.index) == ["mining_schedule=exponential", "mining_schedule=fixed", "mining_schedule=none"]
    assert summary.loc["mining_schedule=fixed", "hard found / anchor (training mean)"] == pytest.approx(30.0)
    assert summary.loc["mining_schedule=exponential", "bank at/above threshold (last 10%)"] == pytest.approx(0.25)
    assert summary.loc["mining_schedule=none", "hard found / anchor (last 10%)"] == 0.0
    assert pd.isna(summary.loc["mining_schedule=none", "bank at/above threshold (last 10%)"])
    assert (summary["runs"] == 2).all()
    fig = mining_curves(table, tmp_path / "fig")
    assert fig is not None and fig.files and all(Path(p).exists() for p in fig.files)
    opts = ReportOptions(out_dir=tmp_path / "rep", n_boot=100, figures=False)  # the figure is checked above
    readme = write_report(_mining_sweep(tmp_path), opts).read_text()
    section = readme.split("## Hard-negative mining: did it act?")[1].split("\n## ")[0]
    assert re.search(r"mining_schedule=fixed\s*\|\s*2\s*\|\s*30\s*\|", section)  # 2 runs, 30 hard negatives


def test_no_mining_section_or_figure_when_no_run_mined(table1_sweep, tmp_path):
    from benchmark.results.plots import mining_curves, mining_summary

    table = build_table(collect(table1_sweep))
    assert mining_summary(table).empty and mining_curves(table, tmp_path) is None


@pytest.mark.slow
def test_loss_figure_has_a_panel_per_objective_and_titles_that_do_not_overlap(tmp_path, monkeypatch):
    """Controls have no objective (the BN-statistics pass logs 0), so they get no panel; row labels as long as
    the mini table's ("random init + BN stats [control] (test_resnet (inflated), synthetic-pool)") are wrapped,
    so no panel title runs into its neighbour's."""
    from matplotlib.figure import Figure as MplFigure

    from benchmark.results.fakeruns import FakeRun, write_fake_sweep
    from benchmark.results.plots import loss_curves

    titles: list[tuple[str, object]] = []  # (text, its box on the canvas) of each panel, read as the PNG is saved
    real = MplFigure.savefig

    def measuring_savefig(self, fname, *args, **kwargs):
        if str(fname).endswith(".png"):
            self.canvas.draw()
            renderer = self.canvas.get_renderer()
            titles.extend((ax.title.get_text(), ax.title.get_window_extent(renderer)) for ax in self.axes)
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(MplFigure, "savefig", measuring_savefig)
    specs = [
        FakeRun(method=m, seed=0, accuracy=0.3, backbone_kind=kind, overrides={"backbone.name": "test_resnet", **over})
        for m, kind, over in [
            ("random_init_bn", "2d", {}),
            ("random_init_bn", "3d", {"backbone.inflate": True}),
            ("tce", "2d", {}),
            ("shuffle_learn", "2d", {}),
            ("vcop", "3d", {"backbone.inflate": True}),
            ("rotnet3d", "3d", {"backbone.inflate": True}),
            ("cubic_puzzles", "3d", {"backbone.inflate": True}),
            ("motion_stats", "3d", {"backbone.inflate": True}),
        ]
    ]
    table = build_table(collect(write_fake_sweep(tmp_path / "sweep", specs)))
    assert loss_curves(table, tmp_path / "figs") is not None
    assert len(titles) == 6  # one per objective: the two controls have no panel
    assert not any("control" in text for text, _ in titles)
    overlaps = [(a, b) for i, (a, box_a) in enumerate(titles) for b, box_b in titles[i + 1 :] if box_a.overlaps(box_b)]
    assert overlaps == []


def _captured(monkeypatch) -> list:
    """The figures the plot functions draw, kept instead of saved."""
    from benchmark.results import plots

    figs: list = []
    monkeypatch.setattr(plots, "save", lambda fig, out_dir, name: figs.append(fig) or ())
    return figs


def test_every_loss_panel_dashes_its_chance_level_a_regression_too(tmp_path, monkeypatch):
    """A regression pretext (Motion & Appearance: held-out R^2, no closed-form chance loss) gets the loss of
    predicting the training targets' mean, final loss / (1 - R^2); each dashed line lies inside its panel."""
    from benchmark.results import plots
    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    specs = [FakeRun(method="tce", seed=s) for s in (0, 1)]
    specs += [FakeRun(method="motion_stats", seed=s, learned=False, backbone_kind="3d") for s in (0, 1)]
    table = build_table(collect(write_fake_sweep(tmp_path / "s", specs)))
    figs = _captured(monkeypatch)
    plots.loss_curves(table, tmp_path)
    (fig,) = figs
    dashed = {}
    for ax in fig.axes:
        (line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        y = line.get_ydata()[0]
        low, high = ax.get_ylim()
        assert low < y < high
        dashed[ax.get_title().split(" (")[0]] = y
    # fakeruns: TCE's chance loss 2.0; Motion & Appearance final loss 5 (1 - R^2) at R^2 -0.01 -> 5.0
    assert dashed == {"TCE": pytest.approx(2.0), "Motion & Appearance": pytest.approx(5.0)}
    assert [t.get_text() for t in fig.legends[0].get_texts()][1].startswith("chance level")


def test_hn_ablation_bars_are_drawn_against_the_control_and_chance(tmp_path, monkeypatch):
    from benchmark.results import plots

    table = build_table(collect(_mining_sweep(tmp_path)))
    runs = table.collection.runs
    control = runs.loc[runs["cfg.method.name"] == "random_init_bn", "linear/synthetic/split1.top1"].mean()
    figs = _captured(monkeypatch)
    plots.hn_ablation(table, tmp_path)
    (fig,) = figs
    (ax,) = fig.axes
    flat = sorted(ln.get_ydata()[0] for ln in ax.lines if len(set(ln.get_ydata())) == 1 and len(ln.get_xdata()) == 2)
    assert flat == pytest.approx(sorted([control, 100 / 12]))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        f"random init + BN stats [control]: {control:.1f}",
        "chance: 8.3",
    ]


def test_mining_figure_draws_no_threshold_for_a_setting_that_never_mined(tmp_path, monkeypatch):
    from benchmark.results import plots

    table = build_table(collect(_mining_sweep(tmp_path)))
    figs = _captured(monkeypatch)
    plots.mining_curves(table, tmp_path)
    (fig,) = figs
    found, fraction, threshold = fig.axes
    assert threshold.get_title() == "similarity threshold" and threshold.get_ylabel() == "cosine similarity"
    drawn = [ln for ln in threshold.lines if len(ln.get_xdata())]
    assert len(drawn) == 2  # exponential and fixed; 'none' never mined
    assert (
        len([ln for ln in found.lines if len(ln.get_xdata())]) == 3 and fraction.get_ylabel() == "fraction of the bank"
    )


def test_chance_is_none_for_a_column_without_a_class_count_and_stays_inside_its_panel(tmp_path, monkeypatch):
    """A protocol that records no num_classes has no chance line (no crash); a panel whose bars all sit below
    chance still shows the line."""
    from benchmark.results import plots
    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    table = build_table(collect(write_fake_sweep(tmp_path / "s", [FakeRun(seed=s, accuracy=0.01) for s in (0, 1)])))
    col = table.columns[0]
    assert (
        plots.chance_top1(table.collection.runs.drop(columns=[col.source.rsplit(".", 1)[0] + ".num_classes"]), col)
        is None
    )
    figs = _captured(monkeypatch)
    plots.table1_bars(table, tmp_path)
    ax = figs[0].axes[0]
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert ax.get_xlim()[1] > line.get_xdata()[0] == pytest.approx(100 / 12)


def test_the_same_runs_give_byte_identical_figures(ablation_sweep, tmp_path):
    """Regenerating a committed report changes no figure file: the PDFs carry no creation date and the
    ablation's seed dots are jittered from a fixed seed, leaving numpy's global generator as it was."""
    import numpy as np

    from benchmark.results.plots import all_figures

    table = build_table(collect(ablation_sweep))
    before = np.random.get_state()[1].copy()
    first = {f.name: [p.read_bytes() for p in f.files] for f in all_figures(table, tmp_path / "a", AXES)}
    assert (np.random.get_state()[1] == before).all()
    np.random.seed(123)  # another global state: the picture does not depend on it
    second = {f.name: [p.read_bytes() for p in f.files] for f in all_figures(table, tmp_path / "b", AXES)}
    assert "hn_ablation" in first and first == second


def test_a_table_of_one_column_and_long_labels_keeps_its_title_and_legend_clear(tmp_path, monkeypatch):
    """One column, two rows with long labels: the figure widens for its labels, title and legend, so constrained
    layout works (it once gave up: title over the panel's title, legend over the axis label)."""
    import warnings

    from benchmark.results import plots
    from benchmark.results.fakeruns import FakeRun, write_fake_sweep

    specs = [FakeRun(method=m, seed=0, accuracy=0.4, stages=("pretrain", "linear")) for m in ("random_init_bn", "tce")]
    table = build_table(collect(write_fake_sweep(tmp_path / "a-sweep-with-a-rather-long-name", specs)))
    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, out_dir, name: figs.append(fig) or ())
    plots.table1_bars(table, tmp_path)
    (fig,) = figs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied because axes sizes collapsed to zero"
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = [a for a in fig.axes if a.get_visible()]
    (legend,) = fig.legends
    boxes = {
        "suptitle": fig._suptitle.get_window_extent(renderer),
        "panel title": ax.title.get_window_extent(renderer),
        "x label": ax.xaxis.label.get_window_extent(renderer),
        "legend": legend.get_window_extent(renderer),
    }
    overlapping = [(a, b) for a in boxes for b in boxes if a < b and boxes[a].overlaps(boxes[b])]
    assert overlapping == []
