"""Decoding: frame-exact random access, repeatability, errors, frame folders, missing metadata."""

from __future__ import annotations

import os
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
from tests.data import fixtures


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
            tiny_synth_config.frames,
            tiny_synth_config.fps,
            tiny_synth_config.size,
            tiny_synth_config.size,
        )
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
        v.mode = "sequential"  # the fallback used for h264-in-avi and untrustworthy timestamps
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


# ---------------------------------------------------------------------- both decoders, odd files
def _decoders() -> list:
    """pyav always; torchcodec where importable -- and, under VSSL_REQUIRE_TORCHCODEC=1 (CI), a failure
    instead of a skip when it is not."""
    ok, reason = torchcodec_status()
    required = os.environ.get("VSSL_REQUIRE_TORCHCODEC") == "1"
    marks = [] if ok or required else [pytest.mark.skip(reason=f"torchcodec not importable: {reason}")]
    return ["pyav", pytest.param("torchcodec", marks=marks)]


DECODERS = _decoders()
SUFFIX = {"h264_avi": ".avi", "vfr_mp4": ".mp4", "vfr_mkv": ".mkv", "h264_mp4_sparse": ".mp4", "short": ".avi"}
EXPECTED_PYAV_MODE = {
    "mpeg4_avi": "grid",
    "h264_avi": "sequential",
    "vfr_mp4": "table",
    "vfr_mkv": "table",
    "h264_mp4_sparse": "grid",
    "short": "grid",
}


@pytest.fixture(scope="module")
def odd_videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("odd")
    out = {kind: fixtures.write_odd(folder / f"{kind}{SUFFIX[kind]}", kind) for kind in fixtures.ODD_KINDS}
    out["mpeg4_avi"] = fixtures.write_video(folder / "mpeg4.avi", 40, gop=6)
    return out


def _index_patterns(n: int, rng: random.Random) -> list[list[int]]:
    """What samplers ask for: contiguous and strided clips, pairs, evenly spaced frames, segments, random."""
    pats = [list(range(n)), list(range(n))[::-1], [n - 1, 0], [0, n - 1, n // 2, n // 2]]
    for _ in range(6):
        s = rng.randrange(max(1, n - 8))
        pats.append(list(range(s, min(n, s + 8))))  # clip
        pats.append(list(range(s, n, 2))[:4])  # strided clip
        pats.append(sorted({s, min(n - 1, s + rng.randint(1, 4))}))  # frame pair
    pats.append([int((k + 0.5) * n / 5) for k in range(5)])  # evenly spaced
    pats += [[rng.randrange(n) for _ in range(rng.randint(1, 9))] for _ in range(6)]
    return pats


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("kind", ["mpeg4_avi", *fixtures.ODD_KINDS])
def test_clips_are_frame_exact_for_every_decoder(odd_videos, kind, decoder):
    path = odd_videos[kind]
    ref = fixtures.full_decode(path)
    with open_video(path, decoder) as v:
        assert v.num_frames == len(ref)
        if decoder == "pyav" or kind == "h264_avi":  # torchcodec hands h264-in-AVI to PyAV's sequential mode
            assert v.mode == EXPECTED_PYAV_MODE[kind]
        for idx in _index_patterns(len(ref), random.Random(kind)):  # one handle: forwards, backwards, reseeks
            assert torch.equal(v.get_frames(idx), ref[idx]), (kind, decoder, idx)


@pytest.mark.parametrize("decoder", DECODERS)
def test_every_registered_sampler_reads_exact_frames(odd_videos, decoder):
    """Each sampler's frame requests, replayed on a recording handle, equal the full decode's frames."""
    from benchmark.data.samplers import build_sampler
    from benchmark.registry import SAMPLERS

    path = odd_videos["mpeg4_avi"]
    ref = fixtures.full_decode(path)
    ran = 0
    for name in SAMPLERS.names():
        try:
            sampler = build_sampler(name, resolution=16, train=True)
        except TypeError:
            continue  # a sampler with required options
        with open_video(path, decoder) as v:
            asked = []
            real = v.get_frames

            def recording(indices, real=real, asked=asked):
                out = real(indices)
                asked.append((list(indices), out))
                return out

            v.get_frames = recording
            sampler(v, np.random.default_rng(0))
        assert asked, name
        for idx, out in asked:
            assert torch.equal(out, ref[idx]), (name, idx)
        ran += 1
    assert ran >= 3


@pytest.mark.parametrize("decoder", DECODERS)
def test_decoders_agree_at_ucf_size(tmp_path, decoder):
    """320x240 mpeg4 (UCF101's format): same frames from torchcodec and PyAV, pixel for pixel."""
    path = fixtures.write_video(tmp_path / "v.avi", 30, size=(320, 240), gop=12)
    ref = fixtures.full_decode(path)
    with open_video(path, decoder) as v:
        assert (v.width, v.height, v.num_frames) == (320, 240, 30)
        assert torch.equal(v.get_frames([17, 3, 29, 4]), ref[[17, 3, 29, 4]])


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_file_name_that_is_not_utf8_decodes(tmp_path, decoder):
    """caf\\xe9.avi written by a Latin-1 system: Python keeps the byte as a surrogate, which torchcodec's path
    argument refuses ('Expected a value of type str'), so the handle reads the open file instead."""
    plain = fixtures.write_video(tmp_path / "plain.avi", 12, gop=4)
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.avi")
    os.rename(plain, odd)
    ref = fixtures.full_decode(odd)
    with open_video(odd, decoder) as v:
        assert v.num_frames == 12
        assert torch.equal(v.get_frames([7, 0, 11]), ref[[7, 0, 11]])


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("kind", ["missing", *fixtures.BROKEN_KINDS])
def test_bad_files_raise_for_every_decoder(tmp_path, kind, decoder):
    path = tmp_path / "bad.avi"
    if kind != "missing":
        fixtures.write_broken(path, kind)
    with pytest.raises(VideoDecodeError) as info:
        with open_video(path, decoder) as v:
            v.get_frames(range(v.num_frames))
    assert str(info.value) and "\n" not in str(info.value)


def test_seek_that_goes_wrong_falls_back_and_is_remembered(odd_videos, monkeypatch):
    """A grid-mode file whose seeks land past the target: detected, decoded from the start, remembered."""
    path = odd_videos["mpeg4_avi"]
    ref = fixtures.full_decode(path)
    monkeypatch.setattr(video_mod, "_SEQUENTIAL_FILES", set())
    with open_video(path, "pyav") as v:
        v._seek_pts = lambda index: v._start + int(round(min(v.num_frames - 1, index + 12) / v.fps / float(v._tb)))
        assert torch.equal(v.get_frames([20, 21, 5]), ref[[20, 21, 5]])
        assert v.mode in ("table", "sequential")
        v._seek_pts = lambda index: v._timeline.pts[min(v.num_frames - 1, index + 12)] if v._timeline else 0
        assert torch.equal(v.get_frames([22, 3]), ref[[22, 3]])
        assert v.mode == "sequential"
    with open_video(path, "pyav") as v:
        assert v.mode == "sequential"


def test_torchcodec_required_in_ci():
    """CI sets VSSL_REQUIRE_TORCHCODEC=1: the setup must have made torchcodec importable there."""
    if os.environ.get("VSSL_REQUIRE_TORCHCODEC") != "1":
        pytest.skip("VSSL_REQUIRE_TORCHCODEC is not set")
    ok, reason = torchcodec_status()
    assert ok, f"torchcodec not importable: {reason} (scripts/install_system_deps.sh installs it)"


# ---------------------------------------------------------------------- small videos kept decoded
@pytest.mark.parametrize("decoder", DECODERS)
def test_kept_videos_serve_the_frames_decoding_would(odd_videos, decoder):
    """SmallVideoCache: every index pattern a sampler asks for, bit-identical to the full decode, from memory
    after the first open (and the frames handed out are copies: editing them never changes the kept ones)."""
    cache = video_mod.SmallVideoCache()
    for kind in ["mpeg4_avi", *fixtures.ODD_KINDS]:
        path = odd_videos[kind]
        ref = fixtures.full_decode(path)
        for _ in range(2):  # first open decodes the whole video, the second serves it from memory
            with cache.open(path, decoder) as v:
                assert v.num_frames == len(ref) and (v.height, v.width) == tuple(ref.shape[-2:])
                for idx in _index_patterns(len(ref), random.Random(kind)):
                    got = v.get_frames(idx)
                    assert torch.equal(got, ref[idx]), (kind, decoder, idx)
                    got.zero_()
                assert v.get_frames([]).shape == (0, 3, *ref.shape[-2:])
                with pytest.raises(IndexError):
                    v.get_frames([len(ref)])
        assert cache.open(path, decoder) is cache.open(path, decoder)  # kept: no second decode
    assert cache.total_bytes == sum(v.frames.nbytes for v in cache.videos.values()) > 0


def test_cache_keeps_only_small_videos_within_its_budget(odd_videos):
    one = fixtures.full_decode(odd_videos["mpeg4_avi"])
    size = one.numel()
    too_small = video_mod.SmallVideoCache(max_video_bytes=size - 1)
    assert too_small.open(odd_videos["mpeg4_avi"]).mode != "memory"  # bigger than one video may be: on demand
    assert not too_small.videos and str(odd_videos["mpeg4_avi"]) in too_small.uncached
    budget = video_mod.SmallVideoCache(max_total_bytes=size)
    assert budget.open(odd_videos["mpeg4_avi"]).mode == "memory"
    others = [k for k in fixtures.ODD_KINDS if fixtures.full_decode(odd_videos[k]).numel() > 0]
    assert all(budget.open(odd_videos[k]).mode != "memory" for k in others)  # the budget is spent
    assert budget.total_bytes == size


def test_cache_opens_a_video_that_does_not_decode_whole_on_demand(tmp_path, odd_videos, monkeypatch):
    """A bad frame the sample would not have asked for must not change what the loader sees: the video is not
    kept, and the handle returned decodes on demand as without the cache; broken files still raise."""
    path = odd_videos["mpeg4_avi"]
    real = video_mod.PyAVVideo.get_frames

    def fail_on_last_frame(self, indices):
        if self.num_frames - 1 in list(indices):
            raise VideoDecodeError("decode error: a bad frame")
        return real(self, indices)

    monkeypatch.setattr(video_mod.PyAVVideo, "get_frames", fail_on_last_frame)
    cache = video_mod.SmallVideoCache()
    with cache.open(path, "pyav") as v:
        assert v.mode != "memory" and torch.equal(v.get_frames([0, 1]), fixtures.full_decode(path)[[0, 1]])
    assert not cache.videos and str(path) in cache.uncached
    broken = fixtures.write_broken(tmp_path / "zero.avi", "zero")
    with pytest.raises(VideoDecodeError):
        cache.open(broken, "pyav")


def test_training_samples_are_the_same_with_videos_kept_decoded(synth_data_home):
    """The training loader keeps videos decoded (train.py); every sample equals the one decoded on demand."""
    from benchmark.data.index import build_index
    from benchmark.data.loader import SampledVideos
    from benchmark.data.samplers import build_sampler

    records = build_index("synthetic").records[:6]
    sampler = build_sampler("frame_pair", 16, train=True)
    plain = SampledVideos(records, sampler, seed=3)
    kept = SampledVideos(records, sampler, seed=3, keep_decoded=True)
    for address in [(step, slot, (step * 4 + slot) % 6) for step in range(3) for slot in range(4)]:
        a, b = plain[address], kept[address]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key], key
    assert len(kept._cache.videos) == 6
