"""vssl bench data: its measuring functions on small generated videos (the full run is `vssl bench data`)."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.video import open_video
from benchmark.perf import data as bench


@pytest.mark.slow
def test_generated_videos_and_measurements(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the benchmark measures (one thread, like a DataLoader worker)
    try:
        _measure(tmp_path)
    finally:
        torch.set_num_threads(before)


def _measure(tmp_path):
    video = bench.write_video(tmp_path / "u.avi", "mpeg4", 12, size=(64, 48), seconds=2)
    h264 = bench.write_video(tmp_path / "h.mp4", "libx264", 50, size=(64, 48), seconds=2)
    with open_video(video, "pyav") as v, open_video(h264, "pyav") as h:
        assert (v.num_frames, v.width, v.height, h.num_frames) == (50, 64, 48, 50)
    frames = bench.extract_jpegs(video, tmp_path / "jpeg")
    assert len(list(frames.glob("frame*.jpg"))) == 50
    r = bench.clip_vs_full([video], "pyav", clips=3)
    assert 0 < r["clip_ms"] and r["ratio"] > 0 and r["full_ms"] > 0
    j = bench.video_vs_jpeg([video], [frames], "pyav", clips=3)
    assert j["video_ms"] > 0 and j["jpeg_ms"] > 0
    rates = bench.sampler_rates([video], "pyav", 16, seconds=0.05)
    assert {"clip", "frame_pair"} <= set(rates) and all(v > 0 for v in rates.values())
    small = bench.write_video(tmp_path / "s.avi", "mpeg4", 12, size=(32, 32), seconds=1)  # 25 frames, 77 KB decoded
    kept = bench.kept_decoded_rates([small, video], "pyav", resolution=16, reads=2)
    assert kept["on_demand"] > 0 and kept["kept"] > 0 and kept["ratio"] > 0 and kept["reads_per_video"] == 2


def test_verdict_lines():
    figures = {
        "access": {
            "ucf-like mpeg4 avi (gop 12) / pyav": {"clip_ms": 5.0, "full_ms": 100.0, "ratio": 20.0},
            "ucf-like h264 mp4 (gop 250) / pyav": {"clip_ms": 50.0, "full_ms": 100.0, "ratio": 2.0},
        },
        "video_vs_jpeg": {"pyav": {"video_ms": 6.0, "jpeg_ms": 5.0}},
        "demo_data_wait": [
            {"num_workers": 0, "data_wait_fraction": 0.35},
            {"num_workers": 1, "data_wait_fraction": 0.02},
        ],
    }
    lines = bench._verdict(figures)
    assert len(lines) == 4
    assert "20.0x" in lines[0] and "met" in lines[0] and "NOT" not in lines[0]
    assert "NOT met" in lines[1] and "NOT met" in lines[2] and "NOT" not in lines[3]
