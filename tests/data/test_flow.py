"""Optical flow on the fly (benchmark/data/flow.py): a known motion is recovered, with the documented signs, by
both algorithms and through the samplers that use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.flow import (
    FlowConfig,
    FrameFlow,
    encode_flow,
    frame_difference,
    optical_flow,
    view2_channels,
)


def texture(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture, float [size, size] in 0..255: every pixel has a gradient for flow to track."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (size, size)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 230 + 10


def translating_video(frames: int, size: int, dx: int, dy: int) -> torch.Tensor:
    """uint8 [T, 3, size, size]: a texture translated by (dx, dy) px per frame (content moves right/down for +)."""
    big = texture(size + 2 * (frames * max(abs(dx), abs(dy)) + 8))
    o = (len(big) - size) // 2
    out = [big[o - k * dy : o - k * dy + size, o - k * dx : o - k * dx + size] for k in range(frames)]
    return torch.from_numpy(np.stack(out).astype(np.uint8))[:, None].expand(-1, 3, -1, -1).contiguous()


class TensorVideo:
    def __init__(self, frames: torch.Tensor):
        self.frames = frames
        self.num_frames, self.fps = len(frames), 25.0
        self.height, self.width = frames.shape[-2:]

    def get_frames(self, indices):
        return self.frames[list(indices)]


@pytest.mark.parametrize("algorithm", ["farneback", "dis"])
@pytest.mark.parametrize("size", [32, 64])
def test_flow_recovers_a_known_translation(algorithm, size):
    video = translating_video(3, size, dx=2, dy=-1)
    flow = optical_flow(video, FlowConfig(algorithm))
    assert flow.shape == (2, 2, size, size) and flow.dtype == torch.float32
    centre = flow[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4]
    assert centre[:, 0].mean().item() == pytest.approx(2.0, abs=0.1)  # u: + right
    assert centre[:, 1].mean().item() == pytest.approx(-1.0, abs=0.1)  # v: + down, so -1 is up


def test_a_still_video_has_no_flow():
    video = translating_video(2, 32, 0, 0)
    assert optical_flow(video, FlowConfig("dis")).abs().max().item() == 0
    flow = optical_flow(video)  # Farneback's polynomial fit leaves a little noise at the borders
    assert flow.abs().mean().item() < 0.02 and flow[..., 4:-4, 4:-4].abs().max().item() < 0.05


def test_encoding_scales_and_clips():
    flow = torch.tensor([3.0, -4.0]).view(2, 1, 1)
    uv = encode_flow(flow, bound=2.0, encoding="uv")
    assert uv.flatten().tolist() == [1.0, -1.0]  # clipped to [-1, 1]
    uvm = encode_flow(flow * 0.1, bound=2.0, encoding="uvm")  # (0.3, -0.4): |f| = 0.5
    assert uvm.flatten().tolist() == pytest.approx([0.15, -0.2, 2 * 0.25 - 1])


def test_frame_difference_is_the_signed_rgb_difference():
    frames = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    frames[1, 0] = 255
    diff = frame_difference(frames)
    assert diff.shape == (1, 3, 4, 4) and diff[0, 0].eq(1).all() and diff[0, 1:].eq(0).all()


@pytest.mark.parametrize(("view2", "stack", "encoding", "channels"),
                         [("flow", 1, "uv", 2), ("flow", 3, "uv", 6), ("flow", 1, "uvm", 3), ("frame", 1, "uv", 3),
                          ("difference", 1, "uv", 3)])  # fmt: skip
def test_frame_flow_sample_shapes(view2, stack, encoding, channels):
    sampler = FrameFlow(resolution=32, view2=view2, flow_stack=stack, encoding=encoding)
    sample = sampler(TensorVideo(translating_video(12, 40, 1, 0)), np.random.default_rng(0))
    assert sample["frame"].shape == (3, 32, 32) and sample["frame"].dtype == torch.float32
    assert sample["view2"].shape == (channels, 32, 32) == (view2_channels(view2, stack, encoding), 32, 32)


def test_the_ventral_pair_crops_shared_or_independent():
    """A still video with no colour augmentation: a shared crop shows both frames the same pixels; independent
    crops (``shared_crop=False``, CMC's ``crop: independent``) show them different places. Motion views refuse it."""
    from benchmark.data.transforms import AugmentConfig

    still = TensorVideo(translating_video(1, 48, 0, 0).expand(8, -1, -1, -1).contiguous())
    no_colour = AugmentConfig(crop_scale=(0.3, 1.0), jitter_p=0.0, gray_p=0.0)
    for shared in (True, False):
        differ = []
        for seed in range(6):
            torch.manual_seed(seed)
            sampler = FrameFlow(resolution=32, view2="frame", aug=no_colour, shared_crop=shared)
            sample = sampler(still, np.random.default_rng(seed))
            differ.append(not torch.equal(sample["frame"], sample["view2"]))
        assert any(differ) != shared, f"shared_crop={shared}: frames differ in {sum(differ)} of 6 samples"
    with pytest.raises(ValueError, match="shared_crop=False needs view2 'frame'"):
        FrameFlow(resolution=32, view2="flow", shared_crop=False)


def test_frame_flow_encodes_the_known_motion():
    """Without augmentation (train=False, frames already at the resolution) the flow view is the translation
    divided by the bound: u = 2 px / 4 px = 0.5, v = 1 px / 4 px = 0.25."""
    sampler = FrameFlow(resolution=48, train=False, bound=4.0, flow_stack=2)
    sample = sampler(TensorVideo(translating_video(8, 48, 2, 1)), np.random.default_rng(0))
    centre = sample["view2"][:, 12:36, 12:36].mean((1, 2))
    assert centre.tolist() == pytest.approx([0.5, 0.25, 0.5, 0.25], abs=0.03)  # (u, v) of each field in turn


def test_a_flip_negates_the_horizontal_flow():
    """Flow is computed after the crop and flip, on the pixels the network sees: a flipped sample moves left."""
    video = TensorVideo(translating_video(8, 48, 2, 0))
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        sample = FrameFlow(resolution=48, bound=4.0)(video, np.random.default_rng(seed))
        u = sample["view2"][0, 12:36, 12:36].mean().item()
        assert 0.4 < abs(u) <= 1.0  # the crop zooms in: |u| >= the unzoomed 2 px / 4 px, clipped at 1
        seen.add(u > 0)
    assert seen == {True, False}  # both directions appear: flips negate u
