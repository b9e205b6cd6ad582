"""``vssl report SWEEP_DIR``: the table in every format, the figures, and a
README.md beside them that says what each column measured and where every
number came from (code commit, each row's config, hardware, wall time).

Files written to the output folder (default ``SWEEP_DIR/report``):

    README.md        the report
    table.md / table.txt / table.tex / table.csv   Table 1 (Markdown, terminal, LaTeX booktabs, numeric CSV)
    paired.md        each row minus each control row (seed-level t-interval; bootstrap for reference)
    runs.csv         one row per run: every config field, provenance field and metric
    figures/*.png|pdf
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from benchmark.results import published
from benchmark.results.collect import collect, parse_eval_key
from benchmark.results.stats import BOOTSTRAP_CAVEAT, LEVEL
from benchmark.results.table import (
    Column,
    PairedRow,
    Table,
    _row_label,
    build_table,
    by_baseline,
    fmt_value,
    paired_frame,
    paired_vs_baseline,
    render,
    render_paired,
)
from benchmark.rundir import atomic_write_text, git_state


def paired_test_text(n_boot: int, baseline: str) -> str:
    """How the paired difference is tested, for the README (the code is stats.paired_difference); ``baseline``:
    the row every other row is paired with in this section."""
    from benchmark.results.table import CONTROLS

    kind = "control row" if baseline.split(":")[0] in CONTROLS else "row"
    other = published.display_name(baseline)
    paired_with = f"the {kind} {other} of the same backbone and 2D/3D kind"
    return (
        f"Each row is paired with {paired_with}: the same test videos, and seed s of both starts from the same "
        f"initialisation. D[s, v] = correct(row, seed s, video v) - correct({other}, seed s, video v), read from "
        "`per_video_correct` in "
        "metrics.json; the difference is the mean of D (= the mean over seeds of the top-1 difference). **Claims rest "
        f"on the seed-level interval**: the per-seed top-1 differences are the units, and their {LEVEL:.0%} "
        "t-interval (t with seeds - 1 degrees of freedom) covers training randomness and, inside each per-seed "
        "difference, the finite test set. A difference is claimed only when it excludes 0; with one seed no claim "
        f"is made. The two-way percentile bootstrap ({n_boot:,} replicates, seeds and test videos resampled) is "
        f"shown beside it for reference only: {BOOTSTRAP_CAVEAT}."
    )


@dataclass(frozen=True)
class ReportOptions:
    out_dir: Path | None = None  # default: SWEEP_DIR/report
    allow_mixed: bool = False
    include_incomplete: bool = False
    split_recipes: bool = False  # runs of one row with different recipes: separate rows instead of an error
    baseline: str = "controls"  # 'controls' (each control row present) or comma-separated methods; one section each
    ablation_axes: tuple[str, ...] | None = None  # default: plots.ABLATION_AXES
    figures: bool = True
    n_boot: int = 10000
    summary: str = ""  # Markdown the author wrote (what was found, what is missing), placed under the title


def write_report(sweep_dir: Path, opts: ReportOptions = ReportOptions()) -> Path:
    """Write every file of the report; returns the README's path."""
    sweep_dir = Path(sweep_dir)
    out = Path(opts.out_dir) if opts.out_dir else sweep_dir / "report"
    coll = collect(sweep_dir, allow_mixed=opts.allow_mixed, include_incomplete=opts.include_incomplete)
    table = build_table(coll, split_recipes=opts.split_recipes)
    paired = by_baseline(paired_vs_baseline(table, opts.baseline, n_boot=opts.n_boot)) if opts.baseline.strip() else {}
    out.mkdir(parents=True, exist_ok=True)
    for fmt, name in (("md", "table.md"), ("terminal", "table.txt"), ("latex", "table.tex"), ("csv", "table.csv")):
        atomic_write_text(out / name, render(table, fmt))
    if any(paired.values()):
        atomic_write_text(
            out / "paired.md",
            "\n".join(
                (f"## vs {published.display_name(b)}\n\n" if len(paired) > 1 else "") + render_paired(rows, "md", b)
                for b, rows in paired.items()
                if rows
            ),
        )
    elif (out / "paired.md").exists():  # a stale one from an earlier report with a baseline
        (out / "paired.md").unlink()
    atomic_write_text(
        out / "runs.csv", coll.runs.drop(columns=[c for c in coll.runs if c.startswith("row.")]).to_csv(index=False)
    )
    figures = []
    if opts.figures:
        from benchmark.results.plots import ABLATION_AXES, all_figures

        figures = all_figures(table, out / "figures", opts.ablation_axes or ABLATION_AXES)
    readme = out / "README.md"
    text = readme_text(table, paired, figures, out, opts.n_boot, opts.summary, opts.ablation_axes)
    atomic_write_text(readme, text)
    return readme


# --------------------------------------------------------------------------- README sections
def readme_text(
    table: Table,
    paired: dict[str, list[PairedRow]],
    figures: list,
    out: Path,
    n_boot: int = 10000,
    summary: str = "",
    ablation_axes: tuple[str, ...] | None = None,
) -> str:
    """``paired``: baseline method -> its paired rows (one README section per baseline)."""
    coll = table.collection
    name = coll.manifest.get("name") or (coll.sweeps[0] if len(coll.sweeps) == 1 else coll.source.name)
    code = git_state(exclude=out)  # the files being written here are not "uncommitted code"
    lines = [f"# {name}: results", ""]
    if summary.strip():
        lines += [summary.strip(), ""]
    if coll.manifest.get("description"):
        lines += [str(coll.manifest["description"]), ""]
    run_commits = sorted(set(coll.runs.get("env.git_commit", pd.Series(dtype=str)).dropna().astype(str)))
    ran_at = (
        f"the runs' code at commit `{run_commits[0][:12]}`"
        if len(run_commits) == 1
        else f"the runs' code at {len(run_commits)} commits"
        if run_commits
        else "the runs' code commit unrecorded"
    )
    summary_file = " `summary.md` (the findings above, by hand)," if summary.strip() else ""
    lines += [
        f"Generated by `vssl report {coll.source}` on {_dt.date.today().isoformat()} from {len(coll.runs)} runs "
        f"({len(coll.skipped)} skipped; {ran_at}: Provenance below) by report code at commit "
        f"`{code.get('git_commit') or 'unknown'}`{' (uncommitted changes)' if code.get('git_dirty') else ''}. "
        f"Files here:{summary_file} `table.md`, `table.txt`, `table.tex` (booktabs), `table.csv` (numbers), "
        "`paired.md`, `runs.csv` (every run's config and metrics), `figures/` (PNG and PDF)."
        + "".join(f" Also here, by hand: `{name}`." for name in _hand_written(out)),
        "",
    ]
    lines += ["## Table 1", "", render(table, "md").rstrip(), ""]
    for baseline, rows in paired.items():
        lines += paired_section(rows, baseline, n_boot)
    lines += mining_section(table, ablation_axes)
    lines += figures_section(figures, out)
    lines += protocol_section(table)
    lines += recipe_section(table)
    lines += budget_section(table)
    lines += provenance_section(table)
    lines += config_section(table)
    if coll.skipped:
        lines += ["## Skipped runs", ""] + [f"- `{n}`: {r}" for n, r in coll.skipped] + [""]
    return "\n".join(lines) + "\n"


def _hand_written(out: Path) -> list[str]:
    """Markdown files beside the report that it does not write (e.g. table1-cpu's calibration.md)."""
    written = {"README.md", "summary.md", "table.md", "paired.md"}
    return sorted(p.name for p in Path(out).glob("*.md") if p.name not in written)


def paired_section(paired: list[PairedRow], baseline: str, n_boot: int) -> list[str]:
    if not paired:
        return []
    from tabulate import tabulate

    frame = paired_frame(paired, baseline)
    return [
        f"## Paired difference vs {published.display_name(baseline)}",
        "",
        tabulate(frame, headers="keys", showindex=False, tablefmt="github", disable_numparse=True),
        "",
        f"Test: {paired_test_text(n_boot, baseline)}",
        "",
    ]


def mining_section(table: Table, axes: tuple[str, ...] | None = None) -> list[str]:
    """Whether hard-negative mining acted, per setting (TCE's per-step scalars): only when a run mined."""
    from tabulate import tabulate

    from benchmark.results.plots import ABLATION_AXES, mining_summary

    frame = mining_summary(table, axes or ABLATION_AXES)
    if frame.empty:
        return []
    return [
        "## Hard-negative mining: did it act?",
        "",
        tabulate(frame, headers="keys", showindex=False, tablefmt="github", floatfmt=".3g"),
        "",
        "From each run's scalars.jsonl (logged every run.log_every steps), mean over the runs of a setting. "
        "Hard negatives are bank entries below the threshold, most similar first (at most max_hard_fraction x K "
        "per anchor); entries at or above it are excluded as likely false negatives. A setting with ~0 hard "
        "negatives, or with ~all of the bank above its threshold, did not mine whatever its name.",
        "",
    ]


def figures_section(figures: list, out: Path) -> list[str]:
    if not figures:
        return []
    lines = ["## Figures", ""]
    for f in figures:
        png, *pdf = (p.relative_to(out).as_posix() for p in f.files)
        lines += [f"![{f.name}]({png})", "", f.caption + (f" ([PDF]({pdf[0]}))" if pdf else ""), ""]
    return lines


def _values(runs: pd.DataFrame, col: str) -> str:
    """The distinct values of a column over runs, as text ('' when absent)."""
    if col not in runs:
        return ""
    vals = [fmt_value(v) for v in pd.unique(runs[col].dropna())]
    return " / ".join(vals)


def _recipe(runs: pd.DataFrame, c: Column) -> str:
    cfg = lambda k: _values(runs, f"cfg.eval.{k}")  # noqa: E731
    if c.protocol == "linear":
        return (
            f"frozen backbone, standardised features + linear layer, {cfg('linear_epochs')} full-batch epochs, "
            f"SGD lr {cfg('linear_lr')}, wd {cfg('linear_weight_decay')}"
        )
    if c.protocol == "knn":
        k = _values(runs, f"{c.key}.k")
        return f"frozen backbone, cosine kNN on mean-subtracted L2-normalised features, k in {cfg('knn_ks')}" + (
            f", top-1 vote k={k}" if k else ""
        )
    if c.protocol == "finetune":
        return (
            f"all layers trained, {cfg('finetune_epochs')} epochs, lr {cfg('finetune_lr')}, "
            f"{cfg('finetune_segments')} TSN segments (2D), held-out {cfg('heldout_fraction')} of train for selection"
        )
    return c.protocol


def protocol_section(table: Table) -> list[str]:
    rows = []
    for c in table.columns:
        runs = table.collection.runs.dropna(subset=[c.source])
        k = c.key
        sampling = []
        for field, what in (
            ("frames_at_test", "frames"),
            ("clips_at_test", "clips"),
            ("clip_len", "frames/clip"),
            ("crops_at_test", "crops"),
        ):
            v = _values(runs, f"{k}.{field}")
            if v:
                sampling.append(f"{v} {what}")
        rows.append(
            {
                "column": c.label,
                "protocol": c.protocol,
                "metric": c.field,
                "dataset / split": f"{c.dataset} / split {c.split}",
                "frozen": _values(runs, f"{k}.frozen"),
                "recipe": _recipe(runs, c),
                "test sampling": ", ".join(sampling),
                "train / test videos": f"{_values(runs, f'{k}.train_videos')} / {_values(runs, f'{k}.test_videos')}",
                "classes": _values(runs, f"{k}.num_classes"),
                "labels used": _values(runs, "cfg.eval.label_fraction"),
                "model selection": _values(runs, f"{k}.selection"),
                "checkpoint": _values(runs, f"{k}.checkpoint"),
            }
        )
    from tabulate import tabulate

    return [
        "## Protocol of every column",
        "",
        tabulate(pd.DataFrame(rows), headers="keys", showindex=False, tablefmt="github", disable_numparse=True),
        "",
        *test_reads_text(table),
        "",
    ]


def recipe_deviations(table: Table) -> dict[str, list[str]]:
    """Row label -> the method settings its runs used that differ from the method's registered defaults
    ('negatives=149 (default auto)'): the recipe a reader must know to compare a row with its paper."""
    import dataclasses

    from benchmark.registry import METHODS

    out: dict[str, list[str]] = {}
    for row_id, row in table.rows.iterrows():
        runs = table.runs_of(row_id)
        try:
            defaults = dataclasses.asdict(METHODS.get(str(row["method"])).Config())
        except Exception:  # noqa: BLE001 (a plugin that is not installed here: nothing to compare with)
            continue
        changed = []
        for field, default in defaults.items():
            col = f"cfg.method.{field}"
            if col not in runs or field == "name":
                continue
            used = _values(runs, col)
            if used and used != fmt_value(default) and used != str(default) and not _same_sequence(runs[col], default):
                changed.append(f"{field}={used} (default {fmt_value(default)})")
        if changed:
            out[_row_label(table.rows, row_id)] = changed
    return out


def _same_sequence(column: pd.Series, default) -> bool:
    """A tuple default (Motion & Appearance's patterns) against runs.csv's JSON list of every run."""
    if not isinstance(default, (tuple, list)):
        return False
    values = [_yaml_value(v) for v in column.dropna().unique()]
    return bool(values) and all(isinstance(v, (list, tuple)) and list(v) == list(default) for v in values)


def recipe_section(table: Table) -> list[str]:
    deviations = recipe_deviations(table)
    lines = ["## Method settings that differ from each method's defaults", ""]
    if not deviations:
        return [*lines, "Every row ran its method's default settings.", ""]
    lines.append(
        "Defaults follow each method's paper or specification (methods/*.py docstrings list every deviation "
        "from the paper); a calibrated CPU recipe changes some of them:"
    )
    lines.append("")
    lines += [f"- {row}: {', '.join(fields)}" for row, fields in deviations.items()]
    return [*lines, ""]


# --------------------------------------------------------------------------- what was read, how budgets were chosen
NO_BUDGET_SELECTION = "budget not selected on held-out data"


def test_reads(coll) -> pd.DataFrame:
    """One line per (run, evaluation entry): run, column key (the final-checkpoint key), checkpoint ('end' or
    'step N'), test_reads. Entries recorded before ``test_reads`` existed count as one read: every protocol
    here predicts the test split once per entry."""
    runs = coll.runs
    parts = []
    for key in coll.eval_keys():
        e = parse_eval_key(key)
        present = runs.get(f"{key}.protocol", pd.Series(None, index=runs.index)).notna()
        if f"{key}.top1" in runs:
            present |= runs[f"{key}.top1"].notna()
        reads = runs.get(f"{key}.test_reads", pd.Series(float("nan"), index=runs.index))
        reads = reads.where(reads.notna(), present.astype(float))
        step = "end" if e.step is None else f"step {e.step}"
        parts.append(
            pd.DataFrame(
                {
                    "run": runs["run"],
                    "column": f"{e.protocol}/{e.dataset}/split{e.split}",
                    "checkpoint": step,
                    "test_reads": reads,
                }
            )[present]
        )
    if not parts:
        return pd.DataFrame(columns=["run", "column", "checkpoint", "test_reads"])
    return pd.concat(parts, ignore_index=True)


def _checkpoints(labels) -> str:
    def order(x: str) -> tuple:
        return (1, 0) if x == "end" else (0, int("".join(ch for ch in x if ch.isdigit()) or 0))

    return ", ".join(sorted(set(labels), key=order))


def test_reads_text(table: Table) -> list[str]:
    """What the runs' metrics.json say about reading the test split (counted, never assumed)."""
    reads = test_reads(table.collection)
    if reads.empty:
        return ["No evaluation entry was found, so no test-split read is counted."]
    per = reads.groupby(["column", "run"]).agg(n=("test_reads", "sum"), at=("checkpoint", _checkpoints)).reset_index()
    selections = sorted(
        {
            str(v)
            for c in table.columns
            for v in table.collection.runs.get(f"{c.key}.selection", pd.Series(dtype=object)).dropna()
        }
    )
    lines = []
    if per["n"].max() <= 1:
        lines.append(
            "Test-split reads (counted from metrics.json): every run read the test split once per column, at "
            "the end of pre-training."
        )
    else:
        lines.append(
            "Test-split reads (counted from metrics.json, final and `@step_N` evaluations): the test split was "
            "read more than once per run:"
        )
        for column, grp in per.groupby("column"):
            counts = grp.groupby(["n", "at"]).size()
            lines.append(
                "- "
                + column
                + ": "
                + "; ".join(
                    f"{int(n)} read{'s' if n != 1 else ''} per run ({at}) in {k} run{'s' if k != 1 else ''}"
                    for (n, at), k in counts.items()
                )
            )
        lines.append(
            "The table shows the end-of-training numbers only; the others appear in the over-training figure. "
            "Picking a checkpoint by those numbers would be selection on the test split."
        )
    if selections:
        lines.append("Model selection, as each entry records it: " + "; ".join(selections) + ".")
    return lines


def budget_section(table: Table) -> list[str]:
    """Per row: its pre-training budget, how that budget was chosen (the sweep's ``budget_selection``), and how
    often each run read the test split."""
    from tabulate import tabulate

    coll = table.collection
    entries = coll.cell_entries()
    reads = test_reads(coll)
    per_run = reads.groupby(["run", "column"])["test_reads"].sum() if not reads.empty else pd.Series(dtype=float)
    recs = []
    for rid in table.rows.index:
        runs = table.runs_of(rid)
        notes = sorted(
            {
                str(e["budget_selection"])
                for r in runs["run"]
                if isinstance(e := entries.get(r), dict) and e.get("budget_selection")
            }
        )
        steps = _values(runs, "pretrain.steps") or _values(runs, "cfg.optim.steps")  # run, else configured
        batch = _values(runs, "cfg.optim.batch_size")
        untrained = steps == "0"
        counts = []
        for c in dict.fromkeys(f"{c.protocol}/{c.dataset}/split{c.split}" for c in table.columns):
            n = sorted({int(per_run[(r, c)]) for r in runs["run"] if (r, c) in per_run.index})
            if n:
                counts.append(f"{c.split('/')[0]} {'-'.join(map(str, (n[0], n[-1]) if len(n) > 1 else n))}")
        recs.append(
            {
                "row": _row_label(table.rows, rid),
                "pre-training budget": "none (no pre-training step)"
                if untrained
                else f"{steps} steps x batch {batch}"
                if steps
                else "",
                "how the budget was chosen": " / ".join(notes) or ("—" if untrained else NO_BUDGET_SELECTION),
                "test-split reads per run": ", ".join(counts),
            }
        )
    return [
        "## Budgets and test-split reads",
        "",
        tabulate(pd.DataFrame(recs), headers="keys", showindex=False, tablefmt="github", disable_numparse=True),
        "",
        "The budget note is the sweep's `budget_selection` for the row (sweep.json); a row without one is labelled "
        f'"{NO_BUDGET_SELECTION}". Test-split reads count the row\'s evaluation entries per run (final and '
        "`@step_N`) from metrics.json.",
        "",
    ]


def _plugin_lines(runs: pd.DataFrame) -> list[str]:
    """One line per plugin (method or sampler from another distribution): its version and, for an editable
    install, the commit it ran at."""
    lines = []
    for part in ("method", "sampler"):
        col = f"env.code.{part}.distribution"
        if col not in runs:
            continue
        picked = runs[runs[col].notna() & (runs[col] != "vssl-bench")]
        keys = [f"env.code.{part}.{k}" for k in ("name", "distribution", "version", "git_commit", "git_dirty")]
        keys = [k for k in keys if k in picked]
        for values, group in picked.groupby(keys, dropna=False):
            info = dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True))
            text = (
                f"{info.get(f'env.code.{part}.name')} from {info.get(col)} {info.get(f'env.code.{part}.version', '')}"
            )
            commit = info.get(f"env.code.{part}.git_commit")
            if isinstance(commit, str) and commit:
                dirty = info.get(f"env.code.{part}.git_dirty") in (True, "True")
                text += f" (editable, commit `{commit[:12]}`{', with uncommitted changes' if dirty else ''})"
            lines.append(f"- plugin {part}: {text.strip()}, {len(group)} runs")
    return lines


def provenance_section(table: Table) -> list[str]:
    runs = table.collection.runs
    lines = ["## Provenance", ""]
    commits = runs.groupby(runs["env.git_commit"].fillna("unknown"))["env.git_dirty"].agg(
        lambda s: sorted({str(x) for x in s})
    )
    counts = runs["env.git_commit"].fillna("unknown").value_counts()
    for commit, dirty in commits.items():
        flag = " (with uncommitted changes)" if "True" in dirty else ""
        lines.append(f"- code: commit `{commit}`{flag}, {counts[commit]} runs")
    lines += _plugin_lines(runs)
    pkgs = sorted(c for c in runs.columns if c.startswith("env.packages."))
    if pkgs:
        lines.append("- packages: " + ", ".join(f"{c[len('env.packages.') :]} {_values(runs, c)}" for c in pkgs))
    hw = [
        ("host", "env.host"),
        ("platform", "env.platform"),
        ("python", "env.python"),
        ("CPUs", "env.cpu_count"),
        ("CPU", "env.cpu_model"),
        ("CPU flags", "env.cpu_flags"),
        ("device", "env.device"),
        ("autocast", "env.autocast"),
    ]
    lines.append("- hardware: " + "; ".join(f"{k} {_values(runs, c)}" for k, c in hw if _values(runs, c)))
    slurm = runs["env.slurm_job_id"].dropna() if "env.slurm_job_id" in runs else []
    if len(slurm):
        lines.append(f"- SLURM jobs: {len(set(slurm))}")
    start, end = (
        runs.get("env.start_time", pd.Series(dtype=str)).dropna(),
        runs.get("env.end_time", pd.Series(dtype=str)).dropna(),
    )
    if len(start) and len(end):
        lines.append(f"- runs started {min(start)}, last ended {max(end)}")
    lines += ["", wall_table(table), ""]
    return lines


def wall_table(table: Table) -> str:
    from tabulate import tabulate

    runs = table.collection.runs
    eval_wall = [c for c in runs.columns if c.endswith(".wall_s") and c != "pretrain.wall_s"]
    runs = runs.assign(
        _pre=runs.get("pretrain.wall_s", pd.Series(0.0, index=runs.index)).fillna(0.0),
        _eval=runs[eval_wall].fillna(0.0).sum(axis=1) if eval_wall else 0.0,
    )
    g = runs.groupby("row.id")
    frame = pd.DataFrame(
        {
            "row": [_row_label(table.rows, rid) for rid in table.rows.index],
            "runs": [int(g.size()[rid]) for rid in table.rows.index],
            "pre-training steps": [_values(table.runs_of(rid), "pretrain.steps") for rid in table.rows.index],
            "pre-training s / run": [f"{g['_pre'].mean()[rid]:.0f}" for rid in table.rows.index],
            "evaluation s / run": [f"{g['_eval'].mean()[rid]:.0f}" for rid in table.rows.index],
            "total s (all runs)": [f"{g['_pre'].sum()[rid] + g['_eval'].sum()[rid]:.0f}" for rid in table.rows.index],
        }
    )
    total = runs["_pre"].sum() + (runs["_eval"].sum() if eval_wall else 0.0)
    return (
        tabulate(frame, headers="keys", showindex=False, tablefmt="github", disable_numparse=True)
        + f"\n\nWall time of all runs together: {total / 60:.1f} min (from metrics.json `wall_s`)."
    )


def config_section(table: Table) -> list[str]:
    """The config every run shares once, then per row only what differs (seeds excluded)."""
    runs = table.collection.runs
    cfg_cols = [c for c in runs.columns if c.startswith("cfg.")]
    as_text = (
        runs[cfg_cols]
        .astype(object)
        .where(runs[cfg_cols].notna(), None)
        .map(lambda v: None if v is None else fmt_value(v))
    )
    shared = [c for c in cfg_cols if as_text[c].nunique(dropna=False) == 1 and c != "cfg.run.seed"]
    common = {c[4:]: _yaml_value(runs[c].iloc[0]) for c in shared if pd.notna(runs[c].iloc[0])}
    lines = [
        "## Configuration of every row",
        "",
        "Shared by every run (resolved config, dotted keys):",
        "",
        "<details><summary>shared config</summary>",
        "",
        "```yaml",
        yaml.safe_dump(common, sort_keys=True, default_flow_style=None).rstrip(),
        "```",
        "",
        "</details>",
        "",
        "What each row sets differently (seeds are listed, not part of the row):",
        "",
    ]
    for rid in table.rows.index:
        sub = as_text[runs["row.id"] == rid]
        diff = {
            c[4:]: " / ".join(sorted(set(sub[c].dropna()))) for c in cfg_cols if c not in shared and c != "cfg.run.seed"
        }
        diff = {k: v for k, v in diff.items() if v}
        seeds = table.rows.at[rid, "seeds"]
        lines.append(
            f"- **{_row_label(table.rows, rid)}**, seeds {seeds}: "
            + (", ".join(f"`{k}={v}`" for k, v in sorted(diff.items())) or "nothing beyond the shared config")
        )
    return lines + [""]


def _yaml_value(v):
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    if hasattr(v, "item"):
        return v.item()
    return v


def parse_axes(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(a.strip() for a in text.split(",") if a.strip())
