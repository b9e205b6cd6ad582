"""Dataset indexes: ``build_index(name_or_location, split, subset) -> VideoIndex``.

A builder per dataset format (one module each in :mod:`benchmark.data.formats`, registered in
``benchmark.registry.FORMATS``) reads split files / folders into a list of :class:`VideoRecord` (path,
label, id, group). Files listed in a split file but absent on disk go to ``VideoIndex.missing`` (reported,
never fatal). Videos may be files (.avi, .mp4, ...) or pre-extracted frame folders named by the video's
stem; both are detected per video and summarised per dataset (``VideoIndex.storage``: video, frames or
mixed).

Index cache: an index is stored as JSON in ``$VSSL_CACHE/index`` (default
``~/.cache/vssl/index``), keyed by format, root, split and subset, and valid
while its fingerprint holds: size and mtime of the split files, and mtime of
every folder down to the depth where the videos are listed (adding or removing
a video changes its folder's mtime). A second start on Kinetics-400 stats ~1,200
folders instead of listing 240k files. ``VSSL_CACHE=off`` (or ``cache=False``)
disables it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.video import VIDEO_EXTENSIONS
from benchmark.errors import UserError, nearest
from benchmark.paths import DatasetLocation, resolve_dataset
from benchmark.registry import FORMATS
from benchmark.rundir import FILE_MODE

log = logging.getLogger(__name__)

SUBSETS = ("train", "test", "all")
STORAGES = ("auto", "video", "frames")
INDEX_CACHE_VERSION = 1
# where split files live, relative to ROOT and to its parent (stat-ed for the cache fingerprint)
SPLIT_DIR_NAMES = ("ucfTrainTestlist", "testTrainMulti_7030_splits", "annotations", "splits", "lists", "")


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
    from_cache: bool = False  # read from the index cache rather than built

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    @property
    def storage(self) -> str:
        """ "video" (files), "frames" (pre-extracted frame folders), "mixed", or "" when empty."""
        kinds = {"frames" if Path(r.path).suffix.lower() not in VIDEO_EXTENSIONS else "video" for r in self.records}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "")

    def missing_warning(self, what: str, max_fraction: float) -> str:
        """'' when the split files list nothing the disk lacks; else the warning line to print, naming up to five
        (``what``: e.g. "test videos of 'ucf101' split 1"). Past ``max_fraction`` of the listed videos: UserError
        with the list, for pre-training and evaluations alike."""
        if not self.missing:
            return ""
        listed = len(self.records) + len(self.missing)
        shown = ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else "")
        if len(self.missing) / listed > max_fraction:
            raise UserError(f"{len(self.missing)} of {listed} {what} are listed in the split files but missing on "
                            f"disk (> data.max_bad_fraction={max_fraction}): {shown}")  # fmt: skip
        return f"{len(self.missing)} {what} are listed in the split files but missing on disk, left out: {shown}"

    def summary(self) -> str:
        missing = f", {len(self.missing)} listed but missing" if self.missing else ""
        return (
            f"{len(self.records)} videos ({self.storage or 'none'}), {len(self.classes)} classes{missing} "
            f"({self.format}: {self.root})"
        )


def build_index(
    name_or_location: str | DatasetLocation,
    split: int = 1,
    subset: str = "train",
    split_dir: str | Path | None = None,
    storage: str = "auto",
    cache: bool = True,
) -> VideoIndex:
    """Index one split of a dataset. ``subset``: "train", "test" or "all" (train + test).

    ``split_dir`` overrides where the format's split files are looked for; ``storage`` keeps only video
    files or only frame folders where a copy holds both ("auto": a file first, else a frame folder).
    """
    loc = name_or_location if isinstance(name_or_location, DatasetLocation) else resolve_dataset(name_or_location)
    if subset not in SUBSETS:
        raise UserError(f"unknown subset '{subset}'{nearest(subset, SUBSETS)}; choose from {', '.join(SUBSETS)}")
    if storage not in STORAGES:
        raise UserError(f"unknown storage '{storage}'{nearest(storage, STORAGES)}; choose from {', '.join(STORAGES)}")
    if loc.format not in FORMATS:
        known = ", ".join(FORMATS.names())
        raise UserError(f"dataset '{loc.name}': format '{loc.format}' has no index builder (known: {known})")
    builder = FORMATS.get(loc.format)
    if not Path(loc.root).is_dir():
        raise UserError(f"dataset '{loc.name}' root is not a directory: {loc.root}")
    if split_dir is None:
        split_dir = loc.split_dir  # the paths file's per-dataset split folder, if any
    if split_dir is not None and not Path(split_dir).is_dir():
        what = "is not a folder" if Path(split_dir).exists() else "not found"
        raise UserError(f"split folder {what}: {split_dir}")
    root = Path(loc.root)
    identity = {
        "v": INDEX_CACHE_VERSION,
        "format": loc.format,
        "root": str(root.resolve()),
        "split": int(split),
        "subset": subset,
        "split_dir": str(Path(split_dir).resolve()) if split_dir else "",
        "storage": storage,
    }
    path = _cache_file(identity) if cache else None
    stamp = _fingerprint(root, getattr(builder, "scan_depth", 1), split_dir) if path else ""
    if path is not None:
        cached = _read_cache(path, stamp, root, loc.format)
        if cached is not None:
            return cached
    extra = {"split_dir": Path(split_dir)} if split_dir is not None else {}
    index = builder(loc, int(split), subset, **extra)
    if storage != "auto":
        index.records = _keep_storage(index.records, storage)
    if path is not None:
        _write_cache(path, stamp, index)
    return index


def _keep_storage(records: list[VideoRecord], storage: str) -> list[VideoRecord]:
    """Swap each record to the wanted storage (a file <-> the frame folder beside it), dropping those without."""
    out = []
    for r in records:
        p = Path(r.path)
        is_file = p.suffix.lower() in VIDEO_EXTENSIONS
        if storage == "frames":
            alt = p.with_suffix("") if is_file else p
            if alt.is_dir():
                out.append(VideoRecord(str(alt), r.label, r.video_id, r.group))
        else:
            alts = [p] if is_file else [p.with_name(p.name + ext) for ext in VIDEO_EXTENSIONS]
            found = next((a for a in alts if a.is_file()), None)
            if found is not None:
                out.append(VideoRecord(str(found), r.label, r.video_id, r.group))
    return out


# ----------------------------------------------------------------- index cache
def cache_root() -> Path | None:
    """``$VSSL_CACHE`` (``off`` disables caching), else ``~/.cache/vssl``."""
    value = os.environ.get("VSSL_CACHE", "")
    if value.lower() in ("off", "0", "none", "false"):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "vssl"


def _cache_file(identity: dict) -> Path | None:
    base = cache_root()
    if base is None:
        return None
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return base / "index" / f"{identity['format']}-{digest}.json"


def _fingerprint(root: Path, depth: int, split_dir: str | Path | None) -> str:
    """Hash of the split files' (name, size, mtime) and the mtimes of folders down to ``depth``."""
    h = hashlib.sha1()
    folders = [root]
    level = [root]
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                below += sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
            except OSError:
                continue
        folders += below
        level = below
    for folder in folders:
        try:
            h.update(f"d {folder.relative_to(root)} {folder.stat().st_mtime_ns}\n".encode())
        except OSError:
            pass
    split_dirs = [Path(split_dir)] if split_dir else [base / n for base in (root, root.parent) for n in SPLIT_DIR_NAMES]
    for folder in split_dirs:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.name.lower().endswith((".txt", ".csv")) and e.is_file():
                st = e.stat()
                h.update(f"f {e.path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _read_cache(path: Path, stamp: str, root: Path, fmt: str) -> VideoIndex | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != stamp:
        return None
    base = str(root)
    records = [
        VideoRecord(p if os.path.isabs(p) else os.path.join(base, p), label, vid, group)
        for p, label, vid, group in data["records"]
    ]
    try:
        os.utime(path)  # used: kept by _prune
    except OSError:
        pass
    log.debug("index of %s read from %s", root, path)
    return VideoIndex(records, data["classes"], data["missing"], root, fmt, from_cache=True)


def _prune(folder: Path, max_age_days: float = 30) -> None:
    """Drop entries unused for a month (indexes of deleted or temporary roots)."""
    cutoff = time.time() - max_age_days * 86400
    for entry in os.scandir(folder):
        if entry.name.endswith(".json") and entry.stat().st_mtime < cutoff:
            os.unlink(entry.path)


def _write_cache(path: Path, stamp: str, index: VideoIndex) -> None:
    """Best effort: an unwritable cache only costs a rescan next time."""
    base = str(index.root) + os.sep
    rows = [
        [r.path[len(base) :] if r.path.startswith(base) else r.path, r.label, r.video_id, r.group]
        for r in index.records
    ]
    data = {
        "fingerprint": stamp,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "root": str(index.root),
        "classes": index.classes,
        "missing": index.missing,
        "records": rows,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _prune(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.fchmod(fd, FILE_MODE)  # mkstemp's 0600 would hide a shared dataset's index from its other users
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("index cache not written (%s): %s", path, exc)
