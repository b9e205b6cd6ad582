"""``vssl check-data``: find the videos of a dataset that will not decode, before a long job meets them.

Every video that any split lists (UCF101/HMDB51: splits 1-3, train and test;
Kinetics: the train and validation CSVs; folder: everything) is opened and its
first and last frame decoded -- ``full=True`` decodes every frame and checks
that seeking returns the same frames as decoding from the start. A file is

* **bad** when it is missing though listed, empty, truncated, not a video, or
  a frame fails to decode (or, with ``full``, a seek returns a wrong frame);
* **odd** (a warning, not bad) when it only decodes correctly from the start
  (h264 inside AVI, unusable timestamps: random access then costs a decode
  from frame 0), has a variable frame rate, or has fewer frames than
  ``min_frames`` (the samplers loop-pad or skip it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.pool import worker_pool
from benchmark.errors import UserError
from benchmark.paths import DatasetLocation

FULL_CHUNK = 32  # frames decoded per call in a full check (bounded memory)


@dataclass(frozen=True)
class Finding:
    path: str
    reason: str


@dataclass
class CheckReport:
    checked: int = 0
    bad: list[Finding] = field(default_factory=list)
    missing: list[Finding] = field(default_factory=list)  # listed in a split file, absent on disk
    odd: list[Finding] = field(default_factory=list)
    frames: int = 0

    @property
    def failed(self) -> int:
        return len(self.bad) + len(self.missing)

    def summary(self) -> str:
        return (
            f"{self.checked} videos checked: {len(self.bad)} bad, {len(self.missing)} missing, "
            f"{len(self.odd)} with warnings, {self.checked - len(self.bad)} decode"
        )


@dataclass(frozen=True)
class CheckOptions:
    decoder: str = "pyav"
    full: bool = False
    min_frames: int = 8


def videos_to_check(loc: DatasetLocation, split_dir: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(paths, missing) over every split and subset the format has; each video once."""
    from benchmark.data.index import build_index

    splits = (1, 2, 3) if loc.format in ("ucf101", "hmdb51") else (1,)
    paths: dict[str, None] = {}
    missing: dict[str, None] = {}
    for split in splits:
        try:
            index = build_index(loc, split=split, subset="all", split_dir=split_dir)
        except Exception:
            if split == 1:
                raise
            continue  # a copy with only split 1's files
        paths.update(dict.fromkeys(r.path for r in index.records))
        missing.update(dict.fromkeys(index.missing))
    return list(paths), list(missing)


def check_video(path: str, options: CheckOptions = CheckOptions()) -> tuple[str | None, str | None, int]:
    """(reason it is bad or None, warning or None, frames)."""
    from benchmark.data.video import VideoDecodeError, open_video

    try:
        with open_video(path, options.decoder) as video:
            n = video.num_frames
            mode = getattr(video, "mode", "")
            video.get_frames([0])
            video.get_frames([n - 1])
            if options.full:
                problem = _full_check(video, path, options.decoder)
                if problem:
                    return problem, None, n
    except VideoDecodeError as exc:
        return str(exc), None, 0
    except (OSError, IndexError, RuntimeError, ValueError) as exc:  # anything else from a decoder: still bad
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}", None, 0
    warnings = []
    if mode == "sequential":
        warnings.append("seeking unreliable (h264 in AVI or bad timestamps): read from the start, slow random access")
    elif mode != "frames" and _variable_rate(path):
        warnings.append("variable frame rate: frames indexed by timestamp")
    if n < options.min_frames:
        warnings.append(f"only {n} frames (< {options.min_frames}): samplers loop-pad or skip it")
    return None, "; ".join(warnings) or None, n


def _full_check(video, path: str, decoder: str) -> str | None:
    """Decode every frame in order, then re-read three frames by seeking on a fresh handle: they must match."""
    import torch

    from benchmark.data.video import open_video

    n = video.num_frames
    probes = sorted({n // 2, (3 * n) // 4, max(0, n - 2)})
    kept = {}
    for start in range(0, n, FULL_CHUNK):
        chunk = list(range(start, min(n, start + FULL_CHUNK)))
        frames = video.get_frames(chunk)
        for i in probes:
            if start <= i < start + len(chunk):
                kept[i] = frames[i - start]
    with open_video(path, decoder) as fresh:
        for i in reversed(probes):  # backwards: every read is a seek
            if not torch.equal(fresh.get_frames([i])[0], kept[i]):
                return f"seeking returns a wrong frame ({i}): decode sequentially or re-encode (vssl prepare)"
    return None


def _variable_rate(path: str) -> bool:
    import av

    try:
        with av.open(path) as c:
            s = c.streams.video[0]
            avg, base = s.average_rate, s.guessed_rate or s.base_rate
            return bool(avg and base) and abs(float(avg) / float(base) - 1) > 1e-3
    except Exception:  # noqa: BLE001
        return False


def _check_one(args: tuple[str, CheckOptions]) -> tuple[str, str | None, str | None, int]:
    path, options = args
    return (path, *check_video(path, options))


def check_dataset(
    loc: DatasetLocation,
    options: CheckOptions = CheckOptions(),
    split_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> CheckReport:
    from tqdm.auto import tqdm

    from benchmark.data.video import resolve_decoder

    options = CheckOptions(resolve_decoder(options.decoder), options.full, options.min_frames)
    paths, missing = videos_to_check(loc, split_dir)
    if not paths and not missing:  # before the progress bar: nothing to check is a mistake, not a pass
        hint = " (a UCF101, HMDB51 or Kinetics copy? pass --format)" if loc.format == "folder" else ""
        raise UserError(f"no videos found in {loc.root} as format '{loc.format}'{hint}")
    report = CheckReport(missing=[Finding(m, "listed in a split file but not on disk") for m in missing])
    jobs = [(p, options) for p in paths]
    bar = tqdm(total=len(jobs), desc="check-data", unit="video", disable=not progress, dynamic_ncols=True)
    if workers > 1 and len(jobs) > 1:
        with worker_pool(workers) as pool:
            results = pool.map(_check_one, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers))))
            _collect(results, report, bar)
    else:
        _collect(map(_check_one, jobs), report, bar)
    bar.close()
    return report


def _collect(results, report: CheckReport, bar) -> None:
    for path, bad, odd, frames in results:
        report.checked += 1
        report.frames += frames
        if bad:
            report.bad.append(Finding(path, bad))
        elif odd:
            report.odd.append(Finding(path, odd))
        bar.update(1)
        if report.bad:
            bar.set_postfix(bad=len(report.bad))


def render(report: CheckReport, root: Path, max_rows: int = 50) -> str:
    """Tables of bad, missing and odd videos (paths relative to ``root``) and the summary line."""
    from tabulate import tabulate

    def rel(p: str) -> str:
        try:
            return os.path.relpath(p, root) if os.path.isabs(p) else p
        except ValueError:
            return p

    out = []
    for title, rows in (("bad", report.bad), ("missing", report.missing), ("warnings", report.odd)):
        if not rows:
            continue
        shown = [(rel(f.path), f.reason) for f in rows[:max_rows]]
        out.append(f"{title} ({len(rows)}):")
        out.append(tabulate(shown, headers=["video", "reason"], tablefmt="simple"))
        if len(rows) > max_rows:
            out.append(f"... and {len(rows) - max_rows} more (--csv FILE lists all)")
        out.append("")
    out.append(report.summary())
    return "\n".join(out)


def write_csv(report: CheckReport, path: Path) -> None:
    import csv

    # surrogateescape: a file name that is not UTF-8 is written back as the bytes it has on disk
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        w = csv.writer(f)
        w.writerow(["status", "video", "reason"])
        for status, rows in (("bad", report.bad), ("missing", report.missing), ("warning", report.odd)):
            for finding in rows:
                w.writerow([status, finding.path, finding.reason])
