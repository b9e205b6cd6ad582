"""Test-time views, BatchNorm folding, skipping undecodable videos, and the feature cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.backbones import build_backbone
from benchmark.config import BackboneConfig
from benchmark.data.index import build_index
from benchmark.data.samplers import build_sampler
from benchmark.data.video import open_video
from benchmark.device import resolve_runtime
from benchmark.evaluation.features import (
    EvalVideos,
    ViewSpec,
    extract,
    fold_batchnorm,
    inference_copy,
    normalise_hwc,
    spatial_crops,
    video_outputs,
)
from benchmark.paths import DatasetLocation


def test_frame_indices():
    assert ViewSpec("2d", 4, 32).frame_indices(32) == [4, 12, 20, 28]
    clips = ViewSpec("3d", 3, 32, clip_len=4, stride=2).frame_indices(32)
    assert clips == [0, 2, 4, 6, 12, 14, 16, 18, 25, 27, 29, 31]  # starts 0, 12.5 -> 12, 25
    assert ViewSpec("3d", 2, 32, clip_len=8, stride=2).frame_indices(10) == [0, 2, 4, 6, 8, 0, 2, 4] * 2  # loop-padded


def test_offsets_decode_each_frame_with_the_frames_after_it(tiny_synth):
    assert ViewSpec("2d", 4, 32, offsets=(0, 1)).frame_indices(32) == [4, 5, 12, 13, 20, 21, 28, 29]
    assert ViewSpec("2d", 2, 32, offsets=(0, 2, 4)).frame_indices(16) == [4, 6, 8, 12, 14, 0]  # loop-padded
    for bad in [(), (1,), (0, -1)]:
        with pytest.raises(ValueError, match="offsets"):
            ViewSpec("2d", 4, 32, offsets=bad)
    with pytest.raises(ValueError, match="2D only"):
        ViewSpec("3d", 2, 32, clip_len=4, offsets=(0, 1))
    record = build_index(DatasetLocation("t", tiny_synth, "ucf101"), subset="test").records[0]
    spec = ViewSpec("2d", 3, 32, crops=3, offsets=(0, 1))
    item = EvalVideos([record], spec)[0]
    assert item["views"].shape == (9, 2, 32, 32, 3)  # [crops x frames, K, r, r, C]
    with open_video(record.path) as video:
        frames = video.get_frames(spec.frame_indices(video.num_frames))  # [3 x 2, C, H, W]
    expected = spatial_crops(frames, 32, 3).movedim(-3, -1).reshape(9, 2, 32, 32, 3)
    assert torch.equal(item["views"], expected)
    assert spec.entry_fields()["frames_seen"] == 6


def test_views_equal_the_registered_eval_sampler(tiny_synth):
    record = build_index(DatasetLocation("t", tiny_synth, "ucf101"), subset="test").records[0]
    item = EvalVideos([record], ViewSpec("2d", 4, 24))[0]  # 32 px video -> resize to 24 (a real resize)
    views = normalise_hwc(item["views"][None])[0]
    with open_video(record.path) as video:
        expected = build_sampler("frames", 24, train=False, count=4)(video, np.random.default_rng(0))["frames"]
    assert views.shape == expected.shape == (4, 3, 24, 24)
    assert torch.allclose(views, expected, atol=1e-5)


def test_three_crops_along_the_long_side():
    frames = torch.arange(2 * 3 * 4 * 6, dtype=torch.uint8).view(2, 3, 4, 6)  # H=4 < W=6
    crops = spatial_crops(frames, 4, 3)
    assert crops.shape == (3, 2, 3, 4, 4)
    for crop, left in zip(crops, (0, 1, 2), strict=True):
        assert torch.equal(crop, frames[..., left : left + 4])


@pytest.mark.parametrize(
    "name,inflate,shape", [("resnet10t", False, (2, 3, 3, 32, 32)), ("resnet10t", True, (2, 1, 4, 3, 32, 32))]
)
def test_batchnorm_folding_keeps_outputs(name, inflate, shape):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(name=name, inflate=inflate, zero_init_last=False))
    with torch.no_grad():  # non-trivial running statistics
        for m in backbone.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    backbone.eval()
    x = torch.randn(shape)
    folded = fold_batchnorm(backbone)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in folded.modules())
    with torch.inference_mode():
        assert torch.allclose(folded(x), backbone(x), rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in backbone.modules())  # folded a copy


def test_inference_copy_falls_back_when_folding_would_change_outputs():
    class BnFirst(torch.nn.Module):  # registered conv -> bn, executed bn -> conv: folding must not be used
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.bn = torch.nn.BatchNorm2d(3)
            self.bn.running_mean.fill_(2.0)

        def forward(self, x):
            return self.conv(self.bn(x))

    model = BnFirst().eval()
    x = torch.randn(2, 3, 4, 4)
    copy = inference_copy(model, x)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
    assert torch.allclose(copy(x), model(x))


def _corrupt_copy(tiny_synth, tmp_path):
    root = tmp_path / "synthetic"
    shutil.copytree(tiny_synth, root, ignore=shutil.ignore_patterns("pool"))
    index = build_index(DatasetLocation("t", root, "ucf101"), subset="test")
    bad = index.records[1]
    Path(bad.path).write_bytes(b"RIFF\0\0\0\0AVI not really")  # (FFmpeg decodes a zeroed header: be blunter)
    return index.records, bad


def test_bad_video_is_skipped_not_replaced(tiny_synth, tmp_path):
    records, bad = _corrupt_copy(tiny_synth, tmp_path)
    ctx = resolve_runtime("cpu", "fp32", True)

    def fn(views):  # per view: its mean pixel
        return views.float().flatten(2).mean(-1, keepdim=True)

    out = video_outputs(fn, records, ViewSpec("2d", 2, 32), ctx, frames_per_batch=4, progress_bar=False)
    assert [b["video_id"] for b in out.bad] == [bad.video_id] and out.bad[0]["reason"]
    good = [r for r in records if r is not bad]
    assert out.video_ids == [r.video_id for r in good] and out.y.tolist() == [r.label for r in good]
    assert len(out.x) == len(good)


def test_extract_caches_by_checkpoint(tiny_synth, tmp_path):
    records = build_index(DatasetLocation("t", tiny_synth, "ucf101"), subset="test").records
    backbone = build_backbone(BackboneConfig()).eval()
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"one")
    ctx = resolve_runtime("cpu", "fp32", True)
    spec = ViewSpec("2d", 2, 32)
    first = extract(backbone, records, spec, ctx, ckpt, tmp_path / "cache", progress_bar=False)
    assert len(list((tmp_path / "cache").glob("features-*.pt"))) == 1

    class Exploding(torch.nn.Module):
        kind, num_features = "2d", 1

        def forward(self, x):
            raise AssertionError("the cache should have answered")

    again = extract(Exploding(), records, spec, ctx, ckpt, tmp_path / "cache", progress_bar=False)
    assert torch.equal(again.x, first.x) and again.video_ids == first.video_ids
    ckpt.write_bytes(b"a new checkpoint")  # another checkpoint: another key
    with pytest.raises(AssertionError, match="cache should have answered"):
        extract(Exploding(), records, spec, ctx, ckpt, tmp_path / "cache", progress_bar=False)


def test_a_video_replaced_under_its_name_is_not_served_from_the_cache(tiny_synth, tmp_path):
    """Cached features once outlived the videos they came from: a test set re-encoded (or repaired after
    check-data) under the same names scored its old features. The key holds each video's size and mtime; a frame
    folder's time, image count and its first, middle and last images'."""
    import dataclasses
    import os

    from benchmark.evaluation.features import cache_key, content_stamp

    records = build_index(DatasetLocation("t", tiny_synth, "ucf101"), subset="test").records[:2]
    copies = []
    for r in records:
        dst = tmp_path / "set" / Path(r.path).name
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(r.path, dst)
        copies.append(dataclasses.replace(r, path=str(dst)))
    spec, ckpt = ViewSpec("2d", 2, 32), tmp_path / "last.pt"
    ckpt.write_bytes(b"one")
    before = cache_key(ckpt, copies, spec, "pyav")
    assert cache_key(ckpt, copies, spec, "pyav") == before  # stable while nothing changes
    os.utime(copies[1].path, ns=(1, 1))  # replaced: another modification time
    assert cache_key(ckpt, copies, spec, "pyav") != before
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(5):
        (frames / f"f{i}.jpg").write_bytes(b"x" * (i + 1))
    stamp = content_stamp(frames)
    (frames / "f2.jpg").write_bytes(b"yyy!")  # the middle image rewritten in place (the folder's time stays)
    assert content_stamp(frames) != stamp
    assert content_stamp(tmp_path / "gone.avi") == "missing"


def test_the_feature_cache_key_changes_with_everything_that_changes_the_features(tmp_path):
    """A cached feature file may only be served for the same checkpoint bytes (a same-size rewrite too: the usual
    case for one architecture), the same test-time views, decoder and encoder."""
    import os

    from benchmark.evaluation.features import ViewSpec, cache_key

    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"a" * 64)
    spec = ViewSpec("2d", count=4, resolution=32)
    key = cache_key(ckpt, [], spec, "pyav")
    assert cache_key(ckpt, [], spec, "pyav") == key
    others = [
        cache_key(ckpt, [], ViewSpec("2d", count=8, resolution=32), "pyav"),
        cache_key(ckpt, [], ViewSpec("2d", count=4, resolution=32, crops=3), "pyav"),
        cache_key(ckpt, [], spec, "torchcodec"),
        cache_key(ckpt, [], spec, "pyav", encoder="flow"),
    ]
    st = ckpt.stat()
    ckpt.write_bytes(b"b" * 64)  # same size, rewritten later
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    others.append(cache_key(ckpt, [], spec, "pyav"))
    assert len({key, *others}) == 1 + len(others)
