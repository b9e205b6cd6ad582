"""Kinetics-400: a CSV per split and clips under ROOT/<split>/<label>/; docs/datasets.md."""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

from benchmark.data.formats import (
    DirLookup,
    dataset_format,
)
from benchmark.data.index import VideoIndex, VideoRecord
from benchmark.data.video import VIDEO_EXTENSIONS
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation

log = logging.getLogger(__name__)

KINETICS_CSV_DIRS = ("annotations", "splits", "lists", "")  # under ROOT, then under its parent
# which CSV (by a word in its name) and which clip folders serve each subset; evaluation uses "val"
KINETICS_SUBSET_CSV = {"train": ("train",), "test": ("val", "validate", "validation", "test")}
KINETICS_SPLIT_DIRS = {
    "train": ("train", "training"),
    "val": ("val", "validate", "validation", "valid"),
    "validate": ("val", "validate", "validation", "valid"),
    "test": ("test", "testing"),
}


def _norm_label(text: str) -> str:
    """'air drumming', 'air_drumming', '"air drumming"' -> 'airdrumming' (copies spell folders differently)."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _kinetics_csv(root: Path, split_dir: Path | None, part: str) -> Path | None:
    folders = [split_dir] if split_dir is not None else [b / n for b in (root, root.parent) for n in KINETICS_CSV_DIRS]
    for folder in folders:
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.name.lower().endswith(".csv") and e.is_file())
        except OSError:
            continue
        for word in KINETICS_SUBSET_CSV[part]:
            hits = [n for n in names if word in re.split(r"[^a-z]+", n.lower()[:-4])]
            if hits:
                return folder / hits[0]
    return None


def _read_kinetics_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if rows and not {"youtube_id", "time_start", "time_end"} <= set(rows[0]):
        raise UserError(f"{path}: expected a header with youtube_id,time_start,time_end (and label, split)")
    return rows


class _StemFolder:
    """Entries of a folder by stem: video files and frame folders (listed once)."""

    def __init__(self, folder: Path | None):
        self.by_stem: dict[str, str] = {}
        if folder is None:
            return
        try:
            for e in os.scandir(folder):
                name = e.name
                suffix = os.path.splitext(name)[1].lower()
                if suffix in VIDEO_EXTENSIONS:
                    self.by_stem.setdefault(name[: -len(suffix)], e.path)
                elif e.is_dir():  # a frame folder
                    self.by_stem.setdefault(name, e.path)
        except OSError:
            pass


def _seconds(text: str) -> int:
    return int(float(text))


@dataset_format("kinetics", scan_depth=2)
def build_kinetics(loc: DatasetLocation, split: int, subset: str, split_dir: Path | None = None) -> VideoIndex:
    """Kinetics-400: a CSV per split ("label,youtube_id,time_start,time_end,split[,is_cc]"); clips in
    ROOT/<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4 or .../<youtube_id>.mp4 (also without the
    label folder). ``test`` reads the validation CSV (the usual evaluation set). Listed clips absent on
    disk are counted in ``missing``: most copies lack a good share of them. ``split`` is ignored."""
    root = Path(loc.root)
    parts = ("train", "test") if subset == "all" else (subset,)
    tables = {}
    for part in parts:
        path = _kinetics_csv(root, split_dir, part)
        if path is None:
            where = split_dir or f"{root}/annotations, {root} or {root.parent}"
            raise UserError(f"Kinetics: no {'/'.join(KINETICS_SUBSET_CSV[part])} CSV in {where}")
        tables[part] = (path, _read_kinetics_csv(path))
    if "train" not in tables:  # the class list always comes from the training CSV where there is one
        train_csv = _kinetics_csv(root, split_dir, "train")
        if train_csv is not None:
            tables["_classes"] = (train_csv, _read_kinetics_csv(train_csv))
    classes = sorted({row["label"] for _, rows in tables.values() for row in rows if row.get("label")})
    label_of = {c: i for i, c in enumerate(classes)}
    lookup = DirLookup(root)
    folder_cache: dict[Path | None, _StemFolder] = {}

    def folder(path: Path | None) -> _StemFolder:
        if path not in folder_cache:
            folder_cache[path] = _StemFolder(path)
        return folder_cache[path]

    label_dirs: dict[Path, dict[str, Path]] = {}

    def label_dir(base: Path, label: str) -> Path | None:
        if base not in label_dirs:
            names, _ = lookup.entries(base)
            label_dirs[base] = {_norm_label(n): base / n for n in names}
        return label_dirs[base].get(_norm_label(label))

    records: list[VideoRecord] = []
    missing: list[str] = []
    seen: set[str] = set()
    for part in parts:
        path, rows = tables[part]
        for n, row in enumerate(rows, 2):
            try:
                yid, start, end = row["youtube_id"].strip(), _seconds(row["time_start"]), _seconds(row["time_end"])
            except (KeyError, TypeError, ValueError, AttributeError):
                raise UserError(f"{path}:{n}: bad row {dict(row)}") from None
            label = (row.get("label") or "").strip()
            stem = f"{yid}_{start:06d}_{end:06d}"
            video_id = f"{label}/{stem}" if label else stem
            if video_id in seen:
                continue
            seen.add(video_id)
            split_name = (row.get("split") or ("train" if part == "train" else "val")).strip().lower()
            bases = [b for d in KINETICS_SPLIT_DIRS.get(split_name, (split_name,)) if (b := lookup.child(root, d))]
            bases.append(root)
            found = None
            for base in bases:
                for where in ((label_dir(base, label) if label else None), base):
                    if where is None:
                        continue
                    entries = folder(where).by_stem
                    found = entries.get(stem) or entries.get(yid)
                    if found:
                        break
                if found:
                    break
            if found is None:
                missing.append(f"{split_name}/{video_id}.mp4")  # the layout's canonical name (docs/datasets.md)
                continue
            records.append(VideoRecord(found, label_of.get(label, -1), video_id))
    if missing:
        log.info("kinetics: %d of %d listed clips are missing under %s", len(missing), len(seen), root)
    return VideoIndex(records, classes, missing, root, "kinetics")
