"""Where datasets live on this machine: the site paths file.

Configs and sweep files name datasets (``ucf101``, ``kinetics400``,
``synthetic``); this file maps names to roots, so no sweep carries a
cluster's absolute paths. It is looked up in order:

1. ``$VSSL_PATHS`` (a YAML file);
2. ``./paths.yaml`` in the working directory;
3. ``~/.config/vssl/paths.yaml``.

Format::

    datasets:
      ucf101:      {root: /datasets/UCF101, format: ucf101}
      hmdb51:      {root: /datasets/hmdb51, format: hmdb51}
      kinetics400: {root: /datasets/kinetics400, format: kinetics}
      ucf101-frames: {root: /datasets/UCF101-jpg, format: ucf101, split_dir: /datasets/UCF101/ucfTrainTestlist}

``split_dir`` (optional) is where the format's split files are, when they are
not in their usual place under the root (a frame-folder copy, a custom split).

Two datasets are built in and need no entry: ``synthetic`` (the labelled
UCF101-layout set) and ``synthetic-pool`` (its unlabelled pre-training pool),
under ``$VSSL_DATA`` (default ``./data``) as written by ``vssl synth``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UserError, nearest
from benchmark.registry import FORMATS


@dataclass(frozen=True)
class DatasetLocation:
    name: str
    root: Path
    format: str  # a registered dataset format (benchmark.registry.FORMATS)
    split_dir: Path | None = None  # the format's split files, when not in their usual place under root


def data_home() -> Path:
    return Path(os.environ.get("VSSL_DATA", "data"))


def builtin_datasets() -> dict[str, DatasetLocation]:
    synth = data_home() / "synthetic"
    return {
        "synthetic": DatasetLocation("synthetic", synth, "ucf101"),
        "synthetic-pool": DatasetLocation("synthetic-pool", synth / "pool", "folder"),
    }


def paths_file() -> Path | None:
    candidates = [os.environ.get("VSSL_PATHS"), "paths.yaml", Path.home() / ".config" / "vssl" / "paths.yaml"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    if os.environ.get("VSSL_PATHS"):
        raise UserError(f"paths file not found: VSSL_PATHS={os.environ['VSSL_PATHS']}")
    return None


def site_datasets() -> dict[str, DatasetLocation]:
    from benchmark.config import read_yaml

    out = builtin_datasets()
    path = paths_file()
    if path is None:
        return out
    tree = read_yaml(path)
    stray = sorted(set(tree) - {"datasets"}) if isinstance(tree, dict) else []
    if stray:  # a misspelt 'datasets:' would otherwise leave the file's datasets out without a word
        raise UserError(
            f"{path}: unknown top-level key '{stray[0]}'{nearest(stray[0], ('datasets',))}; the file holds datasets:"
        )
    entries = tree.get("datasets", {}) if isinstance(tree, dict) else None
    if not isinstance(entries, dict):
        raise UserError(f"{path}: expected a 'datasets:' mapping of name -> {{root, format}}")
    for name, entry in entries.items():
        if not isinstance(entry, dict) or "root" not in entry:
            raise UserError(f"{path}: dataset '{name}' needs a 'root'")
        fmt = entry.get("format", "folder")
        if not isinstance(fmt, str):
            raise UserError(f"{path}: dataset '{name}' has format {fmt!r}: one name, e.g. format: ucf101")
        if fmt not in FORMATS:  # the registered formats (benchmark/data/formats/, plugins)
            raise UserError(f"{path}: dataset '{name}' has unknown format '{fmt}'{nearest(fmt, FORMATS.names())}")
        root = _site_path(entry["root"], path.parent)
        split_dir = _site_path(entry["split_dir"], path.parent) if entry.get("split_dir") is not None else None
        unknown = sorted(set(entry) - {"root", "format", "split_dir"})
        if unknown:
            raise UserError(
                f"{path}: dataset '{name}' has unknown key '{unknown[0]}'"
                f"{nearest(unknown[0], ('root', 'format', 'split_dir'))}; keys: root, format, split_dir"
            )
        out[name] = DatasetLocation(name, root, fmt, split_dir)
    return out


def _site_path(value, base: Path) -> Path:
    """A path from the paths file: ~ and $VARS expanded, relative paths taken from the file's folder."""
    p = Path(os.path.expandvars(os.path.expanduser(str(value))))
    return p if p.is_absolute() else (base / p).resolve()


def resolve_dataset(name: str, must_exist: bool = True) -> DatasetLocation:
    known = site_datasets()
    if name not in known:
        where = paths_file() or "no paths file (set VSSL_PATHS or create ./paths.yaml)"
        raise UserError(f"unknown dataset '{name}'{nearest(name, known)}; known in {where}: {', '.join(sorted(known))}")
    loc = known[name]
    if must_exist and not loc.root.exists():
        hint = ""
        if name == "synthetic-pool" and (loc.root.parent / "synth.json").exists():  # made with pool_videos=0
            hint = " (the synthetic set there was made without a pool: rerun `vssl synth` with pool_videos > 0)"
        elif name.startswith("synthetic"):
            hint = " (run `vssl synth` first)"
        raise UserError(f"dataset '{name}' root does not exist: {loc.root}{hint}")
    return loc
