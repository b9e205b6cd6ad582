"""Arrow of Time: exact batch balance, clips really reversed, heads for 2D and 3D, over-fitting."""

from __future__ import annotations

import pytest
import torch

from benchmark.errors import UserError
from benchmark.method import Progress
from methods.arrow_of_time import ArrowOfTime, DifferenceEncoder, frame_differences, reversal_mask
from tests.methods.overfit import fell_clearly, one_thread, overfit_losses, tiny_method


@pytest.mark.parametrize("batch_size", [2, 7, 8, 33])
def test_every_batch_is_balanced_and_each_slot_alternates(batch_size):
    for step in range(4):
        mask = reversal_mask(batch_size, step)
        assert abs(int(mask.sum()) - batch_size / 2) <= 0.5
        assert torch.equal(mask, ~reversal_mask(batch_size, step + 1))


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def test_by_default_every_clip_is_shown_forwards_and_reversed_with_its_label():
    method, batch = tiny_method("arrow_of_time", ("method.clip_len=4",))
    seen = {}
    method.backbone.register_forward_hook(lambda mod, args, out: seen.update(clip=args[0].detach().clone()))
    real_head = method.head.forward
    method.head.forward = lambda f: seen.setdefault("logits", real_head(f))
    out = method.training_step(batch, Progress(step=3, total_steps=10))
    b = len(batch["clip"])
    assert len(seen["clip"]) == 2 * b
    for i, clip in enumerate(batch["clip"]):  # the same video both ways: forwards first, then reversed
        # the default input: the differences of the frames as shown (taken after the reversal)
        assert torch.equal(seen["clip"][i], frame_differences(clip))
        assert torch.equal(seen["clip"][b + i], frame_differences(clip.flip(0)))
        assert not torch.equal(clip.flip(0), clip)  # the test clips are not palindromes
    labels = torch.tensor([0] * b + [1] * b)  # 1 = plays backwards
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(seen["logits"].float(), labels))


def test_alternate_reverses_half_of_each_batch_by_slot():
    method, batch = tiny_method("arrow_of_time", ("method.clip_len=4", "method.directions=alternate"))
    seen = {}
    method.backbone.register_forward_hook(lambda mod, args, out: seen.update(clip=args[0].detach().clone()))
    step = 3
    method.training_step(batch, Progress(step=step, total_steps=10))
    backwards = reversal_mask(len(batch["clip"]), step)
    for i, clip in enumerate(batch["clip"]):
        expected = clip.flip(0) if backwards[i] else clip
        assert torch.equal(seen["clip"][i], frame_differences(expected))
        assert not torch.equal(clip.flip(0), clip)  # the test clips are not palindromes


def test_rgb_input_shows_the_frames_themselves():
    method, batch = tiny_method("arrow_of_time", ("method.clip_len=4", "method.input=rgb"))
    seen = {}
    method.backbone.register_forward_hook(lambda mod, args, out: seen.update(clip=args[0].detach().clone()))
    method.training_step(batch, Progress(step=0, total_steps=10))
    b = len(batch["clip"])
    assert torch.equal(seen["clip"][:b], batch["clip"]) and torch.equal(seen["clip"][b:], batch["clip"].flip(1))
    assert method.head[1][0].in_features == 4 * method.backbone.num_features  # 4 frames, concatenated


def test_frame_differences_follow_the_frames_as_shown():
    clip = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2) ** 2  # frames 0, 1, 4, 9
    assert frame_differences(clip)[:, 0, 0, 0].tolist() == [1, 3, 5]
    assert frame_differences(clip.flip(0))[:, 0, 0, 0].tolist() == [-5, -3, -1]  # reversed: negated, reordered


@pytest.mark.parametrize("backbone", ["resnet10t", "r3d_18"])
def test_difference_runs_are_evaluated_on_differences(backbone):
    method, _ = tiny_method("arrow_of_time", ("method.clip_len=4",), backbone=backbone)
    encoder = ArrowOfTime.eval_encoder(method.cfg, method.backbone, {})
    assert isinstance(encoder, DifferenceEncoder) and encoder.kind == method.backbone.kind
    assert encoder.num_features == method.backbone.num_features
    method.backbone.eval()
    torch.manual_seed(0)
    if backbone == "resnet10t":  # a frame and the next one (the evaluation decodes frame_offsets) -> their difference
        assert encoder.frame_offsets == (0, 1)
        views = torch.randn(2, 3, 2, 3, 16, 16)  # [videos, views, offsets, C, H, W]
        expected = method.backbone(views[:, :, 1] - views[:, :, 0])
    else:  # a clip -> its differences
        assert not hasattr(encoder, "frame_offsets")
        views = torch.randn(2, 1, 4, 3, 16, 16)  # [videos, views, T, C, H, W]
        expected = method.backbone(views[:, :, 1:] - views[:, :, :-1])
    with torch.no_grad():
        assert torch.allclose(encoder(views), expected, atol=1e-6)
    rgb, _ = tiny_method("arrow_of_time", ("method.clip_len=4", "method.input=rgb"), backbone=backbone)
    assert ArrowOfTime.eval_encoder(rgb.cfg, rgb.backbone, {}) is rgb.backbone


def test_heads_for_each_backbone_kind():
    concat, _ = tiny_method("arrow_of_time", ("method.clip_len=4",))
    assert concat.head[1][0].in_features == 3 * concat.backbone.num_features  # Flatten, then the MLP: 3 differences
    conv, batch = tiny_method("arrow_of_time", ("method.clip_len=4", "method.head_2d=temporal_conv"))
    out = conv.training_step(batch, Progress(0, 1))
    assert out.loss.dim() == 0
    three_d, _ = tiny_method("arrow_of_time", ("method.clip_len=4",), backbone="r3d_18")
    assert isinstance(three_d.head, torch.nn.Linear) and three_d.head.in_features == three_d.backbone.num_features


def test_one_frame_clip_is_a_user_error():
    with pytest.raises(UserError, match="at least 2 frames"):
        tiny_method("arrow_of_time", ("method.clip_len=1", "method.input=rgb"))
    with pytest.raises(UserError, match="at least 3 frames"):
        tiny_method("arrow_of_time", ("method.clip_len=2",))
    with pytest.raises(UserError, match="'method.input' = 'flow' should be one of"):
        tiny_method("arrow_of_time", ("method.input=flow",))


@pytest.mark.slow
def test_overfits_a_tiny_batch_in_both_directions():
    # the real step schedule: every clip is shown forwards and backwards on alternate steps
    method, batch = tiny_method("arrow_of_time", ("method.clip_len=4",))
    losses = overfit_losses(method, batch, steps=20)
    assert fell_clearly(losses, 0.2), losses
