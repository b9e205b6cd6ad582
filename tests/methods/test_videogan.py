"""VideoGAN: the generator's design (shapes, ranges, static background under the mask), each player's loss reaching
only its own parameters, real-only BatchNorm statistics, the static checks, and a tiny run where D learns."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmark.backbones import param_count_millions
from benchmark.config import load_config
from benchmark.device import one_thread, resolve_runtime
from benchmark.errors import UserError
from benchmark.method import Progress
from benchmark.train import Trainer, build_method
from methods.videogan import (
    GeneratorPlan,
    VideoGANConfig,
    VideoGenerator,
    discriminator_losses,
    generator_loss,
)

TINY = ["method.name=videogan", "backbone.name=resnet10t", "backbone.inflate=true", "run.precision=fp32"]


def tiny_method(resolution: int = 32, *overrides: str):
    cfg = load_config(None, [*TINY, f"data.resolution={resolution}", "method.clip_len=4", *overrides])
    return cfg, build_method(cfg, num_videos=16)


@pytest.mark.parametrize(
    "resolution, frames, width", [(16, 4, 32), (32, 8, 32), (112, 8, 16), (10, 5, 16), (64, 32, 16)]
)
def test_generator_makes_clips_of_the_asked_size_in_range(resolution, frames, width):
    gen = VideoGenerator(z_dim=7, width=width, resolution=resolution, frames=frames)
    video, mask = gen(torch.randn(3, 7))
    assert video.shape == (3, 3, frames, resolution, resolution) and mask.shape == (
        3,
        1,
        frames,
        resolution,
        resolution,
    )
    assert video.min() >= -1 and video.max() <= 1
    assert mask.min() >= 0 and mask.max() <= 1
    assert video.std() > 0.01 and mask.std() > 0.001  # not collapsed to a constant at init


def test_paper_generator_has_the_release_layers():
    plan = GeneratorPlan.for_clip(64, 32)  # z -> 512x2x4x4 -> 256x4x8x8 -> 128x8x16x16 -> 64x16x32x32 -> 32x64x64
    assert (plan.layers, plan.first_side, plan.time_doublings, plan.first_frames) == (4, 4, 4, 2)
    gen = VideoGenerator(z_dim=100, width=512, resolution=64, frames=32)
    assert gen.foreground[0].weight.shape == (100, 512, 2, 4, 4)
    assert 16.0 < param_count_millions(gen) < 16.5  # the release's G: 16.2M
    assert GeneratorPlan.for_clip(32, 8).first_frames == 1 and GeneratorPlan.for_clip(7, 8).layers == 0


def test_mask_selects_between_moving_foreground_and_static_background():
    gen = VideoGenerator(z_dim=8, width=16, resolution=16, frames=4)  # train mode: batch statistics
    z = torch.randn(4, 8)
    with torch.no_grad():
        gen.mask_head.bias.fill_(-50.0)  # m = 0: the 2D stream only, the same image in every frame
        static, mask = gen(z)
        assert mask.max() < 1e-6
        assert torch.allclose(static, static[:, :, :1].expand_as(static), atol=1e-6)
        gen.mask_head.bias.fill_(50.0)  # m = 1: the 3D stream only, which moves
        moving, _ = gen(z)
        assert (moving[:, :, 1:] - moving[:, :, :-1]).abs().mean() > 1e-4
        assert not torch.allclose(moving, static)


def test_fakes_are_mapped_into_the_harness_input_space():
    _, method = tiny_method()
    method.train()
    clips, _ = method.generate(torch.randn(2, method.cfg.z_dim))
    assert clips.shape == (2, 4, 3, 32, 32)  # [B, T, C, H, W] as the clip sampler's
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    pixels = clips * std + mean  # undo ImageNet normalisation: [0, 1] pixels
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_each_player_gets_only_its_own_gradient_from_the_one_loss():
    """The step's single loss gives D exactly dL_D and G exactly d(L_G + mask term): recomputed apart here."""
    torch.manual_seed(0)
    _, method = tiny_method(32, "method.mask_l1=0.1")
    method.train()
    real = torch.randn(4, 4, 3, 32, 32)
    reference = copy.deepcopy(method)
    torch.manual_seed(1)
    method.training_step({"clip": real, "index": torch.arange(4)}, Progress(0, 10)).loss.backward()

    torch.manual_seed(1)  # the same noise: z is the step's first draw
    z = torch.randn(4, method.cfg.z_dim)
    fake, mask = reference.generate(z)
    d_params = [*reference.backbone.parameters(), *reference.d_head.parameters()]
    g_params = list(reference.generator.parameters())
    loss_d = discriminator_losses(reference.discriminate(real), reference.discriminate(fake.detach()), "bce")
    fake_logits = reference.discriminate(fake)
    loss_g = generator_loss(fake_logits, "bce") + 0.1 * mask.mean()
    grads_d = torch.autograd.grad(loss_d, d_params)
    grads_g = torch.autograd.grad(loss_g, g_params, retain_graph=True)
    leaked_to_d = torch.autograd.grad(generator_loss(fake_logits, "bce"), d_params)  # what detaching must remove
    stepped_d = [p.grad for p in [*method.backbone.parameters(), *method.d_head.parameters()]]
    stepped_g = [p.grad for p in method.generator.parameters()]
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(stepped_d, grads_d, strict=True))
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(stepped_g, grads_g, strict=True))
    assert sum(g.abs().sum() for g in leaked_to_d) > 1e-3  # without the detached pass D would get G's gradient
    assert sum(g.abs().sum() for g in stepped_g) > 0


def test_generator_pass_through_the_discriminator_leaves_its_parameters_without_gradient():
    _, method = tiny_method()
    method.train()
    fake, _ = method.generate(torch.randn(2, method.cfg.z_dim))
    generator_loss(method.discriminate(fake, detach_params=True, private_buffers=True), "bce").backward()
    assert all(p.grad is None for p in [*method.backbone.parameters(), *method.d_head.parameters()])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.generator.parameters())
    method.zero_grad(set_to_none=True)
    fake, _ = method.generate(torch.randn(2, method.cfg.z_dim))
    discriminator_losses(torch.zeros(2), method.discriminate(fake.detach(), private_buffers=True), "bce").backward()
    assert all(p.grad is None for p in method.generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.backbone.parameters())


def test_only_real_clips_move_the_backbone_batchnorm_statistics():
    _, method = tiny_method()
    method.train()
    real = torch.randn(4, 4, 3, 32, 32)
    only_real = copy.deepcopy(method)
    initial = {k: v.clone() for k, v in method.backbone.state_dict().items()}
    method.training_step({"clip": real, "index": torch.arange(4)}, Progress(0, 10))
    only_real.backbone(real)  # one real forward, nothing else
    moved, expected = method.backbone.state_dict(), only_real.backbone.state_dict()
    assert all(torch.equal(moved[k], expected[k]) for k in expected)  # the two fake passes left no trace
    assert any(k.endswith("running_mean") and not torch.equal(moved[k], initial[k]) for k in moved)


def test_pretext_eval_restores_modes_and_draws_no_global_random_numbers():
    _, method = tiny_method()
    method.eval()
    method.generator.train()  # a mixed state must come back as it was
    modes = [m.training for m in method.modules()]
    batch = {"clip": torch.randn(4, 4, 3, 32, 32), "index": torch.arange(4)}
    rng = torch.random.get_rng_state()
    with torch.no_grad():
        a = method.pretext_eval(batch, Progress(0, 10))
        b = method.pretext_eval(batch, Progress(0, 10))
    assert [m.training for m in method.modules()] == modes
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.equal(a["accuracy"], b["accuracy"]) and torch.equal(a["loss"], b["loss"])  # same noise per batch
    assert 0 <= float(a["accuracy"]) <= 1 and 0 < float(a["mask_mean"]) < 1 and float(a["motion_ratio"]) > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["method.gan_loss=wgan"], "method.gan_loss"),
        (["method.scale=huge"], "method.scale"),
        (["method.mask_l1=-0.1"], "method.mask_l1 = -0.1"),
        (["method.z_dim=0"], "method.z_dim = 0"),
        (["method.generator_width=4"], "method.generator_width = 4"),
        (["method.clip_len=0"], "method.clip_len = 0"),
        (["method.stride=0"], "method.stride = 0"),
        (["method.crop_scale_min=0"], "method.crop_scale_min = 0"),
        (["method.scale=paper", "method.clip_len=16"], "method.scale = paper generates 32 frames"),
        (["method.scale=paper", "data.resolution=32"], "method.scale = paper generates 64 x 64 frames"),
        (["data.resolution=9"], "even frame sides >= 8"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_field(overrides, message):
    with pytest.raises(UserError) as err:
        cfg = load_config(None, [*TINY, *overrides])
        build_method(cfg, num_videos=16)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_auto_sizes_follow_the_scale_and_reals_get_no_colour_augmentation():
    lite, paper = VideoGANConfig(), VideoGANConfig(scale="paper")
    assert (lite.frames(), lite.width(), paper.frames(), paper.width()) == (8, 256, 32, 512)
    from methods.videogan import VideoGAN

    aug = VideoGAN.sampler_options(lite, None)["aug"]
    assert aug.jitter == aug.hue == aug.gray_p == 0 and aug.flip
    cfg, method = tiny_method(32, "method.clip_len=auto")
    assert method.cfg.clip_len == 8 and method.cfg.generator_width == 256  # resolved: config.yaml records numbers


def moving_bar_clips(n: int, frames: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Real clips: a bright vertical bar sliding across a dark, per-clip tinted background, normalised like the
    harness's inputs (ImageNet mean/std)."""
    g = torch.Generator().manual_seed(seed)
    clips = torch.zeros(n, frames, 3, size, size)
    for i in range(n):
        tint = torch.rand(3, 1, 1, generator=g) * 0.3
        x0, speed = int(torch.randint(0, size - 4, (1,), generator=g)), int(torch.randint(1, 3, (1,), generator=g))
        for t in range(frames):
            clips[i, t] = tint
            x = (x0 + speed * t) % (size - 3)
            clips[i, t, :, :, x : x + 3] = 0.9
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return (clips - mean) / std


@pytest.mark.slow
def test_the_discriminator_learns_in_a_tiny_run():
    """20 steps at 32 px (2-frame clips, batch 4), Adam 1e-3 with betas (0.5, 0.999) through the harness's Trainer:
    D's loss falls from chance (2 ln 2) and its held-out accuracy (pretext_eval: unseen real clips vs fresh fakes)
    rises well above 0.5 and above its step-0 value. Measured here: loss_d 1.44 -> 1.21, accuracy 0.47 -> 0.81."""
    steps, batch_size = 20, 4
    with one_thread():
        torch.manual_seed(0)
        cfg, method = tiny_method(32, "method.clip_len=2", "optim.name=adam", "optim.lr=0.001",
                                  "optim.betas=[0.5,0.999]", "optim.schedule=constant",
                                  f"optim.batch_size={batch_size}", f"optim.steps={steps}")  # fmt: skip
        trainer = Trainer(method, cfg, resolve_runtime("cpu", "fp32", False))
        heldout = {"clip": moving_bar_clips(16, seed=99), "index": torch.arange(16)}

        def held_out_accuracy() -> float:
            method.eval()
            with torch.no_grad():
                out = method.pretext_eval(heldout, Progress(0, steps))
            method.train()
            return float(out["accuracy"])

        before = held_out_accuracy()
        method.train()
        losses_d = []
        for step in range(steps):
            torch.manual_seed(step)
            batch = {"clip": moving_bar_clips(batch_size, seed=step), "index": torch.arange(batch_size)}
            out = trainer.train_step(batch, Progress(step, steps))
            losses_d.append(float(out.scalars["loss_d"]))
        after = held_out_accuracy()
    first, last = sum(losses_d[:3]) / 3, sum(losses_d[-5:]) / 5
    assert abs(first - 2 * 0.6931) < 0.15, losses_d  # D starts near chance
    assert last < first - 0.15, losses_d
    assert after >= 0.7 and after >= before + 0.2, (before, after)
