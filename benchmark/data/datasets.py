"""Dataset indexes: ``build_index(name_or_location, split, subset) -> VideoIndex``.

A builder per storage format reads split files / folders into a list of
:class:`VideoRecord` (path, label, id, group). Files listed in a split file
but absent on disk go to ``VideoIndex.missing`` (reported, never fatal).
Videos may be files (.avi, .mp4, ...) or pre-extracted frame folders named by
the video's stem; both are detected per video.

Formats: ``ucf101`` and ``folder`` here; more are added by registering a
builder::

    @register_format("hmdb51")
    def build_hmdb51(loc: DatasetLocation, split: int, subset: str) -> VideoIndex: ...

Helpers for builders: :class:`DirLookup` (case-insensitive file lookup that
lists each folder once), :func:`find_video` (a file with any video extension,
or a frame folder, by stem) and :func:`group_of`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmark.errors import UserError, nearest
from benchmark.paths import DatasetLocation, resolve_dataset

SUBSETS = ("train", "test", "all")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # frame folders (as benchmark.data.video reads them)
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")


@dataclass(frozen=True)
class VideoRecord:
    path: str  # a video file or a frame folder
    label: int  # 0-based class index; -1 when unlabelled
    video_id: str  # unique within the index: relative path without extension, e.g. "Class/v_Class_g08_c01"
    group: str = ""  # UCF101 group ("g08"); "" when the format has none


@dataclass
class VideoIndex:
    records: list[VideoRecord]
    classes: list[str]
    missing: list[str] = field(default_factory=list)  # listed in split files but absent on disk
    root: Path = Path(".")
    format: str = ""

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def summary(self) -> str:
        missing = f", {len(self.missing)} missing" if self.missing else ""
        return f"{len(self.records)} videos, {len(self.classes)} classes{missing} ({self.format}: {self.root})"


# ====================================================================== builders registry
Builder = Callable[[DatasetLocation, int, str], VideoIndex]
BUILDERS: dict[str, Builder] = {}


def register_format(name: str) -> Callable[[Builder], Builder]:
    def add(fn: Builder) -> Builder:
        BUILDERS[name] = fn
        return fn

    return add


def build_index(name_or_location: str | DatasetLocation, split: int = 1, subset: str = "train") -> VideoIndex:
    """Index one split of a dataset. ``subset``: "train", "test" or "all" (train + test)."""
    loc = name_or_location if isinstance(name_or_location, DatasetLocation) else resolve_dataset(name_or_location)
    if subset not in SUBSETS:
        raise UserError(f"unknown subset '{subset}'{nearest(subset, SUBSETS)}; choose from {', '.join(SUBSETS)}")
    if loc.format not in BUILDERS:
        known = ", ".join(sorted(BUILDERS))
        raise UserError(f"dataset '{loc.name}': format '{loc.format}' has no index builder (known: {known})")
    if not Path(loc.root).is_dir():
        raise UserError(f"dataset '{loc.name}' root is not a directory: {loc.root}")
    return BUILDERS[loc.format](loc, int(split), subset)


# ====================================================================== helpers for builders
class DirLookup:
    """Case-insensitive lookup of entries under a root; each folder is listed once (then cached)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._listings: dict[Path, tuple[set[str], dict[str, str]]] = {}

    def entries(self, folder: Path) -> tuple[set[str], dict[str, str]]:
        """(names, lower-cased name -> name) of the entries of ``folder`` (empty when it doesn't exist)."""
        if folder not in self._listings:
            try:
                names = sorted(e.name for e in os.scandir(folder))
            except OSError:
                names = []
            folded: dict[str, str] = {}
            for n in names:
                folded.setdefault(n.lower(), n)
            self._listings[folder] = (set(names), folded)
        return self._listings[folder]

    def child(self, folder: Path, name: str) -> Path | None:
        """``folder / name``, the exact name first, else a case-insensitive match; None when absent."""
        names, folded = self.entries(folder)
        actual = name if name in names else folded.get(name.lower())
        return folder / actual if actual is not None else None

    def find(self, relpath: str) -> Path | None:
        """The on-disk path of ``relpath`` (matched case-insensitively, component by component)."""
        here = self.root
        for part in Path(relpath).parts:
            found = self.child(here, part)
            if found is None:
                return None
            here = found
        return here


def find_video(lookup: DirLookup, folder: Path, name: str) -> Path | None:
    """``name`` (a file name or stem) in ``folder``: the file itself, a file with another video extension,
    or a frame folder named by the stem."""
    direct = lookup.child(folder, name)
    if direct is not None:
        return direct
    stem = name
    suffix = Path(name).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        stem = name[: -len(suffix)]
    for candidate in (stem, *(stem + ext for ext in VIDEO_EXTENSIONS)):
        found = lookup.child(folder, candidate)
        if found is not None:
            return found
    return None


_GROUP = re.compile(r"_g(\d+)_c(\d+)$", re.IGNORECASE)


def group_of(stem: str) -> str:
    """UCF101 group of a video stem ("v_X_g08_c01" -> "g08"); "" when absent."""
    m = _GROUP.search(stem)
    return f"g{int(m.group(1)):02d}" if m else ""


def _strip_video_ext(relpath: str) -> str:
    suffix = Path(relpath).suffix.lower()
    return relpath[: -len(suffix)] if suffix in VIDEO_EXTENSIONS else relpath


def _is_media(entry: os.DirEntry) -> bool:
    if entry.name.startswith("."):
        return False
    if entry.is_dir():
        return True  # a frame folder
    return entry.is_file() and entry.name.lower().endswith(VIDEO_EXTENSIONS)


# ====================================================================== ucf101
def _ucf_lists(root: Path) -> Path:
    for candidate in (root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"):
        if candidate.is_dir():
            return candidate
    raise UserError(f"no ucfTrainTestlist folder in {root} or {root.parent} (UCF101 split files)")


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ucf_classes(lists: Path) -> list[str]:
    path = lists / "classInd.txt"
    if not path.is_file():
        raise UserError(f"missing {path}")
    entries: dict[int, str] = {}
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{path}:{n}: expected '<index> <ClassName>', got '{line}'")
        entries[int(parts[0])] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise UserError(f"{path}: class indices must be 1..{len(entries)}")
    return [entries[i] for i in range(1, len(entries) + 1)]


def _split_file(lists: Path, subset: str, split: int) -> Path:
    path = lists / f"{subset}list{split:02d}.txt"
    if not path.is_file():
        have = sorted(p.name for p in lists.glob("*list0*.txt"))
        raise UserError(f"UCF101 split {split}: missing {path} (found: {', '.join(have) or 'none'})")
    return path


@register_format("ucf101")
def build_ucf101(loc: DatasetLocation, split: int, subset: str) -> VideoIndex:
    """UCF101: classInd.txt + train/testlist0N.txt; test labels come from the class folder.

    Class names are matched case-insensitively (classInd says "HandstandPushups",
    files say "v_HandStandPushups_*", folders vary between copies).
    """
    if split not in (1, 2, 3):
        raise UserError(f"UCF101 has splits 1, 2, 3; got {split}")
    root = Path(loc.root)
    lists = _ucf_lists(root)
    classes = _ucf_classes(lists)
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    lookup = DirLookup(root)
    records: list[VideoRecord] = []
    missing: list[str] = []
    seen: set[str] = set()
    for part in (("train", "test") if subset == "all" else (subset,)):
        path = _split_file(lists, part, split)
        for n, line in enumerate(_read_lines(path), 1):
            fields = line.split()
            rel = fields[0].replace("\\", "/")
            folder, _, name = rel.rpartition("/")
            if not folder:
                raise UserError(f"{path}:{n}: expected '<Class>/<video>', got '{line}'")
            label = by_name.get(folder.lower())
            if label is None:  # folder not in classInd: try the class part of v_<Class>_gXX_cYY
                m = re.match(r"v_(.+)_g\d+_c\d+", name, re.IGNORECASE)
                label = by_name.get(m.group(1).lower()) if m else None
            if label is None:
                raise UserError(f"{path}:{n}: class '{folder}' is not in classInd.txt{nearest(folder, classes)}")
            if len(fields) > 1:
                if not fields[1].isdigit() or not 1 <= int(fields[1]) <= len(classes):
                    raise UserError(f"{path}:{n}: label '{fields[1]}' is not a class index 1..{len(classes)}")
                label = int(fields[1]) - 1
            video_id = _strip_video_ext(rel)
            if video_id in seen:
                continue
            seen.add(video_id)
            class_dir = lookup.child(root, folder) or lookup.child(root, classes[label])
            found = find_video(lookup, class_dir, name) if class_dir is not None else None
            if found is None:
                missing.append(rel)
                continue
            records.append(VideoRecord(str(found), label, video_id, group_of(Path(video_id).name)))
    return VideoIndex(records, classes, missing, root, "ucf101")


# ====================================================================== folder
@register_format("folder")
def build_folder(loc: DatasetLocation, split: int, subset: str) -> VideoIndex:
    """ROOT/<class>/<video file or frame folder>; classes sorted by name. ``split``/``subset`` are ignored:
    every video is returned. Videos directly under ROOT (no class folder) get label -1."""
    root = Path(loc.root)
    records: list[VideoRecord] = []
    try:
        top = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise UserError(f"cannot list {root}: {exc.strerror or exc}") from None
    class_dirs = []
    for entry in top:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.name.lower().endswith(VIDEO_EXTENSIONS):
            records.append(VideoRecord(entry.path, -1, _strip_video_ext(entry.name)))
        elif entry.is_dir():
            class_dirs.append(entry)
    classes: list[str] = []
    for entry in class_dirs:
        inside = list(os.scandir(entry.path))
        videos = sorted((e for e in inside if _is_media(e)), key=lambda e: e.name)
        if not videos:
            if any(e.name.lower().endswith(IMAGE_EXTENSIONS) for e in inside):  # a frame folder without a class
                records.append(VideoRecord(entry.path, -1, entry.name))
            continue
        label = len(classes)
        classes.append(entry.name)
        for v in videos:
            stem = _strip_video_ext(v.name)
            records.append(VideoRecord(v.path, label, f"{entry.name}/{stem}", group_of(stem)))
    return VideoIndex(records, classes, [], root, "folder")
