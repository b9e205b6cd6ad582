"""Decoding: frame-exact random access, repeatability, errors, frame folders, missing metadata."""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from benchmark.data import video as video_mod
from benchmark.data.synthetic import encode_avi
from benchmark.data.video import FrameFolderVideo, VideoDecodeError, open_video, torchcodec_status
from benchmark.errors import UserError


def full_decode(path: Path) -> torch.Tensor:
    """Reference: every frame, decoded sequentially with plain PyAV."""
    with av.open(str(path)) as container:
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in container.decode(video=0)]
    return torch.stack(frames)


@pytest.fixture(scope="module")
def some_videos(tiny_synth: Path) -> list[Path]:
    files = sorted(tiny_synth.glob("*/*.avi"))
    return files[:: max(1, len(files) // 4)][:4]


def test_handle_attributes(some_videos, tiny_synth_config):
    with open_video(some_videos[0], "pyav") as v:
        assert (v.num_frames, v.fps, v.height, v.width) == (
            tiny_synth_config.frames, tiny_synth_config.fps, tiny_synth_config.size, tiny_synth_config.size)
        assert v.path == str(some_videos[0])
    v = open_video(some_videos[0])  # usable without `with`
    assert v.get_frames([0]).shape == (1, 3, tiny_synth_config.size, tiny_synth_config.size)
    v.close()


def test_random_access_is_frame_exact(some_videos):
    rng = random.Random(0)
    for path in some_videos:
        ref = full_decode(path)
        n = len(ref)
        with open_video(path, "pyav") as v:
            assert v.num_frames == n
            cases = [[n - 1, 0, n // 2, 0], list(range(n)), list(range(n))[::-1], [3, 3, 3]]
            cases += [[rng.randrange(n) for _ in range(rng.randint(1, 10))] for _ in range(12)]
            for idx in cases:  # reused handle: continuing, re-seeking backwards and forwards
                out = v.get_frames(idx)
                assert out.dtype == torch.uint8 and out.shape == (len(idx), 3, v.height, v.width)
                assert torch.equal(out, ref[idx]), idx
        for idx in cases[-5:]:  # fresh handles
            with open_video(path, "pyav") as v:
                assert torch.equal(v.get_frames(np.array(idx)), ref[idx])


def test_same_clip_twice_is_identical(some_videos):
    with open_video(some_videos[1], "pyav") as v:
        a = v.get_frames([5, 6, 7, 8])
        b = v.get_frames([5, 6, 7, 8])
    with open_video(some_videos[1], "pyav") as v:
        c = v.get_frames([5, 6, 7, 8])
    assert torch.equal(a, b) and torch.equal(a, c)


def test_far_apart_indices_use_separate_seeks(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (80, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "long.avi"
    encode_avi(path, frames, fps=25, gop_size=8)
    ref = full_decode(path)
    with open_video(path, "pyav") as v:
        assert torch.equal(v.get_frames([79, 2, 40, 41]), ref[[79, 2, 40, 41]])


def test_sequential_mode_matches(some_videos):
    ref = full_decode(some_videos[0])
    with open_video(some_videos[0], "pyav") as v:
        v._sequential = True  # the fallback used for h264-in-avi and untrustworthy timestamps
        for idx in ([9, 1], [15, 14, 0], [4]):
            assert torch.equal(v.get_frames(idx), ref[idx])


def test_missing_frame_count_is_counted(tmp_path, some_videos):
    """Matroska stores no frame count: it is counted by demuxing, and pts are in milliseconds."""
    ref = full_decode(some_videos[0])
    mkv = tmp_path / "v.mkv"
    with av.open(str(some_videos[0])) as src, av.open(str(mkv), "w", format="matroska") as dst:
        s_in = src.streams.video[0]
        s_out = dst.add_stream_from_template(s_in)
        for packet in src.demux(s_in):
            if packet.dts is None:
                continue
            packet.stream = s_out
            dst.mux(packet)
    with av.open(str(mkv)) as c:
        assert c.streams.video[0].frames == 0
    with open_video(mkv, "pyav") as v:
        assert v.num_frames == len(ref)
        for idx in ([len(ref) - 1, 0], [7, 8, 9], [12, 3, 3]):
            assert torch.equal(v.get_frames(idx), ref[idx])


def test_out_of_range_index(some_videos):
    with open_video(some_videos[0], "pyav") as v, pytest.raises(IndexError):
        v.get_frames([v.num_frames])


@pytest.mark.parametrize("kind", ["missing", "zero", "text", "random", "truncated"])
def test_bad_files_raise_decode_error(tmp_path, some_videos, kind):
    path = tmp_path / "bad.avi"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = some_videos[0].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError) as info:
        with open_video(path, "pyav") as v:
            v.get_frames(range(v.num_frames))
    assert str(info.value) and "\n" not in str(info.value)


def test_frame_folder_reads_same_frames(tmp_path, some_videos):
    from PIL import Image

    ref = full_decode(some_videos[2])
    folder = tmp_path / "v_Foo_g01_c01"
    folder.mkdir()
    for i, frame in enumerate(ref):  # lossless extraction, 1-based names like UCF101 frame dumps
        Image.fromarray(frame.permute(1, 2, 0).numpy()).save(folder / f"frame{i + 1:06d}.png")
    (folder / "notes.txt").write_text("ignored")
    for decoder in ("auto", "pyav"):
        with open_video(folder, decoder) as v:
            assert isinstance(v, FrameFolderVideo)
            assert (v.num_frames, v.height, v.width) == (len(ref), ref.shape[2], ref.shape[3])
            for idx in ([0, 1, 2], [len(ref) - 1, 4, 4, 0]):
                assert torch.equal(v.get_frames(idx), ref[idx])


def test_frame_folder_natural_order_and_errors(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):  # img_1, img_2, img_10: natural order, not lexicographic
        Image.new("RGB", (8, 6), (i, 0, 0)).save(folder / f"img_{i}.png")
    with open_video(folder) as v:
        assert v.get_frames([0, 1, 2])[:, 0, 0, 0].tolist() == [1, 2, 10]
    (folder / "img_11.jpg").write_bytes(b"not a jpeg")
    with open_video(folder) as v, pytest.raises(VideoDecodeError):
        v.get_frames([3])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoDecodeError):
        open_video(empty)


def test_decoder_names(some_videos, monkeypatch):
    with pytest.raises(UserError, match="unknown decoder"):
        open_video(some_videos[0], "pyAV2")
    monkeypatch.setattr(video_mod, "_TORCHCODEC", {"ok": False, "reason": "No module named 'torchcodec'"})
    with pytest.raises(UserError, match="torchcodec is not available"):
        open_video(some_videos[0], "torchcodec")
    with open_video(some_videos[0], "auto") as v:
        assert v.decoder == "pyav"


@pytest.mark.skipif(not torchcodec_status()[0], reason="torchcodec not importable here")
def test_torchcodec_matches_pyav(some_videos):
    for path in some_videos[:2]:
        with open_video(path, "pyav") as a, open_video(path, "torchcodec") as b:
            assert (a.num_frames, a.height, a.width) == (b.num_frames, b.height, b.width)
            idx = [7, 0, 3, 3]
            diff = (a.get_frames(idx).int() - b.get_frames(idx).int()).abs()
            assert diff.float().mean() < 2  # colour conversion may round differently
