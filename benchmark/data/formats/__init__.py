"""Dataset formats: one module per on-disk layout, each registering an index builder.

Built in: ``ucf101`` (ucfTrainTestlist), ``hmdb51`` (testTrainMulti_7030_splits), ``kinetics``
(Kinetics-400 CSVs) and ``folder`` (class-per-folder); docs/datasets.md describes each layout. A new
format is one module (here, or in a plugin package) that registers a builder::

    from benchmark.data.formats import dataset_format

    @dataset_format("something", scan_depth=1)
    def build_something(loc: DatasetLocation, split: int, subset: str) -> VideoIndex: ...

(a builder that accepts a ``split_dir`` keyword gets ``--split-dir`` / the paths file's ``split_dir``;
``scan_depth`` is the folder depth under ROOT down to which videos are listed, for the index cache's
fingerprint). Helpers for builders: :class:`DirLookup` (case-insensitive lookup that lists each folder
once), :func:`find_video` (a file with any video extension, or a frame folder, by stem),
:func:`group_of`, :func:`strip_video_ext`, :func:`is_media` and :func:`read_lines`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from benchmark.data.index import VideoIndex
from benchmark.data.video import VIDEO_EXTENSIONS
from benchmark.errors import UserError
from benchmark.registry import register_format

Builder = Callable[..., VideoIndex]  # (loc, split, subset[, split_dir=Path]) -> VideoIndex


def dataset_format(name: str, scan_depth: int = 1) -> Callable[[Builder], Builder]:
    """Register an index builder for the format ``name`` (the ``format:`` of a paths-file entry)."""

    def add(fn: Builder) -> Builder:
        fn.scan_depth = scan_depth  # type: ignore[attr-defined]
        return register_format(name)(fn)

    return add


def fold_name(name: str) -> str:
    """A name as dataset lookups compare it: case and Unicode normal form ignored."""
    return unicodedata.normalize("NFC", name).lower()


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
                folded.setdefault(fold_name(n), n)
            self._listings[folder] = (set(names), folded)
        return self._listings[folder]

    def child(self, folder: Path, name: str) -> Path | None:
        """``folder / name``, the exact name first, else a match ignoring case and Unicode normal form (a folder
        copied from macOS spells 'Café' decomposed, a split file composed); None when absent."""
        names, folded = self.entries(folder)
        actual = name if name in names else folded.get(fold_name(name))
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


def strip_video_ext(relpath: str) -> str:
    suffix = Path(relpath).suffix.lower()
    return relpath[: -len(suffix)] if suffix in VIDEO_EXTENSIONS else relpath


def is_media(entry: os.DirEntry) -> bool:
    if entry.name.startswith("."):
        return False
    if entry.is_dir():
        return True  # a frame folder
    # a broken symlink (its target moved) is listed too, so check-data and the loaders report it as not found
    return (entry.is_file() or entry.is_symlink()) and entry.name.lower().endswith(VIDEO_EXTENSIONS)


def read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: a BOM (Windows editors) is no text
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
