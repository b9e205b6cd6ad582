"""The sweep file: a base config, axes, seeds, stages and resources (docs/sweeps.md).

    name: demo
    base: ../configs/tce.yaml        # a path relative to this file, or an inline mapping
    overrides: {optim.steps: 50}     # applied to every cell
    grid:                            # cartesian product
      method.temperature: [0.07, 0.2]
    zip:                             # each group: lists of equal length that vary together
      - method.name: [tce, arrow_of_time]
        backbone.name: [resnet10t, resnet10t]
    seeds: [0, 1, 2]
    stages: [pretrain, linear, knn]
    resources: {timeout_min: 60, gpus_per_node: 0, cpus_per_task: 2}

A zip row may carry ``budget_selection: <text>`` (how its steps/batch were
chosen, e.g. "steps from 60/100/240 by held-out top-1 on a third of TRAIN");
it is not a config value: it is kept on the cell and in sweep.json, never
hashed, and ``vssl report`` prints it per row.

A cell is one point of grid x zip-groups x seeds. Its id is a hash of the
cell's own explicit overrides (the grid/zip values and the seed), so editing
the base or adding a config field never renames cells; the hash of each
cell's fully resolved config is recorded in its run directory and a relaunch
warns when it drifted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from benchmark.config import (
    ExperimentConfig,
    build_dataclass,
    build_experiment,
    check_stage,
    flatten,
    merge_overrides,
    parse_override,
    plain,
    read_yaml,
)
from benchmark.errors import UserError

BUDGET_KEY = "budget_selection"  # a zip row's free text: how its pre-training budget was chosen


@dataclass
class Resources:
    """Per-cell SLURM resources (ignored by the local runner except timeout_min as a hint)."""

    timeout_min: int = 60
    cpus_per_task: int = 2
    gpus_per_node: int = 0
    tasks_per_node: int = 1  # = GPUs for DDP
    nodes: int = 1
    mem_gb: int = 8
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int = 64
    setup: list[str] = field(default_factory=list)  # shell lines run before each job (module load, conda activate)
    signal_delay_s: int = 120  # SLURM's warning signal this long before the time limit: checkpoint + requeue
    max_requeues: int = 10  # timeouts after which a checkpointable job is no longer requeued
    # a cell on several tasks (DDP) evaluates in a one-task job of its own after pre-training, freeing the other GPUs;
    # false: rank 0 evaluates inside the pre-training job while the other ranks wait (benchmark.launch.slurm)
    split_evaluation: bool = True
    gpu_hours_estimate: float | None = None  # label only; "estimate" unless measured on a GPU


@dataclass
class Cell:
    id: str
    overrides: dict[str, Any]  # the cell's own explicit values (what the id hashes)
    tree: dict  # base + sweep overrides + cell overrides: the run's explicit config
    config: ExperimentConfig
    resources: Resources | None = None  # the sweep's, with this cell's own resources.* axis values
    budget_selection: str | None = None  # free text from its zip row: how its steps/batch were chosen (not hashed)

    @property
    def label(self) -> str:
        parts = [f"{_label_key(k)}={_short(v)}" for k, v in self.overrides.items() if k not in ("run.seed",)]
        parts.append(f"seed={self.overrides.get('run.seed', self.config.run.seed)}")
        return " ".join(parts)


# How a --smoke sweep's description opens (benchmark.launch.local.smoke_sweep); the terminal table looks for it
SMOKE_RUN = "SMOKE RUN"


@dataclass
class Sweep:
    name: str
    path: Path | None
    out_dir: Path
    cells: list[Cell]
    resources: Resources
    stages: list[str]
    description: str = ""


def _label_key(key: str) -> str:
    """'backbone.name' -> 'backbone', 'optim.lr' -> 'lr': short but unambiguous labels."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def _short(value: Any) -> str:
    """A cell value for its label; a nested mapping shows every field, so two rows of one method differ:
    ``{name: cmc, view2: frame}`` -> 'cmc(view2=frame)'."""
    if isinstance(value, Mapping):
        if "name" not in value:
            return json.dumps(value, sort_keys=True, default=str)
        rest = ",".join(f"{k}={_short(v)}" for k, v in value.items() if k != "name")
        return f"{value['name']}({rest})" if rest else str(value["name"])
    return str(value)


def cell_id(overrides: Mapping[str, Any]) -> str:
    blob = json.dumps(overrides, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


@dataclass
class SweepFile:
    """A sweep file's top level, loaded and checked by the same typed-config machinery as a run's config
    (unknown keys and wrong types are one-line errors naming the key and the nearest valid one)."""

    name: str | None = None
    description: str = ""
    base: str | dict = field(default_factory=dict)  # a config mapping, or a path relative to the sweep file
    overrides: dict = field(default_factory=dict)  # dotted key -> value, for every cell
    grid: dict = field(default_factory=dict)  # dotted key -> list of values (cartesian product)
    zip: list | dict = field(default_factory=list)  # groups of equal-length lists, or lists of rows
    seeds: list[int] | None = None
    stages: list[str] | None = None
    resources: dict = field(default_factory=dict)
    out: str | None = None

    def __post_init__(self) -> None:
        self.grid = _axes(self.grid, "grid")
        groups = [self.zip] if isinstance(self.zip, Mapping) else list(self.zip)
        self.zip = [_zip_rows(g, f"zip[{i}]") if isinstance(g, list) else _zip_axes(g, f"zip[{i}]")
                    for i, g in enumerate(groups)]  # fmt: skip
        if self.seeds is not None and not self.seeds:
            raise UserError("sweep 'seeds' must be a non-empty list of integers")
        if self.stages is not None:
            if not self.stages:
                raise UserError("sweep 'stages' must be a non-empty list")
            for stage in self.stages:
                check_stage(stage, "the sweep's stages")


def _axes(spec: Any, what: str) -> dict[str, list]:
    if not isinstance(spec, Mapping):
        raise UserError(f"sweep '{what}' must be a mapping of dotted key -> list of values")
    out = {}
    for key, values in spec.items():
        if not isinstance(values, list):
            raise UserError(f"sweep axis '{key}' in {what} must be a list of values, got {values!r}")
        if not values:
            raise UserError(f"sweep axis '{key}' in {what} is empty: an empty grid has no cells")
        out[str(key)] = values
    return out


def _zip_axes(group: Any, what: str) -> list[dict]:
    """A zip group written as equal-length lists -> its rows."""
    axes = _axes(group, what)
    lengths = {k: len(v) for k, v in axes.items()}
    if len(set(lengths.values())) > 1:
        raise UserError(f"{what} lists must have equal lengths, got {lengths}")
    n = next(iter(lengths.values()), 0)
    return [{k: axes[k][j] for k in axes} for j in range(n)]


def load_sweep(
    source: str | Path | Mapping, cli_overrides: list[str] | None = None, out_dir: str | Path | None = None
) -> Sweep:
    """Parse, expand and check a sweep: every cell's config is built (unknown keys fail here)."""
    path = None if isinstance(source, Mapping) else Path(source)
    raw = dict(source) if isinstance(source, Mapping) else read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"sweep file {path} must be a mapping of sweep keys (name, base, grid, zip, seeds, ...)")
    if not raw:
        raise UserError(
            f"sweep file {path} is empty: it needs at least a name and a base, grid or zip (docs/sweeps.md)"
        )
    spec = build_dataclass(SweepFile, raw, prefix="", noun="sweep key")
    name = str(spec.name or (path.stem if path else "sweep"))
    names_folder = not (out_dir or spec.out)
    if names_folder and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):  # it names the folder runs/<name>
        raise UserError(
            f"sweep name {name!r}: letters, digits, '.', '_' and '-' only (it names the folder runs/<name>)"
        )
    cfg_over, res_over = _split_cli(cli_overrides or [])
    common = _common_tree(spec, path, cfg_over)
    resources_spec = {**spec.resources, **res_over}
    resources = build_dataclass(Resources, resources_spec, prefix="resources", noun="sweep key")
    seeds = spec.seeds or [common.get("run", {}).get("seed", 0)]
    cells = _cells(spec, common, seeds, resources_spec, resources)
    if not cells:
        raise UserError("the sweep has no cells")
    _check_cli_reaches_every_cell(cfg_over, res_over, cells)
    out = Path(out_dir or spec.out or Path("runs") / name)
    return Sweep(name, path, out, cells, resources, list(cells[0].config.run.stages), spec.description)


def _check_cli_reaches_every_cell(cfg_over: dict, res_over: dict, cells: list) -> None:
    """A command-line key=value that a cell replaces (a grid or zip axis, the seeds, or a zip row that sets the
    key's whole section, as ``{method: {name: tce}}`` does) never reaches it: say so instead of ignoring it."""

    for cell in cells:
        flat = flatten(cell.tree)
        for key, value in cfg_over.items():
            if key not in flat and any(k.startswith(key + ".") for k in flat):
                continue  # the command line set a whole section; the cell's values under it are its own business
            if key not in flat or plain(flat[key]) != plain(value):
                raise UserError(
                    f"{key}={value} on the command line does not reach cell {cell.id} ({cell.label}): its own "
                    f"values (a grid, zip or seeds axis, or a zip row that sets the whole section) give "
                    f"{flat.get(key, 'no such key')!r}; change it in the sweep file"
                )
        for key, value in res_over.items():
            if cell.resources is not None and plain(getattr(cell.resources, key, value)) != plain(value):
                raise UserError(
                    f"resources.{key}={value} on the command line does not reach cell {cell.id} ({cell.label}): its "
                    f"own resources.{key} (a grid or zip axis) gives {getattr(cell.resources, key)!r}; change it in "
                    "the sweep file"
                )


def _split_cli(cli_overrides: list[str]) -> tuple[dict, dict]:
    """Command-line key=value: resources.* go to resources, everything else to every cell."""
    cfg_over, res_over = {}, {}
    for text in cli_overrides:
        key, value = parse_override(text)
        if key.startswith("resources."):
            res_over[key.split(".", 1)[1]] = value
        else:
            cfg_over[key] = value
    return cfg_over, res_over


def _common_tree(spec: SweepFile, path: Path | None, cfg_over: dict) -> dict:
    """What every cell shares: the base, the sweep's overrides and stages, then the command line (which wins)."""
    base = spec.base
    if isinstance(base, str):
        base = read_yaml((path.parent / base) if path else Path(base))
        if not isinstance(base, Mapping):
            raise UserError("sweep 'base' must be a config mapping or a path to one")
    for section, value in dict(base).items():  # `run:` with nothing under it is null, not an empty section
        if not isinstance(value, Mapping):
            raise UserError(f"sweep base: '{section}' must be a mapping of its keys (e.g. {section}: {{...}}), "
                            f"got {value!r}")  # fmt: skip
    common = merge_overrides(base, spec.overrides)
    if spec.stages is not None:
        common = merge_overrides(common, {"run.stages": spec.stages})
    return merge_overrides(common, cfg_over)


def _cells(spec: SweepFile, common: dict, seeds: list, resources_spec: dict, resources: Resources) -> list[Cell]:
    """One cell per grid point x zip row of each group x seed; its id hashes only its own values."""
    grid = spec.grid
    owners: dict[str, str] = {}  # a key on two axes: the later one would silently replace the other's values
    axes = [("grid", list(grid))] + [(f"zip[{i}]", sorted({k for row in group for k in row} - {BUDGET_KEY}))
                                     for i, group in enumerate(spec.zip)]  # fmt: skip
    for where, keys in axes:
        for key in keys:  # 'method' (a whole section) and 'method.name' clash too
            if key == "run.seed":  # each cell's seed comes from `seeds:`, which would replace the axis's
                raise UserError(f"'{key}' is an axis of {where}, but a sweep's seeds come from its `seeds:` list "
                                "(e.g. seeds: [1, 2]): move the values there")  # fmt: skip
            clash = next((k for k in owners if k == key or k.startswith(key + ".") or key.startswith(k + ".")), None)
            if clash is not None and owners[clash] != where:
                both = f"'{key}' is an axis" if clash == key else f"'{clash}' and '{key}' are axes"
                raise UserError(f"{both} of both {owners[clash]} and {where}: one would silently replace the "
                                "other's values; keep them in one place")  # fmt: skip
            owners.setdefault(key, where)
    grid_points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())] if grid else [{}]
    cells: list[Cell] = []
    seen: dict[str, dict] = {}
    for point in grid_points:
        for zip_combo in itertools.product(*spec.zip) if spec.zip else [()]:
            for seed in seeds:
                own: dict[str, Any] = dict(point)
                for part in zip_combo:
                    own.update(part)
                # budget_selection: a note on how the row's budget was chosen, not a config value, so never hashed
                notes = [p[BUDGET_KEY] for p in (point, *zip_combo) if BUDGET_KEY in p]
                own.pop(BUDGET_KEY, None)
                if not all(isinstance(n, str) and n.strip() for n in notes):
                    raise UserError(
                        f"{BUDGET_KEY} must be non-empty text (how the row's steps/batch were chosen), got {notes!r}"
                    )
                own["run.seed"] = seed
                cid = cell_id(own)
                if cid in seen:
                    raise UserError(f"two cells have the same values {own}: check the grid and zip axes")
                seen[cid] = own
                # resources.* axes (e.g. more time for a bigger backbone) go to the cell's resources
                cfg_own = {k: v for k, v in own.items() if not k.startswith("resources.")}
                res_own = {k.split(".", 1)[1]: v for k, v in own.items() if k.startswith("resources.")}
                tree = merge_overrides(common, cfg_own)
                try:
                    config = build_experiment(tree)
                    cell_res = (
                        build_dataclass(Resources, {**resources_spec, **res_own}, prefix="resources", noun="sweep key")
                        if res_own
                        else resources
                    )
                except UserError as exc:
                    raise UserError(f"cell {cid} ({_describe(own)}): {exc}") from None
                cells.append(Cell(cid, own, tree, config, cell_res, "; ".join(notes) or None))
    return cells


def _zip_rows(rows: list, what: str) -> list[dict]:
    """A zip group written as rows; each row sets only the keys it names (rows may differ)."""
    if not rows or not all(isinstance(r, Mapping) and r for r in rows):
        raise UserError(
            f"{what}: a zip group written as a list must hold non-empty mappings (rows), e.g. - {{method.name: tce}}"
        )
    return [{str(k): v for k, v in row.items()} for row in rows]


def _describe(own: Mapping) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in own.items())


def resource_fields() -> list[str]:
    return [f.name for f in fields(Resources)]
