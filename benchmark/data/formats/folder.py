"""Class-per-folder: ROOT/<class>/<video file or frame folder> (the synthetic pool, custom sets)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.data.formats import (
    dataset_format,
    group_of,
    is_media,
    strip_video_ext,
)
from benchmark.data.index import VideoIndex, VideoRecord
from benchmark.data.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation


@dataset_format("folder")
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
            records.append(VideoRecord(entry.path, -1, strip_video_ext(entry.name)))
        elif entry.is_dir():
            class_dirs.append(entry)
    classes: list[str] = []
    for entry in class_dirs:
        inside = list(os.scandir(entry.path))
        videos = sorted((e for e in inside if is_media(e)), key=lambda e: e.name)
        if not videos:
            if any(e.name.lower().endswith(IMAGE_EXTENSIONS) for e in inside):  # a frame folder without a class
                records.append(VideoRecord(entry.path, -1, entry.name))
            continue
        label = len(classes)
        classes.append(entry.name)
        for v in videos:
            stem = strip_video_ext(v.name)
            records.append(VideoRecord(v.path, label, f"{entry.name}/{stem}", group_of(stem)))
    return VideoIndex(records, classes, [], root, "folder")
