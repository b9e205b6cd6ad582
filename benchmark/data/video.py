"""Decoding: ``open_video(path, decoder) -> VideoHandle``; ``handle.get_frames(indices)`` -> uint8 [T, C, H, W].

    with open_video("v_Foo_g01_c01.avi") as video:       # or a folder of extracted frames
        clip = video.get_frames([4, 5, 6, 7])              # any order, repeats allowed

Decoders:

* ``pyav`` -- PyAV (bundled FFmpeg). Random access seeks to the keyframe at or
  before the first wanted frame and decodes forward only as far as the last
  one; runs of wanted frames far apart are reached by separate seeks. Frame
  numbers come from presentation timestamps, so a seek that lands elsewhere is
  noticed (the handle then falls back to decoding from the start). One
  decoding thread per handle (one per DataLoader worker).
* ``torchcodec`` -- used when ``import torchcodec`` works (it needs FFmpeg
  shared libraries on the system); exact seek mode, one thread.
* ``auto`` -- torchcodec when importable, else PyAV.

A directory is a pre-extracted frame folder (``frame000001.jpg``,
``img_00001.jpg``, ``*.png``; natural sort order), whatever the decoder.

Anything wrong with the file (missing, empty, truncated, not a video, an
undecodable frame) raises :class:`VideoDecodeError` with a short reason; the
training loader catches, counts and names it.
"""

from __future__ import annotations

import os
import re
import threading
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmark.errors import UserError, nearest

DECODERS = ("auto", "pyav", "torchcodec")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
FRAME_FOLDER_FPS = 25.0  # a frame folder records no rate; UCF101/HMDB51 frames are extracted at 25 fps
RESEEK_GAP = 16  # wanted frames further apart than this are reached by a new seek, not by decoding through
_SEEK_UNSAFE = {("avi", "h264"), ("avi", "hevc")}  # seeking returned wrong frames here: decode sequentially


class VideoDecodeError(Exception):
    """A video (or frame folder) could not be opened or decoded; the message is a short reason."""


def _short(exc: BaseException) -> str:
    """One short line: FFmpeg's reason without errno and path, else the first line of the message."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return str(text).splitlines()[0][:200]


# ====================================================================== common handle
class VideoHandle:
    """An open video. Attributes: ``path, num_frames, fps, height, width, decoder``."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    decoder: str = ""

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 [len(indices), 3, H, W] in the order asked; indices may repeat or be unsorted."""
        wanted = self._check(indices)
        if not wanted:
            return torch.empty((0, 3, self.height, self.width), dtype=torch.uint8)
        got = self._decode(sorted(set(wanted)))
        return torch.stack([got[i] for i in wanted])

    def _decode(self, unique_sorted: list[int]) -> dict[int, torch.Tensor]:
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

    def __enter__(self) -> "VideoHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}, frames={self.num_frames}, fps={self.fps:g}, "
                f"{self.width}x{self.height})")


# ====================================================================== PyAV
_FRAME_COUNT_CACHE: dict[tuple[str, int, int], int] = {}
_LOCAL = threading.local()


def _reformatter():
    """One swscale context per thread, reused: ``frame.to_ndarray(format="rgb24")`` builds a new one per
    frame, which costs ~1 ms (10x the conversion itself) at 64x64."""
    if not hasattr(_LOCAL, "reformatter"):
        from av.video.reformatter import VideoReformatter

        _LOCAL.reformatter = VideoReformatter()
    return _LOCAL.reformatter


class PyAVVideo(VideoHandle):
    decoder = "pyav"

    def __init__(self, path: str):
        self.path = str(path)
        self._container = None
        self._iter = None  # live frame iterator (after a seek or from the start)
        self._next = 0  # index of the frame the iterator yields next; -1 = unknown (just after a seek)
        self._fresh = True  # nothing decoded since opening: the start needs no reopen
        self._sequential = False
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
        codec = stream.codec_context.name or ""
        formats = {f.strip() for f in (self._container.format.name or "").split(",")}
        self._sequential = any((f, codec) in _SEEK_UNSAFE for f in formats)
        self.num_frames = int(stream.frames or 0) or self._count_frames()
        if self.num_frames <= 0:
            self.close()
            raise VideoDecodeError("video stream has no frames")

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

    def _count_frames(self) -> int:
        """Frame count by demuxing packets (no decoding), cached per (path, size, mtime)."""
        import av

        st = os.stat(self.path)
        key = (os.path.abspath(self.path), st.st_size, st.st_mtime_ns)
        if key not in _FRAME_COUNT_CACHE:
            try:
                n = sum(1 for packet in self._container.demux(self._stream) if packet.size > 0)
            except av.FFmpegError as exc:
                raise VideoDecodeError(f"cannot demux: {_short(exc)}") from None
            _FRAME_COUNT_CACHE[key] = n
            self._reopen()
        return _FRAME_COUNT_CACHE[key]

    def _reopen(self) -> None:
        self.close()
        self._open()

    def _frame_index(self, frame) -> int | None:
        pts = frame.pts
        if pts is None:
            return None
        return int(round(float((pts - self._start) * self._tb) * self.fps))

    def _position(self, index: int) -> None:
        """Start a frame iterator at or before ``index``: a keyframe seek, or the beginning in sequential mode."""
        import av

        self._iter = None
        if self._sequential or index == 0:
            if not self._fresh:
                self._reopen()
            self._next = 0
        else:
            target = self._start + int(round(index / self.fps / float(self._tb)))
            try:
                self._container.seek(target, backward=True, any_frame=False, stream=self._stream)
                self._next = -1  # unknown until the first frame's timestamp
            except av.FFmpegError:
                self._sequential = True
                self._reopen()
                self._next = 0
        self._fresh = False
        self._iter = self._container.decode(self._stream)

    def _pull(self):
        import av

        try:
            return next(self._iter)
        except StopIteration:
            return None
        except (av.FFmpegError, ValueError) as exc:
            self._iter = None
            raise VideoDecodeError(f"decode error: {_short(exc)}") from None

    def _go_sequential(self, index: int) -> None:
        """Timestamps can't be trusted (missing, gaps, a seek that overshot): count frames from the start."""
        self._sequential = True
        self._position(index)

    def _decode(self, wanted: list[int]) -> dict[int, torch.Tensor]:
        got: dict[int, torch.Tensor] = {}
        i = 0
        while i < len(wanted):
            first = wanted[i]
            reachable = self._iter is not None and 0 <= self._next <= first
            if not (reachable and (self._sequential or first - self._next <= RESEEK_GAP)):
                self._position(first)
            while i < len(wanted):
                frame = self._pull()
                if frame is None:
                    self._iter = None
                    raise VideoDecodeError(
                        f"frame {wanted[i]} not decodable: stream ended (header says {self.num_frames} frames)")
                if self._sequential:
                    idx = self._next
                else:
                    idx = self._frame_index(frame)
                    after_seek = self._next < 0
                    if idx is None or (after_seek and idx > wanted[i]) or (not after_seek and idx != self._next):
                        # no pts, a seek past the target, a gap or a step back: count from the start instead
                        self._go_sequential(wanted[i])
                        continue
                self._next = idx + 1
                if idx == wanted[i]:
                    got[idx] = self._to_tensor(frame)
                    i += 1
                if i < len(wanted) and not self._sequential and wanted[i] - self._next > RESEEK_GAP:
                    break  # far ahead: a new seek is cheaper than decoding through
        return got

    def _to_tensor(self, frame) -> torch.Tensor:
        try:
            rgb = _reformatter().reformat(frame, width=self.width, height=self.height, format="rgb24")
            arr = rgb.to_ndarray()
        except Exception as exc:  # noqa: BLE001 -- any conversion failure is a bad frame
            raise VideoDecodeError(f"frame conversion failed: {_short(exc)}") from None
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

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
    decoder = "torchcodec"

    def __init__(self, path: str):
        from torchcodec.decoders import VideoDecoder

        self.path = str(path)
        p = Path(self.path)
        if not p.exists():
            raise VideoDecodeError("file not found")
        if p.stat().st_size == 0:
            raise VideoDecodeError("empty file (0 bytes)")
        try:
            self._dec = VideoDecoder(self.path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NCHW")
            md = self._dec.metadata
            self.num_frames = int(md.num_frames or len(self._dec))
            self.fps = float(md.average_fps or 0.0) or FRAME_FOLDER_FPS
            self.height, self.width = int(md.height), int(md.width)
        except Exception as exc:  # noqa: BLE001 -- torchcodec raises RuntimeError/ValueError
            raise VideoDecodeError(f"cannot open: {_short(exc)}") from None
        if self.num_frames <= 0:
            raise VideoDecodeError("video stream has no frames")

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

    def _decode(self, wanted: list[int]) -> dict[int, torch.Tensor]:
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
            out[i] = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()
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
            raise UserError(f"torchcodec is not available: {reason} (pip install torchcodec; it needs FFmpeg "
                            "shared libraries) -- or use decoder=pyav")
    return decoder


def open_video(path: str | os.PathLike, decoder: str = "auto") -> VideoHandle:
    """Open a video file or a frame folder. Use as a context manager, or call ``close()``."""
    name = resolve_decoder(decoder)
    if os.path.isdir(path):
        return FrameFolderVideo(str(path))
    if name == "torchcodec":
        return TorchCodecVideo(str(path))
    return PyAVVideo(str(path))
