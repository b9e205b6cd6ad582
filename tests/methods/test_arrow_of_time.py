"""Arrow of Time: exact batch balance, clips really reversed, heads for 2D and 3D, over-fitting."""

from __future__ import annotations

import pytest
import torch

from benchmark.errors import UserError
from benchmark.method import Progress
from methods.arrow_of_time import reversal_mask
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
        assert torch.equal(seen["clip"][i], clip) and torch.equal(seen["clip"][b + i], clip.flip(0))
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
        assert torch.equal(seen["clip"][i], expected)
        assert not torch.equal(clip.flip(0), clip)  # the test clips are not palindromes


def test_heads_for_each_backbone_kind():
    concat, _ = tiny_method("arrow_of_time", ("method.clip_len=4",))
    assert concat.head[1][0].in_features == 4 * concat.backbone.num_features  # Flatten, then the MLP
    conv, batch = tiny_method("arrow_of_time", ("method.clip_len=4", "method.head_2d=temporal_conv"))
    out = conv.training_step(batch, Progress(0, 1))
    assert out.loss.dim() == 0
    three_d, _ = tiny_method("arrow_of_time", ("method.clip_len=4",), backbone="r3d_18")
    assert isinstance(three_d.head, torch.nn.Linear) and three_d.head.in_features == three_d.backbone.num_features


def test_one_frame_clip_is_a_user_error():
    with pytest.raises(UserError, match="at least 2 frames"):
        tiny_method("arrow_of_time", ("method.clip_len=1",))


@pytest.mark.slow
def test_overfits_a_tiny_batch_in_both_directions():
    # the real step schedule: every clip is shown forwards and backwards on alternate steps
    method, batch = tiny_method("arrow_of_time", ("method.clip_len=4",))
    losses = overfit_losses(method, batch, steps=20)
    assert fell_clearly(losses, 0.2), losses
