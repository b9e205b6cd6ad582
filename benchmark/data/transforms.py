"""Augmentations on uint8 video tensors [T, C, H, W] with torchvision.transforms.v2.

v2 applies one set of random parameters to a whole tensor, so calling a
transform on a clip shares the augmentation across its frames (what
order-based methods need: only temporal order may differ between classes),
while calling it frame by frame draws independent parameters (TCE's anchor
and positive). Randomness comes from torch's global generator; the loader
seeds it per sample, so a sample is a pure function of (seed, step, slot).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from benchmark.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomGray(torch.nn.Module):
    """With probability p, copy one randomly chosen RGB channel into all three (as TCE and DPC do)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return x
        channel = int(torch.randint(0, 3, ()))
        picked = x.narrow(-3, channel, 1)
        return picked.expand_as(x).clone()


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.5, 1.0)
    flip: bool = True
    jitter: float = 0.5  # brightness/contrast/saturation strength (TCE: 0.5)
    hue: float = 0.25
    jitter_p: float = 0.8
    gray_p: float = 0.5


_DEFAULT = AugmentConfig()


@dataclass
class AugmentFields:
    """A method config's augmentation knobs, mixed into its dataclass (``class XConfig(AugmentFields, MethodConfig)``):
    ``method.crop_scale_min``, ``method.jitter``, ... defaulting to :class:`AugmentConfig`'s values, the default of
    most training samplers (not ``cubic_puzzle``'s or ``stats_clip``'s: check your sampler's before mixing it in).
    ``Method.sampler_options`` passes ``augment()`` to the sampler as ``aug``; ``__post_init__`` rejects out-of-range
    values with one line (a config with its own ``__post_init__`` calls ``super().__post_init__()``). A config
    re-declares a field to change its default (TCE: ``jitter_p: float = 1.0``; CMC: jitter 0.4, hue 0.1, gray 0.2)."""

    crop_scale_min: float = _DEFAULT.crop_scale[0]  # random resized crop scale range (one crop per sample)
    crop_scale_max: float = _DEFAULT.crop_scale[1]
    flip: bool = _DEFAULT.flip
    jitter: float = _DEFAULT.jitter  # brightness, contrast, saturation strength; 0 with hue 0: no colour jitter
    hue: float = _DEFAULT.hue
    jitter_p: float = _DEFAULT.jitter_p
    gray_p: float = _DEFAULT.gray_p  # one random RGB channel copied into all three

    def augment(self) -> AugmentConfig:
        return AugmentConfig((self.crop_scale_min, self.crop_scale_max), self.flip, self.jitter, self.hue,
                             self.jitter_p, self.gray_p)  # fmt: skip

    def __post_init__(self) -> None:
        if not 0 < self.crop_scale_min <= self.crop_scale_max <= 1:
            raise UserError(
                f"method.crop_scale_min/max = {self.crop_scale_min}/{self.crop_scale_max}: need 0 < min <= max <= 1"
            )
        if min(self.jitter, self.hue, self.jitter_p, self.gray_p) < 0 or max(self.jitter_p, self.gray_p) > 1:
            raise UserError("method.jitter and method.hue must be >= 0, jitter_p and gray_p in [0, 1]")
        if self.hue > 0.5:
            raise UserError(f"method.hue = {self.hue}: at most 0.5 (a half turn of the colour wheel)")


def train_transform(resolution: int, aug: AugmentConfig = AugmentConfig()) -> v2.Compose:
    ops: list = [v2.RandomResizedCrop(resolution, scale=aug.crop_scale, antialias=True)]
    if aug.flip:
        ops.append(v2.RandomHorizontalFlip())
    if aug.jitter > 0 or aug.hue > 0:
        ops.append(v2.RandomApply([v2.ColorJitter(aug.jitter, aug.jitter, aug.jitter, aug.hue)], p=aug.jitter_p))
    if aug.gray_p > 0:
        ops.append(RandomGray(aug.gray_p))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(ops)


def eval_transform(resolution: int) -> v2.Compose:
    """Resize the short side, centre crop, normalise: deterministic."""
    return v2.Compose(
        [
            v2.Resize(resolution, antialias=True),
            v2.CenterCrop(resolution),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised float [..., 3, H, W] -> the uint8 frames they came from (rounded, clamped): the exact
    inverse of normalising uint8 frames, for an evaluation encoder that computes flow from what it is fed."""
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(3, 1, 1) * 255
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(3, 1, 1) * 255
    return torch.addcmul(mean, frames.float(), std).round_().clamp_(0, 255).to(torch.uint8)


def per_frame(transform, frames: torch.Tensor) -> torch.Tensor:
    """Apply ``transform`` to each frame of [T, C, H, W] with independent random parameters."""
    return torch.stack([transform(f) for f in frames])


def augment(transform, frames: torch.Tensor, shared: bool = True) -> torch.Tensor:
    """[T, C, H, W] (or [C, H, W]) -> transformed. ``shared``: one draw of the random parameters for the
    whole clip (order-based methods: only temporal order may differ); else one draw per frame (TCE)."""
    if shared or frames.dim() == 3:
        return transform(frames)
    return per_frame(transform, frames)
