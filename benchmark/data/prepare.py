"""``vssl prepare SRC DST``: a copy of a dataset re-encoded for fast random access.

Every video file under SRC is decoded once, from the start, resized so that its
short side is ``short_side`` (never upscaled; even sizes) and re-encoded as
MPEG-4 part 2 with a keyframe every ``gop`` frames and no B-frames -- an
intra-heavy stream whose random 8-frame clips decode ~15x faster than from
sparse-keyframe h264 (protocol notes). Frames keep their count and order; the
output has a constant frame rate (a variable-rate source is re-timed at its
average rate) and no audio. Everything else (split files, CSVs, frame folders)
is copied, so DST has SRC's layout and the same index builders read it.

Resumable: each output is written to a hidden temporary file beside it and
renamed when complete, so an interrupted run leaves no half-written video
under a real name; a second run skips finished outputs. DST/prepare.json
records the settings; resuming with different ones is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from benchmark.data.pool import worker_pool
from benchmark.errors import UserError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")
MPEG4_CONTAINERS = {".avi": "avi", ".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".m4v": "mp4"}
SETTINGS_FILE = "prepare.json"
TMP_PREFIX = ".vssl-part-"


@dataclass(frozen=True)
class PrepareConfig:
    short_side: int = 128  # px; 0 keeps the source size
    gop: int = 8  # keyframe interval in frames
    qscale: int = 3  # MPEG-4 quantiser, 1 (best) .. 31

    def validate(self) -> None:
        if self.short_side < 0 or self.short_side % 2:
            raise UserError(
                f"--short-side must be an even number of pixels (or 0 to keep the size), got {self.short_side}"
            )
        if self.gop < 1:
            raise UserError(f"--gop must be at least 1, got {self.gop}")
        if not 1 <= self.qscale <= 31:
            raise UserError(f"--qscale must be in 1..31, got {self.qscale}")


@dataclass
class PrepareReport:
    encoded: int = 0
    skipped: int = 0  # already finished by an earlier run
    copied: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)

    def summary(self) -> str:
        return (
            f"{self.encoded} videos encoded, {self.skipped} already done, {self.copied} other files copied, "
            f"{len(self.failed)} failed"
        )


def output_name(rel: str) -> str:
    """Same name where the container holds MPEG-4 part 2; .mkv otherwise (e.g. .webm)."""
    stem, ext = os.path.splitext(rel)
    return rel if ext.lower() in MPEG4_CONTAINERS else stem + ".mkv"


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scale so the short side is ``short_side`` (no upscaling), both sides even."""
    short = min(width, height)
    scale = 1.0 if short_side <= 0 or short <= short_side else short_side / short
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def encode_video(src: Path, dst: Path, cfg: PrepareConfig) -> int:
    """Decode ``src`` from the start and write ``dst`` (atomically). Returns the number of frames."""
    import av
    import av.error

    tmp = dst.with_name(TMP_PREFIX + dst.name)
    fmt = MPEG4_CONTAINERS[dst.suffix.lower()]
    frames = 0
    try:
        with av.open(str(src), metadata_errors="ignore") as inp:
            if not inp.streams.video:
                raise ValueError("no video stream")
            s_in = inp.streams.video[0]
            s_in.thread_type = "AUTO"
            rate = Fraction(s_in.average_rate or s_in.guessed_rate or 25).limit_denominator(1001)
            width, height = target_size(s_in.codec_context.width, s_in.codec_context.height, cfg.short_side)
            with av.open(str(tmp), "w", format=fmt) as out:
                s_out = out.add_stream("mpeg4", rate=rate)
                s_out.width, s_out.height, s_out.pix_fmt = width, height, "yuv420p"
                ctx = s_out.codec_context
                ctx.gop_size = cfg.gop
                ctx.max_b_frames = 0
                ctx.qscale = True
                ctx.global_quality = cfg.qscale * 118  # FF_QP2LAMBDA
                for frame in inp.decode(s_in):
                    img = frame.reformat(width=width, height=height, format="yuv420p")
                    img.pts = frames
                    img.time_base = 1 / rate  # frames renumbered: constant rate
                    out.mux(s_out.encode(img))
                    frames += 1
                out.mux(s_out.encode())
        if frames == 0:
            raise ValueError("no decodable frames")
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return frames


def _plan(src: Path, dst: Path) -> tuple[list[str], list[str]]:
    """(video files, other files) under ``src``, as paths relative to it; frame folders count as other files."""
    videos, others = [], []
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if Path(folder).resolve() == dst.resolve():
            dirs[:] = []
            continue
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(folder, name), src)
            (videos if name.lower().endswith(VIDEO_EXTENSIONS) else others).append(rel)
    return videos, others


def _encode_job(args: tuple[str, str, str, PrepareConfig]) -> tuple[str, str | None]:
    src_root, dst_root, rel, cfg = args
    out = Path(dst_root) / output_name(rel)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        encode_video(Path(src_root) / rel, out, cfg)
    except Exception as exc:  # noqa: BLE001 -- a bad source video is reported, the rest goes on
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return rel, text[:200]
    return rel, None


CASE_PROBE = ".vssl-CaseProbe-"


def _is_probe(path: Path) -> bool:
    return path.name.startswith(CASE_PROBE)  # left behind only by a kill between its creation and removal


def _case_insensitive(folder: Path) -> bool:
    """Whether files made in ``folder`` (or its nearest existing parent) ignore case, as on macOS and Windows."""
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        handle, probe = tempfile.mkstemp(prefix=CASE_PROBE, dir=folder)
    except OSError:  # not writable: prepare says so itself when it writes
        return False
    os.close(handle)
    try:
        return os.path.exists(os.path.join(folder, os.path.basename(probe).swapcase()))
    finally:
        os.unlink(probe)


def _check_collisions(videos: list[str], src: Path, dst: Path) -> None:
    """x.webm and x.mkv in one folder both become x.mkv: the second encode would replace the first. Where DST
    ignores case, A/x.avi and a/x.avi are one output too."""
    fold = str.casefold if _case_insensitive(dst) else str
    by_output: dict[str, list[str]] = {}
    for rel in videos:
        by_output.setdefault(fold(output_name(rel)), []).append(rel)
    clashes = [(out, rels) for out, rels in by_output.items() if len(rels) > 1]
    if clashes:
        rels = clashes[0][1]
        out = output_name(rels[-1])
        more = f" ({len(clashes) - 1} more such outputs)" if len(clashes) > 1 else ""
        names = " and ".join(str(src / r) for r in rels)
        raise UserError(f"{names} would {'both' if len(rels) == 2 else 'all'} be written to {dst / out}{more}: "
                        "give them distinct names in SRC first")  # fmt: skip


def _check_settings(dst: Path, cfg: PrepareConfig, force: bool) -> None:
    path = dst / SETTINGS_FILE
    wanted = {"vssl_prepare": 1, **asdict(cfg)}
    if path.exists() and not force:
        try:
            have = json.loads(path.read_text())
        except ValueError:
            have = {}
        if have != wanted:
            raise UserError(f"{dst} was prepared with {have}, not {wanted}: use another DST, or --force to re-encode")
    dst.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2) + "\n")


def prepare_dataset(
    src: Path,
    dst: Path,
    cfg: PrepareConfig = PrepareConfig(),
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
) -> PrepareReport:
    from tqdm.auto import tqdm

    cfg.validate()
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise UserError(f"source is not a directory: {src}")
    if src.resolve() == dst.resolve():
        raise UserError("DST must differ from SRC")
    if dst.resolve().is_relative_to(src.resolve()):  # the copy would become part of the dataset it copies
        raise UserError(f"DST {dst} is inside SRC {src}: choose a folder outside the dataset")
    if dst.exists() and not dst.is_dir():
        raise UserError(f"DST {dst} is a file: choose a folder")
    if (
        dst.is_dir()
        and not (dst / SETTINGS_FILE).exists()
        and any(not _is_probe(p) for p in dst.iterdir())
        and not force
    ):
        raise UserError(f"DST {dst} holds files that vssl prepare did not write: choose a new or empty folder "
                        "(--force writes into it anyway, replacing files of the same names)")  # fmt: skip
    videos, others = _plan(src, dst)
    _check_collisions(videos, src, dst)
    _check_settings(dst, cfg, force)
    report = PrepareReport()
    for rel in others:  # split files, CSVs, frame-folder images: copied as they are
        out = dst / rel
        if out.exists() and not force and out.stat().st_size == (src / rel).stat().st_size:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, out)
        report.copied += 1
    todo = []
    for rel in videos:
        out = dst / output_name(rel)
        stale = out.with_name(TMP_PREFIX + out.name)
        if stale.exists():
            stale.unlink()  # left by an interrupted run
        if out.exists() and not force:
            report.skipped += 1
        else:
            todo.append((str(src), str(dst), rel, cfg))
    bar = tqdm(
        total=len(videos),
        initial=report.skipped,
        desc="prepare",
        unit="video",
        disable=not progress,
        dynamic_ncols=True,
    )
    if workers > 1 and len(todo) > 1:
        with worker_pool(workers) as pool:
            _collect(pool.map(_encode_job, todo, chunksize=1), report, bar)
    else:
        _collect(map(_encode_job, todo), report, bar)
    bar.close()
    return report


def _collect(results, report: PrepareReport, bar) -> None:
    for rel, error in results:
        if error:
            report.failed.append((rel, error))
        else:
            report.encoded += 1
        bar.update(1)
