"""Dataset indexes: ``build_index(name_or_location, split, subset) -> VideoIndex``.

A builder per dataset format reads split files / folders into a list of
:class:`VideoRecord` (path, label, id, group). Files listed in a split file
but absent on disk go to ``VideoIndex.missing`` (reported, never fatal).
Videos may be files (.avi, .mp4, ...) or pre-extracted frame folders named by
the video's stem; both are detected per video and summarised per dataset
(``VideoIndex.storage``: video, frames or mixed).

Formats: ``ucf101`` (ucfTrainTestlist), ``hmdb51`` (testTrainMulti_7030_splits),
``kinetics`` (Kinetics-400 CSVs) and ``folder`` (class-per-folder). More are
added by registering a builder::

    @register_format("something", scan_depth=1)
    def build_something(loc: DatasetLocation, split: int, subset: str) -> VideoIndex: ...

(a builder that accepts a ``split_dir`` keyword gets ``--split-dir`` / the
``split_dir`` argument). Helpers for builders: :class:`DirLookup`
(case-insensitive lookup that lists each folder once), :func:`find_video` (a
file with any video extension, or a frame folder, by stem) and :func:`group_of`.

Index cache: an index is stored as JSON in ``$VSSL_CACHE/index`` (default
``~/.cache/vssl/index``), keyed by format, root, split and subset, and valid
while its fingerprint holds: size and mtime of the split files, and mtime of
every folder down to the depth where the videos are listed (adding or removing
a video changes its folder's mtime). A second start on Kinetics-400 stats ~1,200
folders instead of listing 240k files. ``VSSL_CACHE=off`` (or ``cache=False``)
disables it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import UserError, nearest
from benchmark.paths import DatasetLocation, resolve_dataset

log = logging.getLogger(__name__)

SUBSETS = ("train", "test", "all")
STORAGES = ("auto", "video", "frames")
INDEX_CACHE_VERSION = 1
# where split files live, relative to ROOT and to its parent (stat-ed for the cache fingerprint)
SPLIT_DIR_NAMES = ("ucfTrainTestlist", "testTrainMulti_7030_splits", "annotations", "splits", "lists", "")
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

    def summary(self) -> str:
        missing = f", {len(self.missing)} listed but missing" if self.missing else ""
        return (
            f"{len(self.records)} videos ({self.storage or 'none'}), {len(self.classes)} classes{missing} "
            f"({self.format}: {self.root})"
        )


# ====================================================================== builders registry
Builder = Callable[..., VideoIndex]  # (loc, split, subset[, split_dir=Path]) -> VideoIndex
BUILDERS: dict[str, Builder] = {}
SCAN_DEPTH: dict[str, int] = {}  # folder depth under ROOT down to which videos are listed (cache fingerprint)


def register_format(name: str, scan_depth: int = 1) -> Callable[[Builder], Builder]:
    def add(fn: Builder) -> Builder:
        BUILDERS[name] = fn
        SCAN_DEPTH[name] = scan_depth
        return fn

    return add


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
    if loc.format not in BUILDERS:
        known = ", ".join(sorted(BUILDERS))
        raise UserError(f"dataset '{loc.name}': format '{loc.format}' has no index builder (known: {known})")
    if not Path(loc.root).is_dir():
        raise UserError(f"dataset '{loc.name}' root is not a directory: {loc.root}")
    if split_dir is None:
        split_dir = loc.split_dir  # the paths file's per-dataset split folder, if any
    if split_dir is not None and not Path(split_dir).is_dir():
        raise UserError(f"split folder not found: {split_dir}")
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
    stamp = _fingerprint(root, SCAN_DEPTH.get(loc.format, 1), split_dir) if path else ""
    if path is not None:
        cached = _read_cache(path, stamp, root, loc.format)
        if cached is not None:
            return cached
    extra = {"split_dir": Path(split_dir)} if split_dir is not None else {}
    index = BUILDERS[loc.format](loc, int(split), subset, **extra)
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


# ====================================================================== index cache
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
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("index cache not written (%s): %s", path, exc)


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
def _ucf_lists(root: Path, split_dir: Path | None = None) -> Path:
    if split_dir is not None:
        return split_dir
    for candidate in (root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"):
        if candidate.is_dir():
            return candidate
    raise UserError(
        f"no ucfTrainTestlist folder in {root} or {root.parent} (UCF101 split files; or pass a split folder)"
    )


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
def build_ucf101(loc: DatasetLocation, split: int, subset: str, split_dir: Path | None = None) -> VideoIndex:
    """UCF101: classInd.txt + train/testlist0N.txt; test labels come from the class folder.

    Class names are matched case-insensitively (classInd says "HandstandPushups",
    files say "v_HandStandPushups_*", folders vary between copies). Videos are
    ROOT/<Class>/<video> (file or frame folder), or frame folders directly
    under ROOT (a common extracted layout).
    """
    if split not in (1, 2, 3):
        raise UserError(f"UCF101 has splits 1, 2, 3; got {split}")
    root = Path(loc.root)
    lists = _ucf_lists(root, split_dir)
    classes = _ucf_classes(lists)
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    lookup = DirLookup(root)
    records: list[VideoRecord] = []
    missing: list[str] = []
    seen: set[str] = set()
    for part in ("train", "test") if subset == "all" else (subset,):
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
            if found is None:  # flat layout of frame folders: ROOT/v_X_g01_c01/
                flat = lookup.child(root, Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name)
                found = flat if flat is not None and flat.is_dir() else None
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


# ====================================================================== hmdb51
HMDB_TAGS = {"train": {1}, "test": {2}, "all": {1, 2}}  # tag 0: unused in that split
_HMDB_SPLIT = re.compile(r"^(.+)_test_split([123])\.txt$")


def _hmdb_lists(root: Path, split_dir: Path | None) -> Path:
    if split_dir is not None:
        return split_dir
    for candidate in (
        root / "testTrainMulti_7030_splits",
        root.parent / "testTrainMulti_7030_splits",
        root / "splits",
        root.parent / "splits",
    ):
        if candidate.is_dir():
            return candidate
    raise UserError(
        f"no testTrainMulti_7030_splits folder in {root} or {root.parent} (HMDB51 split files; or pass a split folder)"
    )


@register_format("hmdb51")
def build_hmdb51(loc: DatasetLocation, split: int, subset: str, split_dir: Path | None = None) -> VideoIndex:
    """HMDB51: <class>_test_split{1,2,3}.txt with lines "<video>.avi <tag>" (1 train, 2 test, 0 unused);
    videos in ROOT/<class>/<video> (file or frame folder). Classes sorted by name."""
    if split not in (1, 2, 3):
        raise UserError(f"HMDB51 has splits 1, 2, 3; got {split}")
    root = Path(loc.root)
    lists = _hmdb_lists(root, split_dir)
    files = {}
    for entry in sorted(os.scandir(lists), key=lambda e: e.name):
        m = _HMDB_SPLIT.match(entry.name)
        if m and int(m.group(2)) == split:
            files[m.group(1)] = Path(entry.path)
    if not files:
        raise UserError(f"HMDB51 split {split}: no <class>_test_split{split}.txt files in {lists}")
    classes = sorted(files)
    wanted = HMDB_TAGS[subset]
    lookup = DirLookup(root)
    records: list[VideoRecord] = []
    missing: list[str] = []
    for label, name in enumerate(classes):
        class_dir = lookup.child(root, name)
        for n, line in enumerate(_read_lines(files[name]), 1):
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise UserError(f"{files[name]}:{n}: expected '<video>.avi <0|1|2>', got '{line}'")
            if int(fields[1]) not in wanted:
                continue
            video = fields[0]
            found = find_video(lookup, class_dir, video) if class_dir is not None else None
            if found is None:
                missing.append(f"{name}/{video}")
                continue
            records.append(VideoRecord(str(found), label, f"{name}/{_strip_video_ext(video)}"))
    return VideoIndex(records, classes, missing, root, "hmdb51")


# ====================================================================== kinetics
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
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
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


@register_format("kinetics", scan_depth=2)
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
                missing.append(f"{split_name}/{video_id}")
                continue
            records.append(VideoRecord(found, label_of.get(label, -1), video_id))
    if missing:
        log.info("kinetics: %d of %d listed clips are missing under %s", len(missing), len(seen), root)
    return VideoIndex(records, classes, missing, root, "kinetics")
