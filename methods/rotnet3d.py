"""3D RotNet — clip rotation prediction (Jing, Yang, Liu, Tian, "Self-Supervised Spatiotemporal
Feature Learning via Video Rotation Prediction", arXiv 1811.11387, 2018).

Every frame of a clip is rotated by the same angle, 0/90/180/270 degrees in the image plane
(``torch.rot90`` over H, W), and a 3D backbone with a linear head predicts which (4-way
cross-entropy). Recognising "up" needs the content of the clip, objects and how they move.

Deviations from the paper:
- clips are 8 consecutive frames by default (``clip_len``; the paper used 16) so that a CPU step stays
  affordable; evaluation clips are set separately (``eval.clip_len``, which each sweep states);
- the backbone is any registered 3D backbone (r3d_18 or an inflated timm ResNet) rather than
  the paper's own 3D ResNet-18 configuration; the head is a single linear layer;
- ``rotations: one`` (not the default) draws one rotation per clip, exactly balanced over the
  batch, for a 4x cheaper step; the default ``all`` shows every clip in all four rotations.
- augmentation is this harness's shared clip augmentation (random resized crop, flip, colour
  jitter, random gray, one draw for the whole clip) with square crops, so a 90-degree rotation
  keeps the shape; its strength is set by ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``,
  ``jitter_p``, ``gray_p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.device import channels_last_frames
from benchmark.errors import UserError
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

NUM_ROTATIONS = 4


@dataclass
class RotNet3DConfig(AugmentFields, MethodConfig):
    name: str = "rotnet3d"
    clip_len: int = 8  # frames per clip (paper: 16)
    stride: int = 1  # consecutive frames
    rotations: Literal["all", "one"] = "all"  # all: each clip in all 4 rotations; one: one balanced draw per clip

    def __post_init__(self) -> None:
        super().__post_init__()  # AugmentFields' checks
        if min(self.clip_len, self.stride) < 1:
            raise UserError(f"method.clip_len and method.stride must be >= 1, got {self.clip_len} and {self.stride}")


def rotate_clips(
    clips: torch.Tensor, rotations: str, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """clips [B, T, C, H, W] (H == W) -> (rotated [B', T, C, H, W], labels [B']), label k = k * 90 degrees counter-clockwise.

    ``all``: B' = 4B, the batch repeated once per rotation (labels 0..0, 1..1, ...).
    ``one``: B' = B, labels a random permutation of (0, 1, 2, 3, 0, 1, ...): balanced to within one.
    """
    if clips.shape[-1] != clips.shape[-2]:
        raise ValueError(f"rotation needs square frames, got {tuple(clips.shape[-2:])}")
    channels_last = clips.movedim(-3, -1).is_contiguous() and not clips.is_contiguous()
    if rotations == "all":
        rotated = torch.cat([torch.rot90(clips, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])
        labels = torch.arange(NUM_ROTATIONS, device=clips.device).repeat_interleave(len(clips))
    elif rotations == "one":
        order = torch.randperm(len(clips), generator=generator).to(clips.device)
        labels = order % NUM_ROTATIONS
        # all four turns, then one gather: no data-dependent shapes, so no host synchronisation on a GPU
        every = torch.stack([torch.rot90(clips, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])
        rotated = every[labels, torch.arange(len(clips), device=clips.device)]
    else:
        raise ValueError(f"rotations must be 'all' or 'one', got {rotations!r}")
    # keep the caller's (channels-last) layout: rot90 returns a transposed view otherwise
    return (channels_last_frames(rotated) if channels_last else rotated.contiguous()), labels


@register_method("rotnet3d")
class RotNet3D(Method):
    """3D RotNet: predict the rotation (0/90/180/270 degrees) applied to a whole clip (4-way)."""

    Config = RotNet3DConfig
    sampler = "clip"
    sampler_fields = ("clip_len", "stride")
    backbone_kind = "3d"

    def __init__(self, cfg: RotNet3DConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.head = nn.Linear(backbone.num_features, NUM_ROTATIONS)

    def chance(self, batch_size: int) -> Chance:
        return Chance(math.log(NUM_ROTATIONS), 1 / NUM_ROTATIONS)  # rotations balanced in every batch

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        clips, labels = rotate_clips(batch["clip"], self.cfg.rotations)
        return StepOutput(*cross_entropy_accuracy(self.head(self.backbone(clips)), labels))
