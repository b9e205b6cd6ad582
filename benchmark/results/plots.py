"""Figures for a sweep (seaborn; each saved as PNG and PDF).

- ``table1_bars``: Table 1 as bars, one panel per column (metric), one bar per
  row (labelled on the y axis), whisker = the table's 95% t-interval, dots = the
  seeds; bars coloured by what the row is (control grey and hatched, 2D and 3D
  methods, the supervised reference).
- ``hn_ablation``: the paper's Figure 5 style: top-1 per hard-negative
  schedule. Which config fields define a "schedule" is the argument ``axes``
  (default :data:`ABLATION_AXES`); only fields present and varying are used.
- ``over_training``: top-1 against the pre-training step, where intermediate
  checkpoints were evaluated (metric keys with an ``@step_N`` suffix).
- ``loss_curves``: pre-training loss per row from scalars.jsonl (mean and sd over seeds), its chance level dashed.
- ``smoothness``: every logged scalar named ``smooth_*`` against the step, one panel per row.
- ``trajectories``: RUN/trajectories.png written by ``vssl trajectories`` (Figure 3 style),
  copied for the first run of each row that has one.

Each function returns a :class:`Figure` or None when the sweep has nothing to draw.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.results.collect import parse_eval_key
from benchmark.results.stats import summarize
from benchmark.results.table import ACTS_ONLY_WHEN, DEFINED_BY, Column, Table, _row_label, setting_label

# TCE's hard-negative fields (methods/tce.py); only those present and varying in a sweep label a setting
ABLATION_AXES: tuple[str, ...] = (
    "method.mining_schedule",
    "method.mining_r",
    "method.mining_fixed_threshold",
    "method.mining_t_low",
    "method.mining_t_high",
    "method.mining_step_count",
    "method.max_hard_fraction",
)


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str
    files: tuple[Path, ...]  # .png, then .pdf when drawn here


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


# The saved image is the figure's tight bounding box: every title, label, legend and tick label is inside it.
SAVE_KW = {"bbox_inches": "tight", "pad_inches": 0.05}


def save(fig, out_dir: Path, name: str) -> tuple[Path, ...]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = (out_dir / f"{name}.png", out_dir / f"{name}.pdf")
    if fig.get_layout_engine() is None:  # figures drawn here use constrained layout; seaborn grids do not
        fig.tight_layout()
    fig.savefig(files[0], dpi=150, **SAVE_KW)
    # no creation date: a PDF regenerated from the same runs is the same file
    fig.savefig(files[1], metadata={"CreationDate": None}, **SAVE_KW)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return files


def _t_interval(values) -> tuple[float, float]:
    s = summarize(list(values))
    return (s.ci_low, s.ci_high) if s.has_ci else (s.mean, s.mean)


def row_labels(table: Table) -> dict[str, str]:
    return {rid: _row_label(table.rows, rid) for rid in table.rows.index}


# --------------------------------------------------------------------------- Table 1
# Bars by what a row is, not one colour per row: a reader finds a row by its label on the y axis.
ROLE_STYLES = {
    "control": {"facecolor": "0.85", "edgecolor": "0.35", "hatch": "///", "label": "control (no learned features)"},
    "method 2D": {"facecolor": "tab:blue", "edgecolor": "none", "label": "method, 2D backbone"},
    "method 3D": {"facecolor": "tab:purple", "edgecolor": "none", "label": "method, 3D backbone"},
    "reference": {"facecolor": "tab:orange", "edgecolor": "none", "label": "supervised reference"},
}


def _style_key(row: pd.Series) -> str:
    role = row.get("role", "method")
    return (
        f"method {row['dims']}"
        if role == "method" and row["dims"] in ("2D", "3D")
        else role
        if role in ROLE_STYLES
        else "method 2D"
    )


def chance_top1(runs: pd.DataFrame, c: Column) -> float | None:
    """A top-1 column's chance level in %: 100 / the evaluation's classes (read from runs.csv), else None."""
    if c.field != "top1":
        return None
    column = runs.get(c.source.rsplit(".", 1)[0] + ".num_classes")
    if column is None:  # a protocol that does not record its class count
        return None
    classes = pd.to_numeric(column, errors="coerce").dropna()
    return 100.0 / float(classes.iloc[0]) if len(classes) and classes.nunique() == 1 and classes.iloc[0] > 0 else None


def _text_inches(chars: int, points: float) -> float:
    """About how wide a line of ``chars`` characters is at ``points`` pt (an average glyph is ~0.55 em)."""
    return chars * points * 0.55 / 72


def table1_bars(table: Table, out_dir: Path) -> Figure | None:
    """One panel per column (metric), rows on the y axis in the table's order: bar = mean over seeds, whisker =
    the table's 95% t-interval, dots = the seeds; control rows grey and hatched."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    runs = table.collection.runs
    cols = [c for c in table.columns if c.source in runs and runs[c.source].notna().any()]
    if not cols:
        return None
    plt, _ = _pyplot()
    rows = list(table.rows.index)
    labels = row_labels(table)
    ncols = min(len(cols), 3)
    nrows = -(-len(cols) // ncols)
    height = max(2.6, 0.26 * len(rows) + 1.0)
    name = table.collection.manifest.get("name") or table.collection.source.name
    one_dataset = len({c.dataset for c in cols}) == 1  # then panels are titled by metric, the dataset goes on top
    title = f"{name}{f' on {cols[0].dataset}' if one_dataset else ''}: mean over seeds, whisker = 95% t-interval, " \
        "dots = seeds"  # fmt: skip
    # wide enough for the row labels beside the panels, the title and the legend: a table of one column and long
    # labels once left constrained layout no room at all (title over the panel, legend over the axis label)
    roles = {_style_key(table.rows.loc[r]) for r in rows}
    legend_chars = sum(len(ROLE_STYLES[k]["label"]) + 6 for k in roles) + len("one seed") + len("chance (1 / classes)")
    width = max(2.9 * ncols, _text_inches(max(len(labels[r]) for r in rows), 8.8) + 1.6 * ncols,
                _text_inches(len(title), 11.5), min(_text_inches(legend_chars, 8.0) + 1.5, 12.0))  # fmt: skip
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height * nrows), sharey=True, squeeze=False, layout="constrained"
    )
    used = set()
    chance_drawn = False
    for ax, c in zip(axes.flat, cols, strict=False):
        right = 0.0  # the panel's x range covers every whisker and seed dot
        for y, rid in enumerate(rows):
            cell = table.cells[(rid, c.source)]
            if not table.reported(rid):  # no bar: the row did not learn its pretext task
                ax.text(0.5, y, "did not learn its pretext", va="center", fontsize="x-small", color="0.35",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5}, zorder=4)  # fmt: skip
                continue
            if cell.n == 0:
                continue
            key = _style_key(table.rows.loc[rid])
            used.add(key)
            style = {k: v for k, v in ROLE_STYLES[key].items() if k != "label"}
            err = [[cell.mean - cell.ci_low], [cell.ci_high - cell.mean]] if cell.has_ci else None
            ax.barh(
                y,
                cell.mean,
                height=0.72,
                xerr=err,
                capsize=2,
                linewidth=0.6,
                error_kw={"elinewidth": 0.8, "ecolor": "0.15"},
                **style,
            )
            seeds = runs.loc[runs["row.id"] == rid, c.source].dropna().to_numpy()
            offsets = np.linspace(-0.2, 0.2, len(seeds)) if len(seeds) > 1 else np.zeros(len(seeds))
            ax.scatter(seeds, y + offsets, s=8, color="black", zorder=3, linewidths=0)
            right = max(right, cell.mean, cell.ci_high if cell.has_ci else cell.mean, *seeds)
        chance = chance_top1(runs, c)
        if chance is not None:
            ax.axvline(chance, ls=":", lw=1, color="0.2", zorder=2.5)
            chance_drawn = True
            right = max(right, chance)
        ax.set_title(c.label[len(c.dataset) + 1 :] if one_dataset else c.label, fontsize="medium")
        ax.set_xlabel("%")
        ax.set_xlim(0, min(100.0, right * 1.06) if right > 0 else None)
        ax.grid(axis="y", visible=False)
    for ax in axes.flat[len(cols) :]:
        ax.remove()
    axes[0, 0].set_yticks(range(len(rows)), [labels[r] for r in rows])
    axes[0, 0].set_ylim(len(rows) - 0.5, -0.5)  # the table's first row on top
    handles = [Patch(**{k: v for k, v in ROLE_STYLES[k2].items()}) for k2 in ROLE_STYLES if k2 in used]
    handles.append(Line2D([], [], marker="o", linestyle="", color="black", markersize=3, label="one seed"))
    if chance_drawn:
        handles.append(Line2D([], [], ls=":", lw=1, color="0.2", label="chance (1 / classes)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="small")
    fig.suptitle(title)
    return Figure(
        "table1",
        "Table 1 as bars, one panel per column: mean over seeds with the 95% t-interval; each dot "
        "is one seed; control rows grey and hatched; a row that did not learn its pretext task has no bar; dotted: "
        "chance top-1 (1 / the evaluation's classes).",
        save(fig, out_dir, "table1"),
    )


def _legend_below(fig, ax, ncol: int = 1) -> None:
    """Move an axes' legend under the figure (constrained layout keeps the axes at full size)."""
    handles, texts = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, texts, loc="outside lower center", ncol=ncol, frameon=False, fontsize="small")


# --------------------------------------------------------------------------- hard-negative ablation
def ablation_fields(runs: pd.DataFrame, axes: Iterable[str]) -> list[str]:
    cols = [f"cfg.{a}" if not a.startswith("cfg.") else a for a in axes]
    return [c for c in cols if c in runs and runs[c].astype(str).nunique() > 1]


def _schedule_labels(runs: pd.DataFrame, fields: list[str]) -> pd.Series:
    """One label per run: the fields' values, only parameters that act (no mining_r on a fixed-threshold
    setting), plus the parameter that defines the setting (the fixed threshold) even when it does not vary."""
    extra = sorted(
        {
            f
            for f in (*DEFINED_BY.values(), *(g for g, _ in ACTS_ONLY_WHEN.values()))
            if f in runs.columns and f not in fields
        }
    )
    short = {f: f.rsplit(".", 1)[-1] for f in fields}
    cols = fields + extra
    vals = runs[cols].astype(object).where(runs[cols].notna(), None)
    return pd.Series(
        [
            setting_label(dict(zip(cols, row, strict=True)), fields, short, extra)
            for row in vals.itertuples(index=False, name=None)
        ],
        index=runs.index,
        dtype=object,
    )


def primary_column(table: Table, protocol: str = "linear", field: str = "top1") -> Column | None:
    cols = [c for c in table.columns if c.protocol == protocol and c.field == field] or [
        c for c in table.columns if c.field == "top1"
    ]
    return cols[0] if cols else None


def ablation_frame(
    table: Table, axes: Iterable[str] = ABLATION_AXES, protocol: str = "linear"
) -> tuple[pd.DataFrame, list[str], Column | None]:
    """(runs with a 'schedule' label and the plotted 'value', the fields used, the column plotted)."""
    runs = table.collection.runs
    fields = ablation_fields(runs, axes)
    col = primary_column(table, protocol)
    if not fields or col is None:
        return pd.DataFrame(columns=["schedule", "value"]), fields, col
    sub = runs[runs[fields].notna().any(axis=1)].copy()
    sub["schedule"] = _schedule_labels(sub, fields)
    sub["others"] = _other_labels(table, sub, fields)
    sub["value"] = sub[col.source]
    return sub.dropna(subset=["value"]), fields, col


def _other_labels(table: Table, runs: pd.DataFrame, fields: list[str]) -> pd.Series:
    """What else varies between the runs (e.g. the loss): one series per value, so that runs differing in
    anything but the hard-negative setting are never pooled into one bar."""
    others = [c for c in table.variant_fields if c not in fields and c in runs]
    return _schedule_labels(runs, others) if others else pd.Series("", index=runs.index)


def hn_ablation(
    table: Table, out_dir: Path, axes: Iterable[str] = ABLATION_AXES, protocol: str = "linear"
) -> Figure | None:
    sub, fields, col = ablation_frame(table, axes, protocol)
    if sub.empty:
        return None
    plt, sns = _pyplot()
    order = sorted(sub["schedule"].unique())
    hues = sorted(sub["others"].unique())
    hue = dict(hue="others", hue_order=hues) if len(hues) > 1 else dict(color="tab:blue")
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(order) * max(1, len(hues)) ** 0.5 + 2), 4), layout="constrained")
    sns.barplot(sub, x="schedule", y="value", order=order, errorbar=_t_interval, capsize=0.1, ax=ax, **hue)
    strip = (
        dict(hue="others", hue_order=hues, dodge=True, palette={h: "black" for h in hues}, legend=False)
        if len(hues) > 1
        else dict(color="black")
    )
    state = np.random.get_state()  # seaborn jitters the dots with numpy's global generator: seed it here, so
    np.random.seed(0)  # that the same runs give the same picture, and leave the caller's generator as it was
    try:
        sns.stripplot(sub, x="schedule", y="value", order=order, size=3, ax=ax, **strip)
    finally:
        np.random.set_state(state)
    references = _reference_lines(table, col, ax)
    ax.set(xlabel="hard-negative setting", ylabel=f"{col.label} (%)", title="Hard-negative mining (Figure 5 style)")
    # "mining_schedule=fixed, mining_fixed_threshold=0.5" as two short lines instead of a rotated run of text
    ax.set_xticks(
        range(len(order)),
        [textwrap.fill(o.replace("mining_", ""), 18, break_long_words=False) for o in order],
        fontsize="small",
    )
    if len(hues) > 1 or references:
        _legend_below(fig, ax, ncol=min(len(hues) + len(references), 3))
    return Figure(
        "hn_ablation",
        f"{col.label} per hard-negative setting ({', '.join(f[4:] for f in fields)}): "
        "mean over seeds, whisker = each setting's own 95% t-interval (unpaired; the paired differences are in "
        "paired.md), dots = seeds; dashed = control rows' mean, dotted = chance.",
        save(fig, out_dir, "hn_ablation"),
    )


def _reference_lines(table: Table, col: Column, ax) -> list[str]:
    """Horizontal lines for what an ablation's bars must be read against: each control row's mean (dashed, one
    colour per control, so two controls can be told apart) and chance top-1 (dotted); returns their labels."""
    runs, labels, drawn = table.collection.runs, row_labels(table), []
    styles = iter([("--", "tab:red"), ("-.", "tab:purple"), ((0, (5, 1, 1, 1, 1, 1)), "tab:brown")] * 4)
    for rid in table.rows.index:
        if table.rows.loc[rid].get("role") != "control":
            continue
        values = runs.loc[runs["row.id"] == rid, col.source].dropna()
        if len(values):
            name = labels[rid].split(" (")[0]
            ls, color = next(styles)
            ax.axhline(values.mean(), ls=ls, lw=1.2, color=color, label=f"{name}: {values.mean():.1f}")
            drawn.append(name)
    chance = chance_top1(runs, col)
    if chance is not None:
        ax.axhline(chance, ls=":", lw=1, color="0.2", label=f"chance: {chance:.1f}")
        drawn.append("chance")
    return drawn


def checkpoint_evals(table: Table, protocol: str = "linear", field: str = "top1") -> pd.DataFrame:
    """Long frame (run, row.id, step, value) over intermediate and final checkpoints of one protocol."""
    runs = table.collection.runs
    parts = []
    for key in table.collection.eval_keys():
        e = parse_eval_key(key)
        if e is None or e.protocol != protocol or f"{key}.{field}" not in runs:
            continue
        step = runs.get(f"{key}.checkpoint_step")
        if step is None:
            step = runs.get("pretrain.steps") if e.step is None else pd.Series(e.step, index=runs.index)
        parts.append(
            pd.DataFrame(
                {
                    "run": runs["run"],
                    "row.id": runs["row.id"],
                    "dataset": e.dataset,
                    "intermediate": e.step is not None,
                    "step": step,
                    "value": runs[f"{key}.{field}"],
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=["run", "row.id", "dataset", "intermediate", "step", "value"])
    return pd.concat(parts, ignore_index=True).dropna(subset=["step", "value"])


def _setting_series(table: Table, run_ids: pd.Series, fallback: pd.Series, axes: Iterable[str]) -> list[str]:
    """A series label per entry of ``run_ids``: its hard-negative setting (and whatever else varies), else the
    ``fallback`` label (the row's)."""
    fields = ablation_fields(table.collection.runs, axes)
    if not fields:
        return list(fallback)
    picked = table.collection.runs.set_index("run").loc[run_ids]
    sched = _schedule_labels(picked, fields).values
    others = _other_labels(table, picked, fields).values
    return [", ".join(x for x in (o, s) if x) or lab for s, o, lab in zip(sched, others, fallback, strict=True)]


def over_training(
    table: Table, out_dir: Path, axes: Iterable[str] = ABLATION_AXES, protocol: str = "linear"
) -> Figure | None:
    long = checkpoint_evals(table, protocol)
    with_steps = set(long.loc[long["intermediate"], "run"])
    long = long[long["run"].isin(with_steps)]
    if long.empty:
        return None
    long["series"] = _setting_series(table, long["run"], long["row.id"].map(row_labels(table)), axes)
    plt, sns = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    sns.lineplot(long, x="step", y="value", hue="series", errorbar=_t_interval, marker="o", ax=ax)
    ax.set(
        xlabel="pre-training step",
        ylabel=f"{long['dataset'].iloc[0]} {protocol} top-1 (%)",
        title="Top-1 over pre-training (evaluated checkpoints)",
    )
    _legend_below(fig, ax)
    return Figure(
        "over_training",
        f"{protocol} top-1 of checkpoints taken during pre-training; band = 95% t-interval over seeds.",
        save(fig, out_dir, "over_training"),
    )


# --------------------------------------------------------------------------- scalars
def scalars_frame(table: Table, prefix: str | None = None, names: Iterable[str] = ("loss",)) -> pd.DataFrame:
    """Pre-training scalars of every run, long: run, series, step, name, value."""
    from benchmark.rundir import RunDir

    labels = row_labels(table)
    row_of = dict(zip(table.collection.runs["run"], table.collection.runs["row.id"], strict=True))
    wanted = set(names)
    recs = []
    for run, path in table.collection.paths.items():
        for rec in RunDir(path).scalars():
            if rec.get("stage", "pretrain") != "pretrain" or "step" not in rec:
                continue
            for k, v in rec.items():
                if (
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and ((prefix and k.startswith(prefix)) or k in wanted)
                ):
                    recs.append((run, labels[row_of[run]], rec["step"], k, float(v)))
    return pd.DataFrame(recs, columns=["run", "series", "step", "name", "value"])


def chance_loss(runs: pd.DataFrame) -> float | None:
    """A row's chance-level loss (mean over its runs): metrics.json pretrain.pretext.chance.loss; for a regression
    pretext (measure r2, no closed-form chance) the held-out loss of predicting the training targets' mean, i.e.
    R^2 = 0: final loss / (1 - final R^2)."""

    def num(col: str) -> pd.Series:
        return pd.to_numeric(runs[col], errors="coerce") if col in runs else pd.Series(dtype=float)

    chance = num("pretrain.pretext.chance.loss")
    if chance.notna().any():
        return float(chance.mean())
    measure = runs.get("pretrain.pretext.measure", pd.Series(dtype=object))
    r2, loss = num("pretrain.pretext.final.value"), num("pretrain.pretext.final.loss")
    ok = (measure == "r2") & r2.notna() & loss.notna() & (r2 < 1)
    return float((loss[ok] / (1 - r2[ok])).mean()) if ok.any() else None


def loss_curves(table: Table, out_dir: Path) -> Figure | None:
    """One panel per pre-trained row (each objective is its own loss; control rows, which have none, are left
    out): mean over seeds with a ±1 sd band, and the objective's chance-level loss dashed (:func:`chance_loss`),
    so a curve that never leaves chance shows at a glance. One legend for the figure, below the panels."""
    from matplotlib.lines import Line2D

    long = scalars_frame(table, names=("loss",))
    if long.empty:
        return None
    plt, sns = _pyplot()
    labels = row_labels(table)
    # the table's row order; controls have no objective (the BN-statistics pass logs a constant 0)
    logged = set(long["series"])
    order = [labels[r] for r in table.rows.index if labels[r] in logged and table.rows.loc[r].get("role") != "control"]
    if not order:
        return None
    ncols = min(len(order), 4)
    nrows = -(-len(order) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.4 * nrows), squeeze=False, layout="constrained")
    runs = table.collection.runs
    any_chance = any_regression = False
    for ax, series in zip(axes.flat, order, strict=False):
        part = long[long["series"] == series]
        sns.lineplot(part, x="step", y="value", errorbar="sd", ax=ax, color="C0")
        rid = next(r for r in table.rows.index if labels[r] == series)
        mine = runs.loc[runs["row.id"] == rid]
        chance = chance_loss(mine)
        any_regression |= chance is not None and (mine.get("pretrain.pretext.measure") == "r2").any()
        if chance is not None:
            ax.axhline(chance, ls="--", lw=1, color="0.3")
            low, high = ax.get_ylim()
            pad = 0.06 * (max(high, chance) - min(low, chance))
            ax.set_ylim(min(low, chance - pad), max(high, chance + pad))  # never on (or past) the frame
            any_chance = True
        ax.set_title(textwrap.fill(series, 34), fontsize="small")  # long row labels would run into the next panel
        ax.set(xlabel="step", ylabel="loss")
    for ax in axes.flat[len(order) :]:
        ax.remove()
    handles = [Line2D([], [], color="C0", label="mean over seeds (band: ±1 sd)")]
    if any_chance:
        label = "chance level" + (" (a regression: R² = 0)" if any_regression else "")
        handles.append(Line2D([], [], ls="--", lw=1, color="0.3", label=label))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize="small")
    fig.suptitle("Pre-training loss per row")
    return Figure(
        "loss_curves",
        "Pre-training loss per row from scalars.jsonl, one panel per pre-trained row (losses of different "
        "methods are different objectives, so no two share an axis): mean over seeds, band = ±1 sd, dashed = the objective's chance-level loss "
        "(for a regression pretext such as Motion & Appearance's, the held-out loss of predicting the training "
        "targets' mean, R² = 0).",
        save(fig, out_dir, "loss_curves"),
    )


# TCE's per-step mining scalars: panel title, y-axis label, and the range a value can take (a ±1 sd band is
# clipped to it: a count is never negative)
MINING_SCALARS: dict[str, tuple[str, str, tuple[float | None, float | None]]] = {
    "hard_found": ("hard negatives found per anchor", "negatives per anchor", (0.0, None)),
    "bank_above_thr": ("fraction of the bank at or above the threshold", "fraction of the bank", (0.0, 1.0)),
    "mining_threshold": ("similarity threshold", "cosine similarity", (-1.0, 1.0)),
}


def mining_frame(table: Table, axes: Iterable[str] = ABLATION_AXES) -> pd.DataFrame:
    """TCE's per-step mining scalars (benchmark/mining.MinedNegatives.stats) of every run that logged them,
    long (run, series, step, name, value); ``series`` names the hard-negative setting. Empty when no run mined
    (a run with mining off logs hard_found = 0 and no bank fraction)."""
    long = scalars_frame(table, names=tuple(MINING_SCALARS))
    if long.empty or not (long["name"] == "bank_above_thr").any():
        return long.iloc[0:0]
    long["series"] = _setting_series(table, long["run"], long["series"], axes)
    return long


def mining_curves(table: Table, out_dir: Path, axes: Iterable[str] = ABLATION_AXES) -> Figure | None:
    """Per hard-negative setting, over pre-training: the threshold, the hard negatives found per anchor and the
    fraction of the bank at or above the threshold (mean over seeds, band = ±1 sd): whether mining acted."""
    long = mining_frame(table, axes)
    if long.empty:
        return None
    plt, sns = _pyplot()
    # a setting that never mined (no bank fraction logged, e.g. schedule none) has no threshold in force either
    mined = set(long.loc[long["name"] == "bank_above_thr", "series"])
    long = long[(long["name"] != "mining_threshold") | long["series"].isin(mined)]
    names = [n for n in MINING_SCALARS if (long["name"] == n).any()]
    order = sorted(long["series"].unique())
    fig, axs = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False, layout="constrained")
    for ax, name in zip(axs[0], names, strict=True):
        title, ylabel, (low, high) = MINING_SCALARS[name]

        def sd_band(values, low=low, high=high):
            m, sd = float(values.mean()), float(values.std()) if len(values) > 1 else 0.0
            lo, hi = m - sd, m + sd
            return (lo if low is None else max(lo, low), hi if high is None else min(hi, high))

        sns.lineplot(
            long[long["name"] == name], x="step", y="value", hue="series", hue_order=order, errorbar=sd_band, ax=ax
        )
        ax.set(xlabel="pre-training step", ylabel=ylabel, title=title)
        ax.title.set_fontsize("small")
    for ax in axs[0][1:]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    _legend_below(fig, axs[0][0], ncol=min(len(order), 3))
    return Figure(
        "mining_curves",
        "Hard-negative mining over pre-training per setting (scalars.jsonl): the threshold, hard negatives found "
        "per anchor (of K) and the fraction of the memory bank at or above the threshold (excluded as too "
        "similar); mean over seeds, band = ±1 sd (clipped to the values possible). A setting that finds no hard "
        "negatives did not mine; one that never mined (schedule none) has no threshold drawn.",
        save(fig, out_dir, "mining_curves"),
    )


def mining_summary(table: Table, axes: Iterable[str] = ABLATION_AXES) -> pd.DataFrame:
    """One line per hard-negative setting: hard negatives found per anchor (mean over training and over the
    last 10% of steps) and the fraction of the bank at or above the threshold at the end; mean over runs."""
    long = mining_frame(table, axes)
    if long.empty:
        return pd.DataFrame()
    out = []
    for series, part in long.groupby("series", sort=True):
        last = part["step"] >= 0.9 * part["step"].max()
        found = part[part["name"] == "hard_found"]
        above = part[(part["name"] == "bank_above_thr") & last]
        out.append(
            {
                "setting": series,
                "runs": part["run"].nunique(),
                "hard found / anchor (training mean)": found["value"].mean(),
                "hard found / anchor (last 10%)": found.loc[last[found.index], "value"].mean(),
                "bank at/above threshold (last 10%)": above["value"].mean() if not above.empty else float("nan"),
            }
        )
    return pd.DataFrame(out)


# what TCE's smoothness scalars measure (benchmark/smoothness.py); other smooth_* names are shown as logged
SMOOTHNESS_NAMES = {
    "smooth_same": "same video: frames d apart",
    "smooth_diff": "different videos",
}


def smoothness(table: Table, out_dir: Path) -> Figure | None:
    """One panel per pre-trained row, every ``smooth_*`` scalar as a line on one cosine-similarity axis shared by
    all panels: a temporally coherent embedding keeps the same video's frames close and other videos apart."""
    long = scalars_frame(table, prefix="smooth_", names=())
    if long.empty:
        return None
    plt, sns = _pyplot()
    long["quantity"] = long["name"].map(lambda n: SMOOTHNESS_NAMES.get(n, n))
    labels = row_labels(table)
    order = [labels[r] for r in table.rows.index if labels[r] in set(long["series"])]
    quantities = [q for q in (*SMOOTHNESS_NAMES.values(), *sorted(set(long["quantity"]))) if q in set(long["quantity"])]
    quantities = list(dict.fromkeys(quantities))
    ncols = min(len(order), 4)
    nrows = -(-len(order) // ncols)
    cosine = set(long["name"]) <= set(SMOOTHNESS_NAMES)  # only then one shared "cosine similarity" axis
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False, sharey=cosine, layout="constrained"
    )
    for ax, series in zip(axes.flat, order, strict=False):
        sns.lineplot(
            long[long["series"] == series], x="step", y="value", hue="quantity", hue_order=quantities,
            errorbar="sd", ax=ax, legend=ax is axes.flat[0],
        )  # fmt: skip
        ax.set_title(textwrap.fill(series, 34), fontsize="small")
        ax.set(xlabel="pre-training step", ylabel="cosine similarity" if cosine else "value")
    for ax in axes.flat[len(order) :]:
        ax.remove()
    _legend_below(fig, axes.flat[0], ncol=len(quantities))
    fig.suptitle("Embedding smoothness during pre-training")
    return Figure(
        "smoothness",
        "Embedding smoothness during pre-training (TCE's Figure 3 idea; benchmark/smoothness.py), one panel per "
        "row: the mean cosine similarity of the embeddings of two frames d apart in the same video, and of frames "
        "of different videos, on each logged step; mean over seeds, band = ±1 sd. Coherent: the first high, the "
        "second low; both near 1 is a collapse.",
        save(fig, out_dir, "smoothness"),
    )


def trajectories(table: Table, out_dir: Path) -> list[Figure]:
    """Copies of the trajectory plots `vssl trajectories` left in run directories (one per row)."""
    import shutil

    figs = []
    for i, rid in enumerate(table.rows.index):
        for run in table.runs_of(rid)["run"]:
            src = table.collection.paths[run] / "trajectories.png"
            if src.exists():
                dst = Path(out_dir) / f"trajectories_{i}.png"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                figs.append(
                    Figure(
                        f"trajectories_{i}",
                        f"Frame trajectories of a few videos (2D PCA per checkpoint, Figure 3 "
                        f"style), {_row_label(table.rows, rid)}, run {run}.",
                        (dst,),
                    )
                )
                break
    return figs


# every figure name all_figures can write (trajectories_<i> besides): what a re-report may remove when it no longer
# draws one, leaving any other file in figures/ alone
FIGURE_NAMES = ("table1", "hn_ablation", "over_training", "loss_curves", "mining_curves", "smoothness")


def is_report_figure(path: Path) -> bool:
    """Whether ``path`` is a figure file `vssl report` writes (by name and suffix)."""
    path = Path(path)
    named = path.stem in FIGURE_NAMES or re.fullmatch(r"trajectories_\d+", path.stem) is not None
    return named and path.suffix in (".png", ".pdf")


def all_figures(table: Table, out_dir: Path, axes: Iterable[str] = ABLATION_AXES) -> list[Figure]:
    axes = tuple(axes)
    makers = [
        lambda: table1_bars(table, out_dir),
        lambda: hn_ablation(table, out_dir, axes),
        lambda: over_training(table, out_dir, axes),
        lambda: loss_curves(table, out_dir),
        lambda: mining_curves(table, out_dir, axes),
        lambda: smoothness(table, out_dir),
    ]
    return [f for f in (m() for m in makers) if f is not None] + trajectories(table, out_dir)
