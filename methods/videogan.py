"""VideoGAN — Generating Videos with Scene Dynamics (Vondrick, Pirsiavash, Torralba, NeurIPS 2016,
arXiv 1609.02612; release: cvondrick/videogan, Torch7).

Pretext: a generative adversarial game on clips. A two-stream generator maps noise z ~ N(0, I) to a clip: a 3D
(space-time) transposed-convolution stream produces a foreground video f (tanh) and a mask m (sigmoid), a 2D
stream produces one static background image b (tanh), and the clip is ``m * f + (1 - m) * b`` (b repeated over
time). A 3D discriminator tells real clips from generated ones; its trunk is what evaluation reads (the paper
fine-tunes the discriminator on UCF101). Here the discriminator IS the harness's shared 3D backbone (built by
the backbone factory from ``backbone.*``, like every 3D method) plus a linear real/fake head on its pooled
feature. Losses (``gan_loss: bce``, the release's): D minimises CE(real -> real) + CE(fake -> fake) (the
release's 2-way softmax cross-entropy equals BCE on the logit difference); G the non-saturating CE(fake -> real)
plus ``mask_l1`` (0.1) times the mean of the mask (the release's L1 sparsity penalty, size-averaged).

Both players from ONE loss and ONE optimiser (the harness's contract: ``training_step`` returns one loss and
train.py builds one optimiser over ``method.parameters()``; set ``optim.betas: [0.5, 0.999]`` as the paper):
the loss is L_D + L_G + mask term, where
- L_D scores the real batch and ``fake.detach()``: its gradient reaches D only;
- L_G scores the fake batch through D called with DETACHED parameters (``torch.func.functional_call`` with
  ``p.detach()`` for D's parameters): its gradient reaches G only, D's weights get none from it;
so one ``backward()`` gives each player exactly its own gradient and one optimiser step updates both
SIMULTANEOUSLY, both gradients taken at the same (pre-update) D. The paper alternates (a D step, then a G step
through the updated D -- the release reuses D's forward from before D's update for G's backward). Cost: three D
forwards per step (real, fake for D, fake for G) and one G forward; the release does two and one.

BatchNorm: real and fake batches go through D in SEPARATE forwards (batch statistics per real / per fake batch,
as the release). Only real batches may move the running statistics of the evaluated backbone: fake passes run
on private copies of D's buffers (``functional_call`` with cloned buffers), so evaluation never sees statistics
of generated clips. This changes nothing for training itself (train-mode BatchNorm normalises with the batch).

Generator sizes (``scale``): ``paper`` is the release's 64 x 64 x 32 generator (G widths 512-256-128-64, first
layer a (2, 4, 4) kernel; 16.2M parameters with z in R^100) and requires ``data.resolution: 64`` and 32 frames;
``lite`` (default) builds the same design for any even resolution >= 8 and any clip length with
``generator_width`` channels in the first layer (auto: 256), halved per layer: n upsampling layers (kernel 4,
stride 2, padding 1) take r0 x r0 (4 <= r0 <= 7) to the resolution; time doubles in the last layers as far as
the clip length allows and the first layer's time kernel makes up the rest (32 x 32 x 8: z -> 256x1x4x4 ->
128x2x8x8 -> 64x4x16x16 -> 8x32x32, ~4.1M parameters).

The pretext check (``chance`` / ``pretext_eval``): the discriminator's accuracy on held-out real clips (never
trained on) against as many freshly generated clips (noise from a private generator seeded per batch), each
batch its own forward as in training (train-mode BatchNorm on private copies of every buffer), threshold at
logit 0: chance 0.5. A GAN has no label to predict, so this is the closest thing: a discriminator that tells
unseen real clips from the generator's has learned something about real video; 0.5 is an untrained D (or a
perfect G). Nothing is touched: no gradient, buffers cloned, module modes restored, no global RNG drawn.

Deviations from the paper and the release:
- the discriminator is the harness's shared 3D backbone (r3d_18 at full scale, an inflated timm ResNet on CPU;
  BatchNorm in every layer, the backbone's own init) with a linear head on the pooled feature, instead of the
  5-layer C3D-like network (64-128-256-512 convolutions, LeakyReLU, no BatchNorm on the first layer);
- simultaneous updates from one backward with one Adam over both players (above), instead of alternating steps
  with one Adam per player (same settings: lr 2e-4, beta1 0.5);
- real clips are ImageNet-normalised like every harness input and the generator's tanh output is mapped into
  the same space before D (x = normalise((g + 1) / 2)); the release scaled reals to [-1, 1];
- real clips get a random resized crop (scale ``crop_scale_min``-1) and a flip shared by the whole clip, no
  colour augmentation (augmenting only the reals would teach G to imitate it); the release resized whole frames
  to 64 x 64 without flips (``crop_scale_min: 1.0, flip: false`` comes closest);
- pre-training data: the rows here use UCF101 (full scale) or the synthetic set; the paper's discriminator was
  trained on ~5,000 hours of unlabelled, camera-stabilised Flickr video (main_ucf.lua loads that checkpoint);
- ``lite`` sizes (32 px, 8 frames by default); no conv biases before BatchNorm in G (redundant); G's init is the
  release's (conv weights N(0, 0.01), BatchNorm gamma N(1, 0.02)); ``gan_loss: hinge`` is an option the paper
  does not have.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from benchmark.config import MethodConfig
from benchmark.data.transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig
from benchmark.errors import UserError
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

GAN_LOSSES = ("bce", "hinge")
SCALES = ("lite", "paper")
AUTO = {"lite": {"clip_len": 8, "generator_width": 256}, "paper": {"clip_len": 32, "generator_width": 512}}
PAPER_RESOLUTION = 64
MIN_WIDTH = 8  # narrowest generator layer
INIT_STD = 0.01  # the release's conv init (main.lua)
NOISE_SEED = 5_318_008  # held-out fakes: the noise of batch i is seeded NOISE_SEED + its first video index


@dataclass
class VideoGANConfig(MethodConfig):
    name: str = "videogan"
    scale: Literal["lite", "paper"] = "lite"  # paper: 64 x 64 x 32 with the release's widths; lite: any size
    clip_len: int | Literal["auto"] = "auto"  # frames per clip; auto: 8 (lite), 32 (paper)
    stride: int = 1  # consecutive frames, as the release
    generator_width: int | Literal["auto"] = "auto"  # channels of G's first layer, halved per layer; auto: 256 / 512
    z_dim: int = 100
    mask_l1: float = 0.1  # weight of the mean of the mask (the release's L1 sparsity penalty)
    gan_loss: Literal["bce", "hinge"] = "bce"  # bce: the release's (non-saturating G); hinge: not in the paper
    crop_scale_min: float = 0.5  # real clips: random resized crop, area in [crop_scale_min, 1]
    flip: bool = True  # real clips: horizontal flip (the release: none)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise UserError(f"method.scale = {self.scale!r} should be one of {', '.join(SCALES)}")
        if self.gan_loss not in GAN_LOSSES:
            raise UserError(f"method.gan_loss = {self.gan_loss!r} should be one of {', '.join(GAN_LOSSES)}")
        if self.clip_len != "auto" and self.clip_len < 1:
            raise UserError(f"method.clip_len = {self.clip_len}: must be >= 1 (or auto)")
        if self.stride < 1:
            raise UserError(f"method.stride = {self.stride}: must be >= 1")
        if self.generator_width != "auto" and self.generator_width < MIN_WIDTH:
            raise UserError(f"method.generator_width = {self.generator_width}: must be >= {MIN_WIDTH} (or auto)")
        if self.z_dim < 1:
            raise UserError(f"method.z_dim = {self.z_dim}: must be >= 1")
        if not (self.mask_l1 >= 0 and math.isfinite(self.mask_l1)):
            raise UserError(f"method.mask_l1 = {self.mask_l1}: must be a finite number >= 0")
        if not 0 < self.crop_scale_min <= 1:
            raise UserError(f"method.crop_scale_min = {self.crop_scale_min}: need 0 < crop_scale_min <= 1")
        if self.scale == "paper" and self.clip_len not in ("auto", AUTO["paper"]["clip_len"]):
            raise UserError(f"method.scale = paper generates 32 frames; method.clip_len = {self.clip_len}")

    def frames(self) -> int:
        return AUTO[self.scale]["clip_len"] if self.clip_len == "auto" else self.clip_len

    def width(self) -> int:
        return AUTO[self.scale]["generator_width"] if self.generator_width == "auto" else self.generator_width


@dataclass(frozen=True)
class GeneratorPlan:
    """Layer sizes of a generator for ``resolution`` x ``frames`` clips: the first layer maps z to r0 x r0 (time
    kernel ``first_frames``), then ``layers`` upsamplings double the side; the last ``time_doublings`` of them
    double time too."""

    layers: int
    first_side: int
    time_doublings: int
    first_frames: int

    @classmethod
    def for_clip(cls, resolution: int, frames: int) -> GeneratorPlan:
        layers = 0
        while resolution % 2 ** (layers + 1) == 0 and resolution // 2 ** (layers + 1) >= 4:
            layers += 1
        doublings = 0
        while doublings < layers and frames % 2 ** (doublings + 1) == 0:
            doublings += 1
        return cls(layers, resolution // 2**layers, doublings, frames // 2**doublings)

    def doubles_time(self, layer: int) -> bool:
        """Upsampling layer ``layer`` (1..layers; the last is the output head) doubles time."""
        return layer > self.layers - self.time_doublings


def _up3d(c_in: int, c_out: int, double_time: bool, bias: bool) -> nn.ConvTranspose3d:
    if double_time:  # k 4, s 2, p 1 in every dimension (the release's)
        return nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=1, bias=bias)
    return nn.ConvTranspose3d(c_in, c_out, (3, 4, 4), stride=(1, 2, 2), padding=1, bias=bias)  # time kept


class VideoGenerator(nn.Module):
    """z [B, z_dim] -> (clip [B, 3, T, H, W] in [-1, 1], mask [B, 1, T, H, W] in [0, 1]): a 3D foreground stream
    (video + mask) blended over a 2D static background stream, video = m * f + (1 - m) * b."""

    def __init__(self, z_dim: int, width: int, resolution: int, frames: int):
        super().__init__()
        plan = GeneratorPlan.for_clip(resolution, frames)
        if plan.layers < 1:
            raise ValueError(f"a generator needs an even resolution >= 8, got {resolution}")
        widths = [max(width >> i, MIN_WIDTH) for i in range(plan.layers)]
        r0, t0 = plan.first_side, plan.first_frames
        fg: list[nn.Module] = [nn.ConvTranspose3d(z_dim, widths[0], (t0, r0, r0), bias=False)]
        bg: list[nn.Module] = [nn.ConvTranspose2d(z_dim, widths[0], r0, bias=False)]
        fg += [nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True)]
        bg += [nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for i in range(1, plan.layers):
            fg += [_up3d(widths[i - 1], widths[i], plan.doubles_time(i), bias=False), nn.BatchNorm3d(widths[i])]
            bg += [nn.ConvTranspose2d(widths[i - 1], widths[i], 4, 2, 1, bias=False), nn.BatchNorm2d(widths[i])]
            fg.append(nn.ReLU(inplace=True))
            bg.append(nn.ReLU(inplace=True))
        self.foreground = nn.Sequential(*fg)
        self.video_head = _up3d(widths[-1], 3, plan.doubles_time(plan.layers), bias=True)
        self.mask_head = _up3d(widths[-1], 1, plan.doubles_time(plan.layers), bias=True)
        self.background = nn.Sequential(*bg, nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1), nn.Tanh())
        self.plan, self.z_dim = plan, z_dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The release's init: conv weights N(0, 0.01), biases 0, BatchNorm gamma N(1, 0.02), beta 0."""
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
                nn.init.normal_(m.weight, 0.0, INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.foreground(z[:, :, None, None, None])
        foreground = torch.tanh(self.video_head(h))
        mask = torch.sigmoid(self.mask_head(h))
        background = self.background(z[:, :, None, None])  # [B, 3, H, W]
        return mask * foreground + (1 - mask) * background[:, :, None], mask


def call_module(module: nn.Module, x, *, detach_params: bool = False, private_buffers: bool = False):
    """``module(x)``; with ``detach_params`` its parameters take no gradient from this call (the output still
    carries x's), with ``private_buffers`` BatchNorm's running statistics are updated on throw-away copies."""
    if not (detach_params or private_buffers):
        return module(x)
    overrides = {}
    if detach_params:
        overrides.update({name: p.detach() for name, p in module.named_parameters()})
    if private_buffers:
        overrides.update({name: b.clone() for name, b in module.named_buffers()})
    return functional_call(module, overrides, (x,))


def discriminator_losses(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """D's loss from real and fake logits [B] (sum of the real and the fake term, as the release)."""
    if kind == "bce":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """G's loss from D's logits [B] on its clips: non-saturating -log D(G(z)) (bce), -D(G(z)) (hinge)."""
    return F.softplus(-fake).mean() if kind == "bce" else -fake.mean()


def discriminator_accuracy(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Balanced accuracy at logit 0: real called real, fake called fake (chance 0.5)."""
    return ((real > 0).float().mean() + (fake < 0).float().mean()) / 2


@register_method("videogan")
class VideoGAN(Method):
    """VideoGAN: a two-stream (foreground video + mask over a static background) generator against the 3D backbone as discriminator."""

    Config = VideoGANConfig
    sampler = "clip"
    backbone_kind = "3d"

    @classmethod
    def sampler_options(cls, cfg: VideoGANConfig, info: DataInfo) -> dict:
        aug = AugmentConfig(crop_scale=(cfg.crop_scale_min, 1.0), flip=cfg.flip, jitter=0.0, hue=0.0, gray_p=0.0)
        return {"clip_len": cfg.frames(), "stride": cfg.stride, "aug": aug}

    @classmethod
    def smoke_overrides(cls, cfg: VideoGANConfig) -> dict:
        """The paper's 64x64x32 generator is tied to 64 px; the stand-in is 32 px: the lite scale there."""
        return {"method.scale": "lite"} if cfg.scale == "paper" else {}

    @classmethod
    def resolve(cls, cfg: VideoGANConfig, info: DataInfo) -> VideoGANConfig:
        """'auto' sizes -> numbers (config.yaml records what was built)."""
        return dataclasses.replace(cfg, clip_len=cfg.frames(), generator_width=cfg.width())

    @classmethod
    def check(cls, cfg: VideoGANConfig, info: DataInfo) -> None:
        r = info.resolution
        if cfg.scale == "paper" and r != PAPER_RESOLUTION:
            raise UserError(f"method.scale = paper generates {PAPER_RESOLUTION} x {PAPER_RESOLUTION} frames; "
                            f"data.resolution = {r}")  # fmt: skip
        if GeneratorPlan.for_clip(r, cfg.frames()).layers < 1:
            raise UserError(f"method videogan generates even frame sides >= 8; data.resolution = {r}")

    def __init__(self, cfg: VideoGANConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.generator = VideoGenerator(cfg.z_dim, cfg.width(), info.resolution, cfg.frames())
        self.d_head = nn.Linear(backbone.num_features, 1)  # the backbone (D's trunk) + this = the discriminator
        # G's tanh output [-1, 1] -> the harness's input space (ImageNet-normalised), as the real clips
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(3, 1, 1, 1), persistent=False)

    def chance(self, batch_size: int) -> Chance:
        """Training loss with every logit 0 (D's two terms + G's, the mask term left out): 3 ln 2 (bce), 2
        (hinge). Pretext measure: D's balanced accuracy on held-out real vs generated clips, chance 0.5."""
        return Chance(3 * math.log(2) if self.cfg.gan_loss == "bce" else 2.0, 0.5)

    def generate(self, z: torch.Tensor, private_buffers: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, z_dim] -> (clips [B, T, 3, H, W] in the harness's input space, mask [B, 1, T, H, W])."""
        video, mask = call_module(self.generator, z, private_buffers=private_buffers)
        x = ((video + 1) / 2 - self.pixel_mean) / self.pixel_std
        return x.transpose(1, 2), mask

    def discriminate(self, clips: torch.Tensor, *, detach_params: bool = False, private_buffers: bool = False):
        """Real/fake logits [B] (fp32) of clips [B, T, 3, H, W]."""
        options = {"detach_params": detach_params, "private_buffers": private_buffers}
        features = call_module(self.backbone, clips, **options)
        return call_module(self.d_head, features, **options).squeeze(-1).float()

    def perf_parts(self, batch: dict) -> dict:
        """``vssl bench methods`` times the generator on its own: a batch of clips from noise, forward + backward."""

        def generator() -> None:
            z = torch.randn(len(batch["clip"]), self.cfg.z_dim, device=batch["clip"].device)
            self.generate(z)[0].float().mean().backward()

        return {"generator": generator}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        real = batch["clip"]
        z = torch.randn(len(real), self.cfg.z_dim, device=real.device)
        fake, mask = self.generate(z)
        logits_real = self.discriminate(real)  # the only pass that moves the evaluated backbone's BN statistics
        logits_fake = self.discriminate(fake.detach(), private_buffers=True)  # D's term: no gradient to G
        logits_gen = self.discriminate(fake, detach_params=True, private_buffers=True)  # G's term: none to D
        loss_d = discriminator_losses(logits_real, logits_fake, self.cfg.gan_loss)
        loss_g = generator_loss(logits_gen, self.cfg.gan_loss)
        mask_mean = mask.float().mean()  # m >= 0: its L1 norm, size-averaged
        loss = loss_d + loss_g + self.cfg.mask_l1 * mask_mean
        with torch.no_grad():
            accuracy = discriminator_accuracy(logits_real, logits_fake)
        return StepOutput(loss, {"loss": loss.detach(), "loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                                 "mask_mean": mask_mean.detach(), "accuracy": accuracy})  # fmt: skip

    def pretext_eval(self, batch: dict, progress: Progress) -> dict[str, torch.Tensor]:
        """D's balanced accuracy on held-out real clips vs as many fresh generated clips (chance 0.5); each batch
        its own forward in train-mode BatchNorm, as in training, on private copies of every buffer. The loss is
        D's plus G's on these clips (the training loss without the mask term: 3 ln 2 at chance for bce)."""
        real = batch["clip"]
        seed = NOISE_SEED + int(batch["index"].min()) if "index" in batch else NOISE_SEED
        z = torch.randn(len(real), self.cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(real.device)
        modes = [(m, m.training) for m in self.modules()]
        self.train()
        try:
            with torch.no_grad():
                fake, mask = self.generate(z, private_buffers=True)
                logits_real = self.discriminate(real, private_buffers=True)
                logits_fake = self.discriminate(fake, private_buffers=True)
        finally:
            for m, training in modes:
                m.training = training
        loss_d = discriminator_losses(logits_real, logits_fake, self.cfg.gan_loss)
        out = {
            "loss": loss_d + generator_loss(logits_fake, self.cfg.gan_loss),  # the training loss less the mask term
            "accuracy": discriminator_accuracy(logits_real, logits_fake),
            "mask_mean": mask.float().mean(),  # ~0: all static background; ~1: the background unused
        }
        if real.shape[1] > 1:  # fake / real mean |frame difference|: ~0 means frozen clips
            motion = (fake[:, 1:] - fake[:, :-1]).abs().mean() / (real[:, 1:] - real[:, :-1]).abs().mean()
            out["motion_ratio"] = motion.float()
        return out
