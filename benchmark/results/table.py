"""Table 1 from a collection of runs: rows method x backbone x pre-training set,
columns downstream dataset x protocol x metric, cells mean +- std over seeds.

Which numbers become columns is the declarative list :data:`METRICS`
(protocol -> metric fields). Other config fields that vary inside a
(method, backbone, pre-training) group, such as a swept temperature, split the
row and are shown in its "variant" cell, so different configurations are never
pooled as if they were seeds.

Renderers: terminal (tabulate), Markdown, LaTeX (booktabs), CSV (numeric).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.config import BOOKKEEPING_FIELDS
from benchmark.errors import UserError, nearest
from benchmark.results import TABLE_FORMATS as FORMATS
from benchmark.results import published
from benchmark.results.collect import Collection, parse_eval_key
from benchmark.results.stats import (
    BOOTSTRAP_CAVEAT,
    LEVEL,
    PairedResult,
    Summary,
    align_per_video,
    paired_difference,
    summarize,
)
from benchmark.sweeps import SMOKE_RUN


@dataclass(frozen=True)
class MetricSpec:
    protocol: str
    field: str  # a field of the metrics.json entry
    label: str  # column header after the dataset name


# The columns a table shows, in order. Protocols without an entry here show their "top1".
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("linear", "top1", "linear top-1"),
    MetricSpec("knn", "top1", "kNN top-1"),
    MetricSpec("knn", "r@1", "kNN R@1"),
    MetricSpec("knn", "r@5", "kNN R@5"),
    MetricSpec("finetune", "top1", "fine-tune top-1"),
)
ROW_KEYS = ("method", "backbone", "dims", "pretrain")
THREE_D = ("r3d_18", "r2plus1d_18", "mc3_18", "s3d", "r2d3d_18", "r2d3d_34")
VIEW_FIELDS = ("frames_at_test", "clips_at_test", "clip_len", "clip_stride", "crops_at_test")  # entry fields
# Parameters that act only under some value of another field (TCE's hard-negative mining, methods/tce.py and
# benchmark/mining.ThresholdSchedule): labels leave them out elsewhere (no "mining_r=5" on a fixed-threshold row).
_MINING = "cfg.method.mining_schedule"
ACTS_ONLY_WHEN: dict[str, tuple[str, tuple[str, ...]]] = {
    "cfg.method.mining_r": (_MINING, ("exponential",)),
    "cfg.method.mining_fixed_threshold": (_MINING, ("fixed",)),
    "cfg.method.mining_t_low": (_MINING, ("exponential", "linear", "step")),
    "cfg.method.mining_t_high": (_MINING, ("exponential", "linear", "step")),
    "cfg.method.mining_step_count": (_MINING, ("step",)),
    "cfg.method.max_hard_fraction": (_MINING, ("fixed", "exponential", "linear", "step")),
}
# (field, value) -> the parameter that makes that setting concrete, shown with it even when the sweep holds it fixed
DEFINED_BY: dict[tuple[str, str], str] = {
    (_MINING, "fixed"): "cfg.method.mining_fixed_threshold",
    (_MINING, "exponential"): "cfg.method.mining_r",
    (_MINING, "step"): "cfg.method.mining_step_count",
}
CONTROLS = ("random_init", "random_init_bn")  # rows without learned features: what a method must beat
METHOD_ORDER = {
    "random_init": 0,
    "random_init_bn": 0.5,
    "supervised": 2,
}  # reference rows first and last, methods between


@dataclass(frozen=True)
class Column:
    key: str  # metrics key, e.g. "linear/synthetic/split1"
    dataset: str
    split: int
    protocol: str
    field: str
    label: str

    @property
    def source(self) -> str:
        return f"{self.key}.{self.field}"


@dataclass
class Table:
    rows: pd.DataFrame  # index: row id; method, name, backbone, dims, params_m, pretrain, variant, seeds, n_runs
    columns: list[Column]
    cells: dict[tuple[str, str], Summary]  # (row id, column.source)
    refs: dict[str, published.Reference | None]
    matches: dict[tuple[str, str], tuple[bool, str]]  # (row id, column.source) -> protocol match vs paper
    collection: Collection
    variant_fields: list[str] = field(default_factory=list)
    pretext: dict[str, str] = field(default_factory=dict)  # row id -> pretext_status()

    def reported(self, row_id: str) -> bool:
        """False for a row none of whose runs learned its pretext task: its numbers are not shown."""
        return self.pretext.get(row_id) != NOT_LEARNED

    def runs_of(self, row_id: str) -> pd.DataFrame:
        runs = self.collection.runs
        return runs[runs["row.id"] == row_id]


# --------------------------------------------------------------------------- building
def _dims(runs: pd.DataFrame) -> pd.Series:
    kinds = [c for c in runs.columns if c.endswith(".backbone_kind") and parse_eval_key(c.rsplit(".", 1)[0])]
    measured = pd.Series(None, index=runs.index, dtype=object)
    for k in kinds:  # the first evaluation that recorded it
        measured = measured.fillna(runs[k])
    name = runs.get("cfg.backbone.name", pd.Series("?", index=runs.index)).astype(str)
    inflated = runs.get("cfg.backbone.inflate", pd.Series(False, index=runs.index)).fillna(False).astype(bool)
    guessed = (name.isin(THREE_D) | inflated).map({True: "3D", False: "2D"})
    return measured.fillna(guessed).astype(str).str.upper()


def add_row_keys(
    runs: pd.DataFrame, axes: set[str] | None = None, split_recipes: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """Adds row.* columns (method, backbone, dims, pretrain, variant, id); returns the variant fields.

    A config field that differs inside a (method, backbone, 2D/3D, pre-training) group splits the row (the
    "variant") when it is one of the sweep's ``axes`` (fields its cells set themselves; None: every field
    counts as one). Any other difference between the runs of one row means they ran different recipes, e.g.
    cells relaunched after a default changed: a UserError naming the fields, unless ``split_recipes``, which
    makes those fields variants too. A field some runs do not record at all (added to the code between
    launches) is not a difference; :func:`partial_fields` lists them.
    """
    runs = runs.copy()
    runs["row.method"] = runs.get("cfg.method.name", pd.Series("?", index=runs.index)).astype(str)
    if "cfg.method.of" in runs:  # imported weights: the row is the paper's method, labelled 'released weights'
        released = runs["row.method"] == "released"
        runs.loc[released, "row.method"] = published.RELEASED + runs.loc[released, "cfg.method.of"].astype(str)
    backbone = runs.get("cfg.backbone.name", pd.Series("?", index=runs.index)).astype(str)
    inflated = runs.get("cfg.backbone.inflate", pd.Series(False, index=runs.index)).fillna(False).astype(bool)
    runs["row.backbone"] = backbone.where(~inflated, backbone + published.INFLATED)
    runs["row.dims"] = _dims(runs)
    trained = runs.get("pretrain.trained", pd.Series(True, index=runs.index)).fillna(True).astype(bool)
    untrained = ~trained | (runs["row.method"] == "random_init")
    pretrain = runs.get("cfg.data.dataset", pd.Series("?", index=runs.index)).astype(str)
    runs["row.pretrain"] = pretrain.where(~untrained, "none")
    base = [f"row.{k}" for k in ROW_KEYS]
    overridden = override_fields(runs)  # evaluations made with other settings than their run's config
    for c in overridden:
        runs[c] = runs[c].fillna(NO_OVERRIDES)
    candidates = recipe_fields(runs) + overridden
    texts = _texts(runs, candidates)
    varying: list[str] = []
    if candidates:
        nunique = texts.groupby([runs[b] for b in base]).nunique()
        varying = [c for c in candidates if (nunique[c] > 1).any()]
    variant = [c for c in varying if axes is None or c in axes]
    runs = _with_variant(runs, variant, base)
    conflicts = recipe_conflicts(runs, texts, [c for c in candidates if c not in variant])
    if conflicts and not split_recipes:
        raise UserError(_conflict_message(runs, conflicts))
    if conflicts:
        fields = {f for per_row in conflicts.values() for f in per_row}
        variant = [c for c in candidates if c in variant or c in fields]
        runs = _with_variant(runs, variant, base)
    return runs, variant


OVERRIDES = "config_overrides"  # the evaluation entry field (benchmark.evaluation.config_overrides)
NO_OVERRIDES = "none"
_SUFFIX = f".{OVERRIDES}"  # '<evaluation key>.config_overrides' is the frame's column


def override_fields(runs: pd.DataFrame) -> list[str]:
    """'<evaluation key>.config_overrides' columns: the settings `vssl evaluate RUN eval.x=...` changed from the
    run's config.yaml for that entry. An entry made so is a different recipe from its row's other entries."""
    return [
        c
        for c in runs.columns
        if c.endswith(_SUFFIX) and parse_eval_key(c.removesuffix(_SUFFIX)) and runs[c].notna().any()
    ]


def field_name(col: str) -> str:
    """A recipe field as messages name it: 'method.lr' for 'cfg.method.lr'; 'linear/ucf101/split1 evaluated
    with' for an entry's config_overrides."""
    if col.endswith(_SUFFIX):
        return f"{col.removesuffix(_SUFFIX)} evaluated with"
    return col[4:] if col.startswith("cfg.") else col


def recipe_fields(runs: pd.DataFrame) -> list[str]:
    """Config fields that define a row's recipe (everything but the row keys and bookkeeping)."""
    skip = {
        "cfg.method.name",
        "cfg.backbone.name",
        "cfg.backbone.inflate",
        "cfg.data.dataset",
        *(f"cfg.{b}" for b in BOOKKEEPING_FIELDS),
    }
    return [c for c in runs.columns if c.startswith("cfg.") and c not in skip]


def _texts(runs: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Config values as text for comparing (5 == 5.0), missing values kept missing."""
    vals = runs[cols].astype(object)
    return vals.map(lambda v: fmt_value(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else None)


def setting_label(
    values: dict, fields: list[str], short: dict[str, str] | None = None, present: Iterable[str] = ()
) -> str:
    """'name=value, ...' of ``fields`` for one run (``values``: cfg field -> value), showing only parameters that
    act (:data:`ACTS_ONLY_WHEN`) plus the one that defines the setting (:data:`DEFINED_BY`) when that field is
    among ``present`` (the frame's columns) even if it is not varying, right after the field it belongs to."""
    short = short or {c: _short_name(c, fields) for c in fields}
    parts = []
    for c in fields:
        v = values.get(c)
        if v is None or (isinstance(v, float) and math.isnan(v)) or not _acts(c, values):
            continue
        parts.append(f"{short.get(c) or _short_name(c, fields)}={fmt_value(v)}")
        extra = DEFINED_BY.get((c, str(v)))
        if extra and extra not in fields and extra in present and values.get(extra) is not None:
            parts.append(f"{_short_name(extra, [*fields, extra])}={fmt_value(values[extra])}")
    return ", ".join(parts)


def _acts(field: str, values: dict) -> bool:
    rule = ACTS_ONLY_WHEN.get(field)
    if rule is None:
        return True
    governing, when = rule
    v = values.get(governing)
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in when


def _with_variant(runs: pd.DataFrame, variant: list[str], base: list[str]) -> pd.DataFrame:
    """row.variant: the label (acting parameters only); row.id: the row keys and every variant field's value, so
    runs that differ in a parameter that does not act are still never pooled."""
    short = {c: _short_name(c, variant) for c in variant}
    if variant:
        texts = runs[variant].astype(object).where(runs[variant].notna(), None)
        full = [
            ", ".join(f"{short[c]}={fmt_value(v)}" for c, v in zip(variant, vals, strict=True) if v is not None)
            for vals in texts.itertuples(index=False, name=None)
        ]
        # the defining parameters (shown even when constant) and the fields that decide whether a parameter acts
        extra = sorted(
            {
                f
                for f in (*DEFINED_BY.values(), *(g for g, _ in ACTS_ONLY_WHEN.values()))
                if f in runs.columns and f not in variant
            }
        )
        shown = runs[variant + extra].astype(object).where(runs[variant + extra].notna(), None)
        labels = [
            setting_label(dict(zip(variant + extra, vals, strict=True)), variant, short, extra)
            for vals in shown.itertuples(index=False, name=None)
        ]
        runs["row.variant"] = labels
        runs["row.full_variant"] = full
        # two rows with the same label (they differ only in a parameter that does not act): show everything
        key = runs[base + ["row.variant"]].astype(str).agg(" | ".join, axis=1)
        ambiguous = key.map(runs.groupby(key)["row.full_variant"].nunique()) > 1
        runs.loc[ambiguous, "row.variant"] = runs.loc[ambiguous, "row.full_variant"]
    else:
        runs["row.variant"] = ""
        runs["row.full_variant"] = ""
    runs["row.id"] = runs[base + ["row.full_variant"]].astype(str).agg(" | ".join, axis=1)
    return runs


def recipe_conflicts(runs: pd.DataFrame, texts: pd.DataFrame, fields: list[str]) -> dict[str, dict[str, dict]]:
    """{row id: {field: {value: [runs]}}} for every row whose runs recorded different values of a field."""
    if not fields:
        return {}
    nunique = texts[fields].groupby(runs["row.id"]).nunique()
    out: dict[str, dict[str, dict]] = {}
    for rid, counts in nunique.iterrows():
        for f in counts.index[counts > 1]:
            sub = runs["row.id"] == rid
            values: dict[str, list] = {}
            for run, v in zip(runs.loc[sub, "run"], texts.loc[sub, f], strict=True):
                if v is not None:
                    values.setdefault(v, []).append(run)
            out.setdefault(rid, {})[f] = values
    return out


def _conflict_message(runs: pd.DataFrame, conflicts: dict[str, dict[str, dict]]) -> str:
    parts = []
    for rid, fields in list(conflicts.items())[:3]:
        row = runs[runs["row.id"] == rid].iloc[0]
        extra = ", ".join(
            x for x in (row["row.backbone"], row["row.pretrain"], row["row.variant"]) if x and x != "none"
        )
        diffs = "; ".join(
            f"{field_name(f)} "
            + " vs ".join(
                f"{v} ({len(rs)} run{'s' if len(rs) > 1 else ''}: {', '.join(rs[:3])})" for v, rs in values.items()
            )
            for f, values in fields.items()
        )
        parts.append(f"{published.display_name(row['row.method'])} ({extra}): {diffs}")
    more = f" (and {len(conflicts) - 3} more rows)" if len(conflicts) > 3 else ""
    fields = {f for per_row in conflicts.values() for f in per_row}
    evaluated = any(f.endswith(_SUFFIX) for f in fields)
    why = "config fields no sweep axis sets, e.g. a default changed between launches"
    if evaluated:
        why += ", or an evaluation made with settings other than its run's config"
    fix = "rerun the stale cells" + (", re-evaluate those runs without overrides" if evaluated else "")
    return (
        f"{len(conflicts)} table row(s) would pool runs with different recipes ({why}): {' | '.join(parts)}{more}; "
        f"{fix}, or pass --split-recipes to show each recipe as its own row"
    )


def partial_fields(runs: pd.DataFrame) -> list[str]:
    """Recipe fields recorded by only some runs of a row (a config field added between launches)."""
    fields = recipe_fields(runs)
    if not fields or "row.id" not in runs:
        return []
    present = runs[fields].notna().groupby(runs["row.id"]).agg(["any", "all"])
    return [f for f in fields if (present[(f, "any")] & ~present[(f, "all")]).any()]


def fmt_value(v) -> str:
    """Config values in labels: 5.0 -> '5' (a NaN elsewhere in the column turns ints into floats)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _short_name(col: str, all_cols: Iterable[str]) -> str:
    """'cfg.method.mining_r' -> 'mining_r' unless another varying field has the same last part; an entry's
    config_overrides -> 'linear overrides' (its protocol's)."""
    if col.endswith(_SUFFIX):
        key = parse_eval_key(col.removesuffix(_SUFFIX))
        same = [c for c in all_cols if c.endswith(_SUFFIX) and c.split("/", 1)[0] == col.split("/", 1)[0]]
        return f"{key.protocol if key and len(same) < 2 else col.removesuffix(_SUFFIX)} overrides"
    leaf = col.rsplit(".", 1)[-1]
    clash = sum(c.rsplit(".", 1)[-1] == leaf for c in all_cols) > 1
    return col[4:] if clash else leaf


def table_columns(runs: pd.DataFrame, metrics: Iterable[MetricSpec] = METRICS) -> list[Column]:
    metrics = list(metrics)
    keys = {c.rsplit(".", 1)[0] for c in runs.columns if not c.startswith(("cfg.", "env.", "row.")) and "." in c}
    parsed = [(k, parse_eval_key(k)) for k in sorted(keys)]
    finals = [(k, e) for k, e in parsed if e is not None and e.step is None]
    splits_per_dataset: dict[str, set] = {}
    for _, e in finals:
        splits_per_dataset.setdefault(e.dataset, set()).add(e.split)
    protocol_rank = {}
    for i, m in enumerate(metrics):
        protocol_rank.setdefault(m.protocol, i)
    cols = []
    for key, e in finals:
        specs = [m for m in metrics if m.protocol == e.protocol] or [
            MetricSpec(e.protocol, "top1", f"{e.protocol} top-1")
        ]
        for spec in specs:
            if f"{key}.{spec.field}" not in runs or runs[f"{key}.{spec.field}"].isna().all():
                continue
            label = f"{e.dataset} {spec.label}"
            if len(splits_per_dataset[e.dataset]) > 1:
                label += f" (split {e.split})"
            cols.append(Column(key, e.dataset, e.split, e.protocol, spec.field, label))
    order = {id(c): i for i, c in enumerate(cols)}
    spec_rank = {(m.protocol, m.field): i for i, m in enumerate(metrics)}
    cols.sort(
        key=lambda c: (
            c.dataset,
            c.split,
            protocol_rank.get(c.protocol, len(metrics)),
            spec_rank.get((c.protocol, c.field), len(metrics)),
            order[id(c)],
        )
    )
    return cols


def build_table(coll: Collection, metrics: Iterable[MetricSpec] = METRICS, split_recipes: bool = False) -> Table:
    """``split_recipes``: runs of one row with different recipes become separate rows instead of an error."""
    runs, varying = add_row_keys(coll.runs, coll.axes(), split_recipes)
    coll.runs = runs
    columns = table_columns(runs, metrics)
    if not columns:
        raise UserError(
            f"{coll.source}: the runs have no evaluation results yet (no '<protocol>/<dataset>/split<N>' "
            f"entries in metrics.json); run the sweep's evaluation stages first"
        )
    groups = runs.groupby("row.id", sort=False)
    first = groups.first()
    rows = pd.DataFrame(
        {
            "method": first["row.method"],
            "name": first["row.method"].map(row_name),
            "role": first["row.method"].map(role),
            "backbone": first["row.backbone"],
            "dims": first["row.dims"],
            "params_m": groups["pretrain.params_millions"].mean() if "pretrain.params_millions" in runs else math.nan,
            "pretrain": first["row.pretrain"],
            "variant": first["row.variant"],
            "seeds": groups["cfg.run.seed"].agg(lambda s: ",".join(str(int(x)) for x in sorted(s.dropna())))
            if "cfg.run.seed" in runs
            else "",
            "n_runs": groups.size(),
        }
    )
    # the paper's grouping: by pre-training set (no pre-training first), reference rows around the methods
    rows["_untrained"] = rows["pretrain"] != "none"
    rows["_order"] = rows["method"].map(lambda m: METHOD_ORDER.get(m, 1))
    rows = rows.sort_values(["_untrained", "pretrain", "_order", "name", "dims", "backbone", "variant"]).drop(
        columns=["_untrained", "_order"]
    )
    values = groups[[c.source for c in columns]].agg(list)
    cells = {(rid, c.source): summarize(values.at[rid, c.source]) for rid in rows.index for c in columns}
    refs = {rid: published.reference_for(r.method, r.backbone, r.dims, r.pretrain) for rid, r in rows.iterrows()}
    matches = {}
    for rid, ref in refs.items():
        if ref is None:
            continue
        sub = runs[runs["row.id"] == rid]
        config_fraction = _first(sub, "cfg.eval.label_fraction")
        for c in columns:
            # the entry's own record first: `vssl evaluate ... eval.label_fraction=0.1` leaves config.yaml's value
            recorded = sub[f"{c.key}.label_fraction"].dropna() if f"{c.key}.label_fraction" in sub else []
            label_fraction = float(min(recorded)) if len(recorded) else config_fraction  # any run on fewer labels
            frozen = _first(sub, f"{c.key}.frozen")
            views = published.views_text(*(_first(sub, f"{c.key}.{f}") for f in VIEW_FIELDS))
            matches[(rid, c.source)] = published.protocol_match(
                ref, c.dataset, c.split, c.protocol, frozen, label_fraction, views
            )
    status = {rid: pretext_status(runs[runs["row.id"] == rid]) for rid in rows.index}
    return Table(rows, columns, cells, refs, matches, coll, varying, status)


def role(method: str) -> str:
    """'control' (no learned features: what a method must beat), 'reference' (supervised) or 'method'."""
    return "control" if method in CONTROLS else "reference" if method == "supervised" else "method"


def row_name(method: str) -> str:
    """The row's name in tables and figures; control rows say so."""
    return published.display_name(method) + (" [control]" if method in CONTROLS else "")


def _first(df: pd.DataFrame, col: str):
    if col not in df:
        return None
    vals = df[col].dropna()
    return vals.iloc[0] if len(vals) else None


# --------------------------------------------------------------------------- cells
def fmt_cell(s: Summary, digits: int = 1) -> str:
    if s.n == 0:
        return "—"
    if s.n == 1:
        return f"{s.mean:.{digits}f} (n=1)"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f} (n={s.n}) [{s.ci_low:.{digits}f}, {s.ci_high:.{digits}f}]"


def paper_marks(table: Table, rid: str) -> str:
    ref = table.refs.get(rid)
    if ref is None:
        return ""
    marks = [m.split(":")[0] for m in ref.mismatches]
    row_level = set(ref.mismatches)

    def protocol_ok(c: Column) -> bool:  # the column matches the paper's protocol, whatever the row-level mismatches
        ok, why = table.matches.get((rid, c.source), (False, "?"))
        return ok or not [part for part in why.split("; ") if part and part not in row_level]

    if not any(protocol_ok(c) for c in table.columns):
        marks.append("protocol")
    return " ".join(f"≠{m}" for m in marks) or "match"


def delta_columns(table: Table) -> list[Column]:
    """Our columns that match the paper's protocol for at least one row (only these get a difference)."""
    return [
        c for c in table.columns if any(table.matches.get((rid, c.source), (False,))[0] for rid in table.rows.index)
    ]


def fmt_delta(table: Table, rid: str, c: Column) -> str:
    ref = table.refs.get(rid)
    ok, _ = table.matches.get((rid, c.source), (False, ""))
    s = table.cells[(rid, c.source)]
    if ref is None or not ok or s.n == 0:
        return ""
    paper = ref.value(c.dataset)
    if not s.has_ci:
        return f"{s.mean - paper:+.1f} (n=1, no CI)"
    return f"{s.mean - paper:+.1f}" + (" (paper inside our 95% CI)" if s.contains(paper) else "")


NOT_LEARNED = "did not learn its pretext task"


def pretext_status(runs: pd.DataFrame) -> str:
    """What a row's runs say about their pretext check (metrics.json pretrain.pretext): 'control', 'learned',
    NOT_LEARNED (no run learned), 'learned in k of n runs', or '' where the runs predate the check."""
    exempt = runs.get("pretrain.pretext.exempt")
    if exempt is not None and exempt.notna().all():
        return "control"
    learned = runs.get("pretrain.pretext.learned")
    if learned is None:
        return ""
    verdicts = [bool(v) for v in learned if isinstance(v, (bool, np.bool_)) or v in (0, 1)]
    if not verdicts:
        return "not measurable"
    if not any(verdicts):
        return NOT_LEARNED
    return "learned" if all(verdicts) else f"learned in {sum(verdicts)} of {len(verdicts)} runs"


def display_frame(table: Table) -> pd.DataFrame:
    """The table as strings, one row per table row, in the paper's column order."""
    r = table.rows
    out = pd.DataFrame(
        {
            "method": r["name"],
            "backbone": r["backbone"],
            "2D/3D": r["dims"],
            "params (M)": r["params_m"].map(lambda x: "" if pd.isna(x) else f"{x:.1f}"),
            "pre-training": r["pretrain"],
        }
    )
    if table.variant_fields:
        out["variant"] = r["variant"]
    if any(table.pretext.values()):
        out["pretext"] = [table.pretext.get(rid, "") for rid in r.index]
    for c in table.columns:
        out[c.label] = [
            fmt_cell(table.cells[(rid, c.source)]) if table.reported(rid) else NOT_LEARNED for rid in r.index
        ]
    if any(ref is not None for ref in table.refs.values()):
        out["paper UCF101"] = [_num(table.refs[rid].ucf101_top1 if table.refs[rid] else math.nan) for rid in r.index]
        out["paper HMDB51"] = [_num(table.refs[rid].hmdb51_top1 if table.refs[rid] else math.nan) for rid in r.index]
        out["vs paper"] = [paper_marks(table, rid) for rid in r.index]
        for c in delta_columns(table):
            out[f"Δ paper: {c.label}"] = [fmt_delta(table, rid, c) for rid in r.index]
    return out.reset_index(drop=True)


def _num(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.1f}"


def paper_notes(table: Table) -> list[tuple[str, list[str]]]:
    """[(why our rows differ from their paper row, [our rows])]: one entry per distinct explanation, in row order."""
    grouped: dict[str, list[str]] = {}
    for rid, ref in table.refs.items():
        if ref is None:
            continue
        row = table.rows.loc[rid]
        reasons = list(ref.mismatches)
        for c in table.columns:
            ok, why = table.matches[(rid, c.source)]
            for part in [] if ok else why.split("; "):
                if part and part not in reasons:
                    reasons.append(part)
        text = f"vs paper row '{ref.label}': " + ("; ".join(reasons) or MATCH_NOTE)
        who = f"{row['name']} ({row['backbone']}, {row['pretrain']})"
        names = grouped.setdefault(text, [])
        if who not in names:  # variants of one row share the same comparison
            names.append(who)
    return list(grouped.items())


# What "match" compares, and what it does not: the paper's own fine-tuning recipes are mostly not published (TCE's
# picked its epoch on the test set), so every row runs this harness's one protocol instead.
MATCH_NOTE = (
    "the compared fields match (backbone, pre-training set, split, protocol, test views); the fine-tuning recipe "
    "is this harness's one protocol (its epochs, schedule, batch and model selection on held-out train videos), "
    "not the paper's; each method's defaults and their deviations from the paper are in methods/*.py, and settings "
    "that differ from those defaults are listed in the report"
)


def paper_note_of(table: Table, rid: str) -> int | None:
    """Index into paper_notes(table) of the note explaining row ``rid``'s comparison (None: no paper row)."""
    row = table.rows.loc[rid]
    who = f"{row['name']} ({row['backbone']}, {row['pretrain']})"
    for i, (_, names) in enumerate(paper_notes(table)):
        if who in names:
            return i
    return None


PAPER_RULE = (
    "A difference to the paper is shown only where backbone (exact architecture), pre-training set, "
    "downstream set and split, protocol (full fine-tuning, all labels) and test views all match; a field "
    "the paper does not state counts as a mismatch. ≠ names what differs; mismatched numbers are never "
    "compared."
)


def _coverage_differs(runs: pd.DataFrame) -> list[str]:
    """Per evaluation column whose rows read each test video differently (2D frames vs 3D clips): the readings."""
    out = []
    for col in runs.columns:
        if not col.endswith(".coverage") or parse_eval_key(col.rsplit(".", 1)[0]) is None:
            continue
        key = col.rsplit(".", 1)[0]
        kinds = runs.groupby(runs.get(f"{key}.backbone_kind", pd.Series("?", index=runs.index)))[col]
        readings = {kind: sorted(set(v.dropna().astype(str))) for kind, v in kinds}
        seen = pd.to_numeric(runs.get(f"{key}.frames_seen", pd.Series(dtype=float)), errors="coerce").dropna()
        spans = {kind: any("spread" in r for r in rs) for kind, rs in readings.items() if rs}
        if len(readings) > 1 and (seen.nunique() > 1 or len(set(spans.values())) > 1):
            out.append(f"{key}: " + ", ".join(f"{kind} {' / '.join(rs)}" for kind, rs in readings.items() if rs))
    return out


def _missing_videos(runs: pd.DataFrame) -> dict[str, int]:
    """Evaluation key -> the largest count of listed-but-missing videos any run of the table met."""
    out = {}
    for col in runs.columns:
        if col.endswith(".missing_videos") and parse_eval_key(col.rsplit(".", 1)[0]) is not None:
            n = pd.to_numeric(runs[col], errors="coerce").max()
            if pd.notna(n) and n > 0:
                out[col.rsplit(".", 1)[0]] = int(n)
    return out


def _overridden(runs: pd.DataFrame) -> list[str]:
    """'<key>: <overrides> (n runs)' for every evaluation some runs made with settings other than their config's."""
    out = []
    for col in override_fields(runs):
        values = runs[col][runs[col] != NO_OVERRIDES].dropna()
        for text, n in values.value_counts().items():
            out.append(f"{col.removesuffix(_SUFFIX)}: {text} ({n} run{'s' if n > 1 else ''})")
    return out


def notes(table: Table, paper: bool = True) -> list[str]:
    """The lines under the table; ``paper=False`` leaves out the per-row paper comparisons (LaTeX footnotes them)."""
    lines = [
        f"Cells: mean ± std over seeds (n runs) [{LEVEL:.0%} t-interval of the mean]; accuracies and recalls in %."
    ]
    controls = [published.display_name(m) for m in CONTROLS if m in set(table.rows["method"])]
    if controls:
        lines.append(
            f"[control]: rows without learned features ({', '.join(controls)}; random init + BN stats = the "
            "random initialisation with BatchNorm statistics of the pre-training data, no weight changed). "
            "Every row is paired with each control of its backbone and 2D/3D kind."
        )
    if any(ref is not None for ref in table.refs.values()):
        lines.append(f"Paper: {published.SOURCE}. {PAPER_RULE}")
        if paper:
            lines += [f"{', '.join(names)} {text}" for text, names in paper_notes(table)]
    partial = partial_fields(table.collection.runs)
    if partial:
        lines.append(
            "Recorded by only some runs of a row (a config field added between launches; the others are "
            "assumed to have run its default): " + ", ".join(f[4:] for f in partial)
        )
    overridden = _overridden(table.collection.runs)
    if overridden:
        lines.append(
            "Evaluated with settings other than the run's config (`vssl evaluate RUN key=value`): "
            + "; ".join(overridden)
        )
    coverage = _coverage_differs(table.collection.runs)
    if coverage:
        lines.append(
            "2D and 3D rows did not read the same temporal coverage of each test video: " + "; ".join(coverage)
        )
    if NOT_LEARNED in table.pretext.values() or any(v.startswith("learned in") for v in table.pretext.values()):
        lines.append(
            f"'{NOT_LEARNED}': no run of the row passed the held-out pretext check (its accuracy stayed within 3 "
            "binomial standard errors of chance or of its step-0 value; metrics.json pretrain.pretext), so its "
            "numbers are not reported here (runs.csv keeps them). 'learned in k of n runs': the row's numbers "
            "pool every run."
        )
    missing = _missing_videos(table.collection.runs)
    if missing:
        lines.append(
            "Videos listed in the split files but missing on disk were left out of these numbers: "
            + "; ".join(f"{key}: {n}" for key, n in missing.items())
            + " (per run; the list is in each run's metrics.json, 'missing')"
        )
    skipped = table.collection.skipped
    if skipped:
        lines.append(
            f"{len(skipped)} run(s) skipped (incomplete or corrupt; --include-incomplete shows incomplete ones): "
            + ", ".join(n for n, _ in skipped[:10])
            + (" ..." if len(skipped) > 10 else "")
        )
    return lines


# --------------------------------------------------------------------------- rendering
def render(table: Table, fmt: str = "terminal", paired: list | None = None) -> str:
    """The table in ``fmt``; ``paired`` (terminal and md): PairedRows, shown after the table, one part per baseline."""
    if fmt not in FORMATS:
        from benchmark.errors import nearest

        raise UserError(f"unknown format '{fmt}'{nearest(fmt, FORMATS)}; choose from {', '.join(FORMATS)}")
    if fmt == "csv":
        return numeric_frame(table).to_csv(index=False)
    frame = display_frame(table)
    if fmt == "latex":
        return render_latex_table(table, frame)
    from tabulate import tabulate

    body = tabulate(
        frame, headers="keys", showindex=False, tablefmt="github" if fmt == "md" else "simple", disable_numparse=True
    )
    text = [body, ""]
    description = str(table.collection.manifest.get("description") or "")
    if fmt == "terminal" and description.startswith(SMOKE_RUN):  # `vssl sweep --smoke --table`: say so first
        text = [description, "", *text]
    if fmt == "md":
        text += [f"- {n}" for n in notes(table)]
    else:
        text += notes(table)
    if paired:
        text += ["", render_paired(paired, fmt)]
    return "\n".join(text) + "\n"


def numeric_frame(table: Table) -> pd.DataFrame:
    """CSV form: one row per table row, numbers unformatted (mean, std, n, CI per column)."""
    r = table.rows
    out = pd.DataFrame(
        {
            "method": r["method"],
            "role": r["role"],
            "backbone": r["backbone"],
            "dims": r["dims"],
            "params_millions": r["params_m"],
            "pretrain": r["pretrain"],
            "variant": r["variant"],
            "seeds": r["seeds"],
        }
    )
    out["pretext"] = [table.pretext.get(rid, "") for rid in r.index]
    for c in table.columns:  # a row that did not learn its pretext shows no numbers (runs.csv keeps them)
        cells = [table.cells[(rid, c.source)] if table.reported(rid) else Summary(math.nan, math.nan, 0, math.nan,
                 math.nan) for rid in r.index]  # fmt: skip
        out[f"{c.label} mean"] = [s.mean for s in cells]
        out[f"{c.label} std"] = [s.std for s in cells]
        out[f"{c.label} n"] = [s.n for s in cells]
        out[f"{c.label} ci95_low"] = [s.ci_low for s in cells]
        out[f"{c.label} ci95_high"] = [s.ci_high for s in cells]
    out["paper_row"] = [table.refs[rid].label if table.refs[rid] else "" for rid in r.index]
    out["paper_ucf101_top1"] = [table.refs[rid].ucf101_top1 if table.refs[rid] else math.nan for rid in r.index]
    out["paper_hmdb51_top1"] = [table.refs[rid].hmdb51_top1 if table.refs[rid] else math.nan for rid in r.index]
    out["vs_paper"] = [paper_marks(table, rid) for rid in r.index]
    for c in delta_columns(table):
        out[f"{c.label} minus paper"] = [
            table.cells[(rid, c.source)].mean - table.refs[rid].value(c.dataset)
            if table.refs[rid] and table.matches[(rid, c.source)][0]
            else math.nan
            for rid in r.index
        ]
    return out.reset_index(drop=True)


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {"±": r"$\pm$", "≠": r"$\neq$", "Δ": r"$\Delta$", "—": "--", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))
    for sym, tex in _LATEX_SYMBOLS.items():
        out = out.replace(sym, tex)
    return out


def note_mark(i: int) -> str:
    """Footnote markers a, b, ..., z, aa, ab, ..."""
    return chr(ord("a") + i) if i < 26 else note_mark(i // 26 - 1) + chr(ord("a") + i % 26)


def render_latex_table(table: Table, frame: pd.DataFrame) -> str:
    """Table 1 in LaTeX: each row's paper comparison is a footnote marker in its "vs paper" cell, explained in
    the notes under the tabular."""
    marks, foot = {}, []
    if "vs paper" in frame.columns:
        explained = paper_notes(table)
        foot = [(note_mark(i), f"{', '.join(names)} {text}") for i, (text, names) in enumerate(explained)]
        for pos, rid in enumerate(table.rows.index):
            i = paper_note_of(table, rid)
            if i is not None:
                marks[(pos, "vs paper")] = note_mark(i)
    return render_latex(frame, notes(table, paper=False), marks, foot)


def render_latex(
    frame: pd.DataFrame, note_lines: list[str], marks: dict | None = None, footnotes: list[tuple[str, str]] = ()
) -> str:
    """A booktabs tabular, ready to paste (needs \\usepackage{booktabs}), then its notes as a paragraph of
    plain LaTeX (footnote markers ``marks[(row position, column)]`` in the cells, explained first)."""
    marks = marks or {}
    spec = "l" * len(frame.columns)
    buf = io.StringIO()
    buf.write("% Generated by `vssl table --format latex`; needs \\usepackage{booktabs}\n")
    buf.write(f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n")
    buf.write(" & ".join(latex_escape(c) for c in frame.columns) + " \\\\\n\\midrule\n")
    for pos, row in enumerate(frame.itertuples(index=False, name=None)):
        cells = []
        for col, v in zip(frame.columns, row, strict=True):
            mark = marks.get((pos, col))
            cells.append(latex_escape(v) + (f"\\textsuperscript{{{mark}}}" if mark else ""))
        buf.write(" & ".join(cells) + " \\\\\n")
    buf.write("\\bottomrule\n\\end{tabular}\n")
    lines = [f"\\textsuperscript{{{m}}}~{latex_escape(text)}" for m, text in footnotes]
    lines += [latex_escape(line) for line in note_lines]
    if lines:
        buf.write("\\par\\smallskip\n\\begin{minipage}{\\linewidth}\\footnotesize\n")
        buf.write("".join(f"{line}\\par\n" for line in lines))
        buf.write("\\end{minipage}\n")
    return buf.getvalue()


# --------------------------------------------------------------------------- paired differences
@dataclass(frozen=True)
class PairedRow:
    row_id: str
    label: str  # e.g. "TCE (resnet10t)"
    column: Column
    baseline_id: str | None
    result: PairedResult | None
    reason: str  # why no result, when result is None
    baseline: str = "random_init"  # the baseline (control) method

    @property
    def verdict(self) -> str:
        if self.result is None:
            return self.reason if self.reason == NOT_LEARNED else f"not tested: {self.reason}"
        if not self.result.has_claim_basis:
            return (
                "no claim: 1 seed (training randomness unmeasured; the bootstrap covers test videos only)"
                if self.result.n_seeds == 1
                else "no claim: the seed-level interval is undefined"
            )
        if self.result.claim:
            return f"{self.result.claim} than {published.display_name(self.baseline)} (seed-level interval excludes 0)"
        return "no difference claimed (seed-level interval includes 0)"


def _row_label(rows: pd.DataFrame, rid: str) -> str:
    r = rows.loc[rid]
    extra = ", ".join(x for x in (r["backbone"], r["pretrain"] if r["pretrain"] != "none" else "", r["variant"]) if x)
    return f"{r['name']} ({extra})"


def _baseline_for(
    table: Table, rid: str, baseline: str, settings: dict[str, tuple], chosen: set[str]
) -> tuple[str | None, str]:
    """The baseline row to pair ``rid`` with; ``settings``: each row's eval/backbone/variant values as text.

    Same backbone and 2D/3D kind (an inflated backbone is 3D): a 2D row is paired with a 2D control, a 3D row
    with a 3D control, each with the same initialisation per seed."""
    rows = table.rows
    row = rows.loc[rid]
    cands = rows[rows.index.isin(chosen) & (rows["backbone"] == row["backbone"]) & (rows["dims"] == row["dims"])]
    if cands.empty:
        return None, f"no {baseline} row with backbone {row['backbone']} ({row['dims']})"
    if len(cands) == 1:
        return cands.index[0], ""
    # Several candidates (e.g. an optim.lr axis that random init shares): the one agreeing on most settings.
    score = {c: sum(a == b for a, b in zip(settings[c], settings[rid], strict=True)) for c in cands.index}
    top = [c for c, v in score.items() if v == max(score.values())]
    if len(top) == 1:
        return top[0], ""
    return None, f"{len(top)} {baseline} rows fit equally well as the baseline; none is chosen"


def _per_seed(table: Table, members: list[tuple[str, int]], c: Column, top1: dict) -> dict[int, tuple[list, list]]:
    """{seed: (test_video_ids, per_video_correct)} of one row's runs for one column."""
    out = {}
    for run, seed in members:
        pv = table.collection.per_video.get((run, c.key))
        if pv is None:
            continue
        if seed in out:
            raise ValueError(f"two runs with seed {seed}")
        t = top1.get(run)
        if t is not None and pd.notna(t) and abs(100.0 * sum(map(bool, pv[1])) / max(len(pv[1]), 1) - float(t)) > 0.01:
            raise ValueError(f"run {run}: per_video_correct does not reproduce top1")
        out[seed] = pv
    return out


def parse_baseline(spec: str) -> tuple[str, dict[str, str]]:
    """'method' or 'method:field=value[:field=value]' (method config fields) -> (method, {field: value}).

    >>> parse_baseline("tce:mining_schedule=none")
    ('tce', {'mining_schedule': 'none'})
    """
    method, *selectors = spec.strip().split(":")
    fields = {}
    for sel in selectors:
        key, eq, value = sel.partition("=")
        if not eq or not key.strip():
            raise UserError(f"baseline {spec!r}: write method:field=value (e.g. tce:mining_schedule=none)")
        fields[key.strip().removeprefix("method.")] = value.strip()
    return method.strip(), fields


def baseline_rows(table: Table, spec: str) -> list[str]:
    """The rows a baseline spec selects: the method's rows whose runs all have the given method.* values."""
    method, fields = parse_baseline(spec)
    rows = table.rows
    picked = rows.index[rows["method"] == method]
    if not fields:
        return list(picked)
    runs = table.collection.runs
    for key in fields:
        if f"cfg.method.{key}" not in runs:
            raise UserError(f"baseline {spec!r}: no run has method.{key}")
    keep = []
    for rid in picked:
        part = runs[runs["row.id"] == rid]
        if all((part[f"cfg.method.{k}"].astype(str) == v).all() for k, v in fields.items()):
            keep.append(rid)
    return keep


def baselines_of(table: Table, baseline: str = "controls") -> list[str]:
    """'controls' -> every control method with a row in the table; otherwise the comma-separated methods."""
    if baseline.strip() == "controls":
        present = set(table.rows["method"])
        return [m for m in CONTROLS if m in present]
    specs = [b.strip() for b in baseline.split(",") if b.strip()]
    for spec in specs:  # a typo would compare nothing and say so only row by row
        if not baseline_rows(table, spec):
            methods = sorted(set(table.rows["method"]))
            raise UserError(
                f"baseline {spec!r} selects no row of this table{nearest(parse_baseline(spec)[0], methods)} "
                f"(methods here: {', '.join(methods)})"
            )
    return specs


def paired_vs_baseline(
    table: Table, baseline: str = "controls", n_boot: int = 10000, seed: int = 0, protocols: Iterable[str] | None = None
) -> list[PairedRow]:
    """Each row minus each baseline on every top-1 column with per-video results (see stats.paired_difference).

    ``baseline``: 'controls' (default: each control row present, random_init and random_init_bn) or
    comma-separated method names. Rows of a baseline method are not compared with that method."""
    cols = [c for c in table.columns if c.field == "top1" and (protocols is None or c.protocol in set(protocols))]
    runs = table.collection.runs
    keys = [c for c in runs.columns if c.startswith(("cfg.eval.", "cfg.backbone.", "cfg.data.resolution"))]
    keys += [c for c in table.variant_fields if not c.startswith("cfg.method.")]
    first = runs.groupby("row.id")[keys].first().astype(str)
    settings = dict(zip(first.index, first.itertuples(index=False, name=None), strict=True))
    seeds = runs["cfg.run.seed"] if "cfg.run.seed" in runs else pd.Series(0, index=runs.index)
    members: dict[str, list[tuple[str, int]]] = {}
    for run, rid, s in zip(runs["run"], runs["row.id"], seeds, strict=True):
        members.setdefault(rid, []).append((run, int(s)))
    top1 = {c.key: dict(zip(runs["run"], runs[c.source], strict=True)) for c in cols}
    out = []
    for base in baselines_of(table, baseline):
        # the baseline's own rows (a method's, or only the selected variant's) are not compared with it
        chosen = set(baseline_rows(table, base))
        for rid in table.rows.index:
            if rid in chosen:
                continue
            base_id, why = _baseline_for(table, rid, base, settings, chosen)
            label = _row_label(table.rows, rid)
            if not table.reported(rid):  # nothing to compare: the row's numbers are not reported
                base_id, why = None, NOT_LEARNED
            for c in cols:
                if base_id is None:
                    out.append(PairedRow(rid, label, c, None, None, why, base))
                    continue
                try:
                    a = _per_seed(table, members[rid], c, top1[c.key])
                    b = _per_seed(table, members[base_id], c, top1[c.key])
                    if not a or not b:
                        raise ValueError("no per-video results (per_video_correct, test_video_ids) in metrics.json")
                    diff, _, _ = align_per_video(a, b)
                    out.append(
                        PairedRow(rid, label, c, base_id, paired_difference(diff, n_boot, LEVEL, seed), "", base)
                    )
                except ValueError as exc:
                    out.append(PairedRow(rid, label, c, base_id, None, str(exc), base))
    return out


def by_baseline(rows: list[PairedRow]) -> dict[str, list[PairedRow]]:
    """Paired rows grouped by their baseline method, in first-seen order."""
    out: dict[str, list[PairedRow]] = {}
    for p in rows:
        out.setdefault(p.baseline, []).append(p)
    return out


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:+.1f}, {hi:+.1f}]" if math.isfinite(lo) and math.isfinite(hi) else "—"


def paired_frame(rows: list[PairedRow], baseline: str | None = None) -> pd.DataFrame:
    """One line per comparison; ``baseline`` (default: the rows' own) names the difference column."""
    baseline = baseline or (rows[0].baseline if rows else "random_init")
    recs = []
    for p in rows:
        r = p.result
        recs.append(
            {
                "row": p.label,
                "column": p.column.label,
                f"minus {published.display_name(baseline)} (points)": "" if r is None else f"{r.mean:+.1f}",
                "per-seed differences": "" if r is None else " / ".join(f"{d:+.1f}" for d in r.seed_diffs),
                f"{LEVEL:.0%} t-interval (seeds)": "" if r is None else _interval(r.t_low, r.t_high),
                f"{LEVEL:.0%} bootstrap (seeds x videos)": "" if r is None else _interval(r.boot_low, r.boot_high),
                "seeds x videos": "" if r is None else f"{r.n_seeds} x {r.n_videos}",
                "verdict": p.verdict,
            }
        )
    return pd.DataFrame(recs)


PAIRED_HEAD = (
    "Paired difference vs {name}: mean over common seeds of the per-video top-1 difference. A difference is "
    "claimed only when the {level:.0%} seed-level t-interval (per-seed differences as the units, t with "
    "seeds - 1 degrees of freedom) excludes 0; with 1 seed no claim is made. The two-way bootstrap over "
    "seeds and test videos is shown for reference only: " + BOOTSTRAP_CAVEAT + "."
)


def render_paired(rows: list[PairedRow], fmt: str = "terminal", baseline: str | None = None) -> str:
    """The paired tables, one per baseline (``baseline`` restricts them to one)."""
    from tabulate import tabulate

    groups = by_baseline(rows)
    if baseline is not None:
        groups = {baseline: groups.get(baseline, [])}
    if not rows or not any(groups.values()):
        return f"(no rows to compare with {published.display_name(baseline or 'a control')})"
    parts = []
    for base, group in groups.items():
        frame = paired_frame(group, base)
        head = PAIRED_HEAD.format(name=published.display_name(base), level=LEVEL)
        if fmt == "latex":
            parts.append(render_latex(frame, [head]))
            continue
        body = tabulate(
            frame,
            headers="keys",
            showindex=False,
            tablefmt="github" if fmt == "md" else "simple",
            disable_numparse=True,
        )
        parts.append(f"{head}\n\n{body}\n")
    return "\n".join(parts)
