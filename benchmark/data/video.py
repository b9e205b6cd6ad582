"""Decoding: ``open_video(path, decoder) -> VideoHandle``; ``handle.get_frames(indices)`` -> uint8 [T, C, H, W].

    with open_video("v_Foo_g01_c01.avi") as video:       # or a folder of extracted frames
        clip = video.get_frames([4, 5, 6, 7])              # any order, repeats allowed

Decoders:

* ``pyav`` -- PyAV (bundled FFmpeg). Random access seeks to the keyframe at or
  before the first wanted frame and decodes forward only as far as the last
  one; runs of wanted frames far apart are reached by separate seeks. Frame
  numbers come from presentation timestamps (a constant-rate grid, or a
  demuxed timestamp table for variable frame rates), so a seek that lands
  elsewhere is noticed; h264/hevc inside AVI, whose seeks return wrong frames,
  and files with unusable timestamps are decoded from the start instead
  (``handle.mode == "sequential"``). One decoding thread per handle (one per
  DataLoader worker).
* ``torchcodec`` -- used when ``import torchcodec`` works (it needs FFmpeg
  shared libraries on the system); exact seek mode, one thread. Returns the
  same frames as PyAV (both convert with swscale's defaults). Seek-unsafe
  files (h264/hevc in AVI) are handed to PyAV's sequential mode.
* ``auto`` -- torchcodec when importable, else PyAV.

A directory is a pre-extracted frame folder (``frame000001.jpg``,
``img_00001.jpg``, ``*.png``; natural sort order), whatever the decoder.

Anything wrong with the file (missing, empty, truncated, not a video, an
undecodable frame) raises :class:`VideoDecodeError` with a short reason; the
training loader catches, counts and names it.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from benchmark.errors import UserError, nearest

DECODERS = ("auto", "pyav", "torchcodec")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # the frames of a frame folder
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")
FRAME_FOLDER_FPS = 25.0  # a frame folder records no rate; UCF101/HMDB51 frames are extracted at 25 fps
RESEEK_GAP = 16  # wanted frames further apart than this are reached by a new seek, not by decoding through
_SEEK_UNSAFE = {("avi", "h264"), ("avi", "hevc")}  # seeking returned wrong frames here: decode sequentially


log = logging.getLogger(__name__)


class VideoDecodeError(Exception):
    """A video (or frame folder) could not be opened or decoded; the message is a short reason."""


_PLAIN = {  # decoder wording -> a plain sentence a user can act on
    "Could not open input file": "invalid data: not a video FFmpeg can read (damaged or another format)",
    "Invalid data found when processing input": "invalid data: not a video FFmpeg can read (damaged or another format)",
}


def _short(exc: BaseException) -> str:
    """One short plain line: the decoder's reason without errno, source locations or paths."""
    text = str(getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__).splitlines()[0]
    text = re.sub(r"^\w+, \S+\.(?:cpp|cc|c|h):\d+, ", "", text)  # torchcodec prefixes its C++ source location
    for wording, plain in _PLAIN.items():
        if wording in text:
            return plain
    return re.sub(r":? ?'?/[^\s']+'?", "", text).strip()[:200]


# ====================================================================== common handle
class VideoHandle:
    """An open video. Attributes: ``path, num_frames, fps, height, width, decoder``."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    decoder: str = ""
    mode: str = ""  # how frame i is found: grid, table, sequential (PyAV), exact (torchcodec), frames

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 [len(indices), 3, H, W] in the order asked; indices may repeat or be unsorted."""
        wanted = self._check(indices)
        if not wanted:
            return torch.empty((0, 3, self.height, self.width), dtype=torch.uint8)
        got = self._decode(sorted(set(wanted)))
        # numpy, not torch: tiny copies through torch's intra-op thread pool are ~7x slower on a busy 2-core machine
        return torch.from_numpy(np.stack([got[i] for i in wanted]))

    def _decode(self, unique_sorted: list[int]) -> dict[int, np.ndarray]:
        """Unique sorted indices -> uint8 [3, H, W] arrays."""
        raise NotImplementedError

    def _check(self, indices: Sequence[int]) -> list[int]:
        if isinstance(indices, torch.Tensor):
            indices = indices.tolist()
        out = [int(i) for i in indices]
        for i in out:
            if not 0 <= i < self.num_frames:
                raise IndexError(f"frame index {i} out of range for {self.num_frames} frames ({self.path})")
        return out

    def close(self) -> None:
        pass

    def __enter__(self) -> VideoHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path!r}, frames={self.num_frames}, fps={self.fps:g}, "
            f"{self.width}x{self.height})"
        )


# ====================================================================== PyAV
_LOCAL = threading.local()
TIMELINE_CACHE_SIZE = 2048  # per process: demuxed timestamp tables of non-CFR files (a few KB each)
_TIMELINES: OrderedDict[tuple[str, int, int], _Timeline] = OrderedDict()
_SEQUENTIAL_FILES: set[tuple[str, int, int]] = set()  # files whose seeks went wrong once: decoded from the start


def _reformatter():
    """One swscale context per thread, reused: ``frame.to_ndarray(format="rgb24")`` builds a new one per
    frame, which costs ~1 ms (10x the conversion itself) at 64x64."""
    if not hasattr(_LOCAL, "reformatter"):
        from av.video.reformatter import VideoReformatter

        _LOCAL.reformatter = VideoReformatter()
    return _LOCAL.reformatter


@dataclass
class _Timeline:
    """Presentation timestamps of every frame (sorted) and which frames are keyframes, from demuxing."""

    pts: list[int]
    keyframes: list[int]  # frame indices
    index_of: dict[int, int]

    @classmethod
    def from_packets(cls, packets: list[tuple[int, bool]]) -> _Timeline | None:
        """None when timestamps are unusable (missing or repeated): the file is then decoded sequentially."""
        if any(pts is None for pts, _ in packets):
            return None
        order = sorted(range(len(packets)), key=lambda k: packets[k][0])
        pts = [packets[k][0] for k in order]
        if len(set(pts)) != len(pts):
            return None
        keyframes = [i for i, k in enumerate(order) if packets[k][1]]
        return cls(pts, keyframes, {p: i for i, p in enumerate(pts)})

    def keyframe_before(self, index: int) -> int:
        k = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[k] if k >= 0 else 0


def _file_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


class PyAVVideo(VideoHandle):
    """PyAV with keyframe seeks. Frame ``i`` is the i-th frame in presentation order, found by one of:

    * ``grid`` -- constant frame rate (AVI, or a header whose average and base rates agree): frame i has
      timestamp start + i/fps, so no index is needed; every decoded frame's timestamp is checked against it;
    * ``table`` -- variable frame rate, no frame count in the header, or a grid that didn't hold: the
      timestamps of all packets, demuxed once (no decoding) and cached per file;
    * ``sequential`` -- timestamps that can't be trusted (h264/hevc inside AVI, missing or repeated
      timestamps, a seek that overshot): frames are counted from the start of the file.
    """

    decoder = "pyav"

    def __init__(self, path: str):
        self.path = str(path)
        self._container = None
        self._iter = None  # live frame iterator (after a seek or from the start)
        self._next: int | None = 0  # index of the frame the iterator yields next; None = unknown (after a seek)
        self._fresh = True  # nothing decoded since opening: the start needs no reopen
        self._timeline: _Timeline | None = None
        self._open()
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            self.close()
            raise VideoDecodeError("no frame rate in the stream")
        self.fps = float(rate)
        self.width, self.height = int(stream.codec_context.width), int(stream.codec_context.height)
        if self.width <= 0 or self.height <= 0:
            self.close()
            raise VideoDecodeError("video stream has no frame size")
        self._tb = stream.time_base or Fraction(1, 1)
        self._start = stream.start_time or 0
        self._key = _file_key(self.path)
        codec = stream.codec_context.name or ""
        formats = {f.strip() for f in (self._container.format.name or "").split(",")}
        self.container_format = sorted(formats)[0] if formats else ""
        self.codec = codec
        header_frames = int(stream.frames or 0)
        if self._key in _SEQUENTIAL_FILES or any((f, codec) in _SEEK_UNSAFE for f in formats):
            self.mode = "sequential"
            self.num_frames = header_frames or len(self._demux())
        elif header_frames > 0 and ("avi" in formats or _constant_rate(stream)):
            self.mode = "grid"
            self.num_frames = header_frames
        else:
            self._use_table()
        if self.num_frames <= 0:
            self.close()
            raise VideoDecodeError("video stream has no frames")

    # ------------------------------------------------------------------ opening, timing models
    def _open(self) -> None:
        import av

        p = Path(self.path)
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise VideoDecodeError("file not found") from None
        except OSError as exc:
            raise VideoDecodeError(f"cannot stat: {_short(exc)}") from None
        if size == 0:
            raise VideoDecodeError("empty file (0 bytes)")
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise VideoDecodeError(f"cannot open: {_short(exc)}") from None
        if not self._container.streams.video:
            self.close()
            raise VideoDecodeError("no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "NONE"
        self._stream.codec_context.thread_count = 1
        self._iter, self._next, self._fresh = None, 0, True

    def _reopen(self) -> None:
        self.close()
        self._open()

    def _demux(self) -> list[tuple[int, bool]]:
        """(pts, is_keyframe) of every packet in file order, without decoding."""
        import av

        try:
            packets = [(p.pts, bool(p.is_keyframe)) for p in self._container.demux(self._stream) if p.size > 0]
        except av.FFmpegError as exc:
            raise VideoDecodeError(f"cannot demux: {_short(exc)}") from None
        self._reopen()
        return packets

    def _use_table(self) -> None:
        """Switch to the demuxed timestamp table (cached per file), or to sequential when it is unusable."""
        timeline = _TIMELINES.get(self._key)
        if timeline is None:
            packets = self._demux()
            timeline = _Timeline.from_packets(packets)
            if timeline is None:
                self.mode, self.num_frames = "sequential", len(packets)
                return
            _TIMELINES[self._key] = timeline
            while len(_TIMELINES) > TIMELINE_CACHE_SIZE:
                _TIMELINES.popitem(last=False)
        _TIMELINES.move_to_end(self._key)
        self._timeline, self.mode, self.num_frames = timeline, "table", len(timeline.pts)

    def _fall_back(self, reason: str) -> None:
        """grid -> table -> sequential; remembered per file for the process when sequential."""
        self._iter = None
        if self.mode == "grid":
            self._use_table()
        else:
            self.mode = "sequential"
            _SEQUENTIAL_FILES.add(self._key)
        log.debug("%s: %s; decoding in %s mode", self.path, reason, self.mode)

    # ------------------------------------------------------------------ frame numbers
    def _frame_index(self, frame) -> int | None:
        """Index of a decoded frame from its timestamp; None when it isn't a frame of the model."""
        pts = frame.pts
        if pts is None:
            return None
        if self.mode == "table":
            return self._timeline.index_of.get(pts)
        exact = float((pts - self._start) * self._tb) * self.fps
        index = round(exact)
        return index if abs(exact - index) < 0.25 else None

    def _seek_pts(self, index: int) -> int:
        if self.mode == "table":
            return self._timeline.pts[index]
        return self._start + int(round(index / self.fps / float(self._tb)))

    def _position(self, index: int) -> None:
        """Start a frame iterator at or before ``index``: a keyframe seek, or the beginning in sequential mode."""
        import av

        self._iter = None
        if self.mode == "sequential" or index == 0:
            if not self._fresh:
                self._reopen()
            self._next = 0
        else:
            try:
                self._container.seek(self._seek_pts(index), backward=True, any_frame=False, stream=self._stream)
                self._next = None  # unknown until the first frame's timestamp
            except av.FFmpegError:
                self._fall_back("seek failed")
                return self._position(index)
        self._fresh = False
        self._iter = self._container.decode(self._stream)

    def _worth_seeking(self, target: int) -> bool:
        """Whether a new seek beats decoding forward from where the iterator is."""
        if self._iter is None or self._next is None or self._next > target:
            return True
        if self.mode == "sequential":
            return False
        if self.mode == "table":
            return self._timeline.keyframe_before(target) > self._next
        return target - self._next > RESEEK_GAP

    def _pull(self):
        import av

        try:
            return next(self._iter)
        except StopIteration:
            return None
        except (av.FFmpegError, ValueError) as exc:
            self._iter = None
            raise VideoDecodeError(f"decode error: {_short(exc)}") from None

    def _decode(self, wanted: list[int]) -> dict[int, np.ndarray]:
        """Each pass of the outer loop positions once and collects >= 1 frame, or falls back one mode
        (at most twice per handle), so it always ends."""
        got: dict[int, np.ndarray] = {}
        i = 0
        while i < len(wanted):
            if self._worth_seeking(wanted[i]):
                self._position(wanted[i])
            while i < len(wanted):
                frame = self._pull()
                if frame is None:
                    self._iter = None
                    raise VideoDecodeError(
                        f"frame {wanted[i]} not decodable: stream ended (expected {self.num_frames} frames)"
                    )
                if self.mode == "sequential":
                    idx = self._next
                else:
                    idx = self._frame_index(frame)
                    after_seek = self._next is None
                    if idx is None or (after_seek and idx > wanted[i]) or (not after_seek and idx != self._next):
                        self._fall_back("timestamps off the frame grid, a seek past the target, or a gap")
                        break
                self._next = idx + 1
                if idx == wanted[i]:
                    got[idx] = self._to_array(frame)
                    i += 1
                    if i < len(wanted) and self._worth_seeking(wanted[i]):
                        break  # far ahead: a new seek is cheaper than decoding through
        return got

    def _to_array(self, frame) -> np.ndarray:
        try:
            # threads=1: swscale's default (0 = one per CPU) oversubscribes the cores DataLoader workers share
            rgb = _reformatter().reformat(frame, width=self.width, height=self.height, format="rgb24", threads=1)
            arr = rgb.to_ndarray()
        except Exception as exc:  # noqa: BLE001 -- any conversion failure is a bad frame
            raise VideoDecodeError(f"frame conversion failed: {_short(exc)}") from None
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def close(self) -> None:
        self._iter = None
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def _constant_rate(stream) -> bool:
    """Average and base ("r_frame_rate") rates agree: no variable frame rate announced."""
    avg, base = stream.average_rate, stream.guessed_rate or stream.base_rate
    return bool(avg and base) and abs(float(avg) / float(base) - 1) < 1e-3


# ====================================================================== torchcodec
_TORCHCODEC: dict[str, object] = {}


def torchcodec_status() -> tuple[bool, str]:
    """(importable, reason when not). Importing torchcodec fails without FFmpeg shared libraries."""
    if "ok" not in _TORCHCODEC:
        try:
            from torchcodec.decoders import VideoDecoder  # noqa: F401

            _TORCHCODEC.update(ok=True, reason="")
        except Exception as exc:  # noqa: BLE001 -- ImportError, OSError, RuntimeError (missing libav*)
            _TORCHCODEC.update(ok=False, reason=_short(exc))
    return bool(_TORCHCODEC["ok"]), str(_TORCHCODEC["reason"])


class TorchCodecVideo(VideoHandle):
    """torchcodec in exact seek mode (it scans the file once, so variable frame rates index correctly), one
    FFmpeg thread. Files whose seeks are known to go wrong (h264/hevc inside AVI) are read by PyAV's
    sequential mode instead -- see :func:`open_video`."""

    decoder = "torchcodec"
    mode = "exact"

    def __init__(self, path: str):
        from torchcodec.decoders import VideoDecoder

        self.path = str(path)
        p = Path(self.path)
        if not p.exists():
            raise VideoDecodeError("file not found")
        if p.stat().st_size == 0:
            raise VideoDecodeError("empty file (0 bytes)")
        self._file = None
        try:
            source = self.path
            if not self.path.isascii() and _not_utf8(self.path):
                # a file name that is not UTF-8 (its bytes kept as surrogates): torchcodec takes only UTF-8 paths,
                # so it reads the open file instead
                self._file = source = open(self.path, "rb")  # noqa: SIM115 -- closed in close()
            self._dec = VideoDecoder(source, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NCHW")
            md = self._dec.metadata
            self.num_frames = int(md.num_frames or len(self._dec))
            self.fps = float(md.average_fps or 0.0) or FRAME_FOLDER_FPS
            self.height, self.width = int(md.height), int(md.width)
            self.codec = str(md.codec or "")
        except Exception as exc:  # noqa: BLE001 -- torchcodec raises RuntimeError/ValueError
            self.close()
            raise VideoDecodeError(f"cannot open: {_short(exc)}") from None
        header = int(getattr(md, "num_frames_from_header", 0) or 0)
        if self.num_frames <= 0:
            self.close()
            raise VideoDecodeError("video stream has no frames")
        if header > self.num_frames and Path(self.path).suffix.lower() == ".avi":
            # AVI's header counts every frame written; fewer in the file means it was cut (PyAV fails on the
            # missing frames too, so both decoders call it bad)
            self.close()
            raise VideoDecodeError(f"truncated: header says {header} frames, {self.num_frames} in the file")

    @property
    def seek_unsafe(self) -> bool:
        return Path(self.path).suffix.lower() == ".avi" and self.codec in {c for _, c in _SEEK_UNSAFE}

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        wanted = self._check(indices)
        if not wanted:
            return torch.empty((0, 3, self.height, self.width), dtype=torch.uint8)
        try:
            return self._dec.get_frames_at(indices=wanted).data.contiguous()
        except Exception as exc:  # noqa: BLE001
            raise VideoDecodeError(f"decode error: {_short(exc)}") from None

    def close(self) -> None:
        self._dec = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _not_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ====================================================================== frame folders
def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | Path) -> list[str]:
    """Image files of a frame folder in natural order (frame2 before frame10)."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    except OSError as exc:
        raise VideoDecodeError(f"cannot list frame folder: {_short(exc)}") from None
    return sorted(names, key=_natural_key)


class FrameFolderVideo(VideoHandle):
    decoder = "frames"
    mode = "frames"

    def __init__(self, path: str):
        self.path = str(path)
        self._files = list_frame_files(self.path)
        if not self._files:
            raise VideoDecodeError("frame folder has no images")
        self.num_frames = len(self._files)
        self.fps = FRAME_FOLDER_FPS
        try:
            from PIL import Image

            with Image.open(os.path.join(self.path, self._files[0])) as im:  # header only
                self.width, self.height = im.size
        except Exception as exc:  # noqa: BLE001
            raise VideoDecodeError(f"cannot read {self._files[0]}: {_short(exc)}") from None

    def _decode(self, wanted: list[int]) -> dict[int, np.ndarray]:
        from PIL import Image

        out = {}
        for i in wanted:
            name = self._files[i]
            try:
                with Image.open(os.path.join(self.path, name)) as im:
                    arr = np.asarray(im.convert("RGB"))
            except Exception as exc:  # noqa: BLE001
                raise VideoDecodeError(f"cannot decode {name}: {_short(exc)}") from None
            if arr.shape[:2] != (self.height, self.width):
                raise VideoDecodeError(f"{name} is {arr.shape[1]}x{arr.shape[0]}, expected {self.width}x{self.height}")
            out[i] = np.ascontiguousarray(arr.transpose(2, 0, 1))
        return out


# ====================================================================== entry point
def resolve_decoder(decoder: str) -> str:
    """'auto' -> 'torchcodec' when importable, else 'pyav'. Unknown or unavailable -> UserError."""
    if decoder not in DECODERS:
        raise UserError(f"unknown decoder '{decoder}'{nearest(decoder, DECODERS)}; choose from {', '.join(DECODERS)}")
    if decoder == "auto":
        return "torchcodec" if torchcodec_status()[0] else "pyav"
    if decoder == "torchcodec":
        ok, reason = torchcodec_status()
        if not ok:
            raise UserError(
                f"torchcodec is not available: {reason} (pip install torchcodec; it needs FFmpeg "
                "shared libraries) -- or use decoder=pyav"
            )
    return decoder


def open_video(path: str | os.PathLike, decoder: str = "auto") -> VideoHandle:
    """Open a video file or a frame folder. Use as a context manager, or call ``close()``."""
    name = resolve_decoder(decoder)
    if os.path.isdir(path):
        return FrameFolderVideo(str(path))
    if name == "torchcodec":
        video = TorchCodecVideo(str(path))
        if not video.seek_unsafe:
            return video
        video.close()  # torchcodec's seeks return wrong frames here; PyAV counts frames from the start
    return PyAVVideo(str(path))


# ====================================================================== small videos kept decoded
class DecodedVideo(VideoHandle):
    """A whole video held decoded in memory (uint8 [N, 3, H, W]); frames are served by indexing."""

    mode = "memory"

    def __init__(self, source: VideoHandle, frames: np.ndarray):
        self.path, self.num_frames, self.fps = source.path, int(frames.shape[0]), source.fps
        self.height, self.width, self.decoder = source.height, source.width, source.decoder
        self.frames = frames

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        wanted = self._check(indices)
        # fancy indexing copies (also for no index), so a sampler that edits its frames never touches the kept ones
        return torch.from_numpy(self.frames[np.asarray(wanted, dtype=np.intp)])


class SmallVideoCache:
    """Keeps small videos decoded, so a training pool sampled many times is decoded once per process.

    Training draws each pool video many times (TCE's 600 x 64 on the CPU table: ~72 samples per video), and
    at 32 px opening a video costs more than decoding the frames a sample needs: torchcodec's exact mode scans
    the file (~1 ms), then decodes 2 frames (~0.3 ms); indexing memory takes microseconds. A video whose
    decoded frames fit ``max_video_bytes`` is decoded whole on its first use and kept, until the process holds
    ``max_total_bytes``; nothing is evicted, and bigger videos (real datasets: a 16-frame 112 px clip is 0.6 MB,
    a prepared UCF101 video ~10 MB) are decoded on demand as before. Frames are bit-identical to decoding on
    demand (tests/data/test_video.py checks it on a generated set). A video that fails to decode whole (a bad
    frame the sample might not have asked for) is not kept: it is opened on demand, exactly as without the
    cache. Each DataLoader worker holds its own cache (``persistent_workers=False``: freed when the loader ends).
    """

    def __init__(self, max_video_bytes: int = 1 << 20, max_total_bytes: int = 256 << 20):
        self.max_video_bytes, self.max_total_bytes = max_video_bytes, max_total_bytes
        self.videos: dict[str, DecodedVideo] = {}
        self.uncached: set[str] = set()  # too big, over budget or not decodable whole: open on demand
        self.total_bytes = 0

    def open(self, path: str | os.PathLike, decoder: str = "auto") -> VideoHandle:
        key = str(path)
        if key in self.videos:
            return self.videos[key]
        video = open_video(key, decoder)
        if key in self.uncached:
            return video
        size = video.num_frames * 3 * video.height * video.width
        if size > self.max_video_bytes or self.total_bytes + size > self.max_total_bytes:
            self.uncached.add(key)
            return video
        try:
            frames = video.get_frames(range(video.num_frames)).numpy()
        except (VideoDecodeError, IndexError):
            self.uncached.add(key)
            video.close()
            return open_video(key, decoder)  # a fresh handle: the failed whole decode left nothing to reuse
        kept = DecodedVideo(video, frames)
        video.close()
        self.videos[key] = kept
        self.total_bytes += frames.nbytes
        return kept
