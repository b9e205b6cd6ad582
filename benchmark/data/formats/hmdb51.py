"""HMDB51: testTrainMulti_7030_splits (<class>_test_splitN.txt, tags 0/1/2); docs/datasets.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

from benchmark.data.formats import (
    DirLookup,
    dataset_format,
    find_video,
    fold_name,
    read_lines,
    strip_video_ext,
)
from benchmark.data.index import VideoIndex, VideoRecord
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation

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


@dataset_format("hmdb51")
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
    by_folded: dict[str, list[str]] = {}
    for name in files:  # class folders are found ignoring case: two such files would list each video twice
        by_folded.setdefault(fold_name(name), []).append(name)
    twins = next((names for names in by_folded.values() if len(names) > 1), None)
    if twins:
        raise UserError(f"HMDB51 split {split}: {' and '.join(f'{n}_test_split{split}.txt' for n in twins)} in "
                        f"{lists} name one class in two spellings (its videos would count under two labels): "
                        "keep one")  # fmt: skip
    classes = sorted(files)
    wanted = HMDB_TAGS[subset]
    lookup = DirLookup(root)
    records: list[VideoRecord] = []
    missing: list[str] = []
    for label, name in enumerate(classes):
        class_dir = lookup.child(root, name)
        for n, line in enumerate(read_lines(files[name]), 1):
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
            records.append(VideoRecord(str(found), label, f"{name}/{strip_video_ext(video)}"))
    return VideoIndex(records, classes, missing, root, "hmdb51")
