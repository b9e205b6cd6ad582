"""UCF101: ucfTrainTestlist (classInd.txt, train/testlist0N.txt); docs/datasets.md."""

from __future__ import annotations

import re
from pathlib import Path

from benchmark.data.formats import (
    DirLookup,
    dataset_format,
    find_video,
    group_of,
    read_lines,
    strip_video_ext,
)
from benchmark.data.index import VideoIndex, VideoRecord
from benchmark.data.video import VIDEO_EXTENSIONS
from benchmark.errors import UserError, nearest
from benchmark.paths import DatasetLocation


def _ucf_lists(root: Path, split_dir: Path | None = None) -> Path:
    if split_dir is not None:
        return split_dir
    for candidate in (root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"):
        if candidate.is_dir():
            return candidate
    raise UserError(
        f"no ucfTrainTestlist folder in {root} or {root.parent} (UCF101 split files; or pass a split folder)"
    )


def _ucf_classes(lists: Path) -> list[str]:
    path = lists / "classInd.txt"
    if not path.is_file():
        raise UserError(f"missing {path}")
    entries: dict[int, str] = {}
    for n, line in enumerate(read_lines(path), 1):
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


@dataset_format("ucf101")
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
        for n, line in enumerate(read_lines(path), 1):
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
            video_id = strip_video_ext(rel)
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
