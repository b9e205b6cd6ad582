"""Arrow of Time (Wei, Lim, Zisserman, Freeman, "Learning and Using the Arrow of Time", CVPR 2018).

Is this clip playing forwards or backwards? A binary classifier on a clip's features, with every batch
exactly half reversed.

Our adaptation and deviations from the paper:
- input (``input``): the paper's network reads motion (two groups of 10 optical-flow frames). The default,
  ``difference``, reads the clip's ``clip_len - 1`` frame differences (frame t+1 - frame t of the normalised,
  augmented RGB clip; taken after the clip is reversed, so a reversed clip's differences are those of the
  frames as shown). ``rgb`` reads the RGB frames themselves. Optical flow is not offered here: a 2-channel
  backbone would not take RGB frames for fine-tuning. On the synthetic set the RGB input never left chance
  (held-out 50%, 300-1000 steps, 2D and 3D; results/table1-cpu/calibration.md), the differences did;
- evaluation with ``input: difference``: the frozen-feature protocols feed the backbone what it was trained on
  (2D: each test frame's difference to the next frame; 3D: the differences inside each test clip, one frame
  fewer); fine-tuning trains the backbone on RGB frames, as for every method;
- 2D backbone: per-frame features in time order into a small temporal head, either an MLP over their
  concatenation (``head_2d: concat``, default, closest to the paper's concatenated groups) or a 1-layer temporal
  convolution, ReLU and average over time (``head_2d: temporal_conv``), then -> 2 classes;
- 3D backbone: the clip feature -> Linear -> 2 (paper: VGG-16-BN trunk, two conv layers, global pool, linear);
- balance, as in the paper: every clip drawn is shown both ways (``directions: both``, default): the batch of
  B clips becomes 2B, each clip forwards (label 0) and reversed (label 1), so every video of a step is seen in
  both directions and every batch is exactly balanced. ``directions: alternate`` halves the compute: slot i of
  step s is reversed when (i + s) is odd (a video is seen both ways only across steps);
- shortcut guard: one spatial and colour augmentation for all frames of a clip, so only order differs between the
  classes; its strength is set by ``crop_scale_min``/``max``, ``flip``, ``jitter``, ``hue``, ``jitter_p``,
  ``gray_p`` (defaults: the harness's shared augmentation). The paper's removal of black borders and camera-motion
  stabilisation is not done;
- the optimiser and schedule come from the run's ``optim`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.errors import UserError
from benchmark.heads import MLPHead, TemporalConvHead
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class ArrowOfTimeConfig(AugmentFields, MethodConfig):
    name: str = "arrow_of_time"
    clip_len: int = 8  # frames per clip
    stride: int = 2  # frame stride inside the clip
    head_2d: Literal["concat", "temporal_conv"] = "concat"  # temporal head on per-frame features (2D backbones)
    directions: Literal["both", "alternate"] = "both"  # both: each clip forwards and reversed (the paper's)
    hidden_dim: int = 256  # width of the 2D temporal head
    input: Literal["difference", "rgb"] = "difference"  # difference: the clip's frame differences (motion)

    def __post_init__(self) -> None:
        super().__post_init__()  # AugmentFields' checks
        if self.clip_len < 2:
            raise UserError(f"method.clip_len={self.clip_len}: a clip needs at least 2 frames to have a direction")
        if self.input == "difference" and self.clip_len < 3:
            raise UserError(
                f"method.clip_len={self.clip_len}: input: difference needs at least 3 frames (2 differences)"
            )


def frame_differences(clip: torch.Tensor) -> torch.Tensor:
    """[..., T, C, H, W] -> [..., T-1, C, H, W]: frame t+1 minus frame t, in the order the frames are shown."""
    return clip[..., 1:, :, :, :] - clip[..., :-1, :, :, :]


class DifferenceEncoder(nn.Module):
    """The evaluation encoder of a backbone trained on frame differences: it reads what the backbone was trained
    on. 2D: each view is a frame and the next one (``frame_offsets`` (0, 1): [..., 2, C, H, W]) -> their difference;
    3D: a clip [..., T, C, H, W] -> its T-1 differences."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.kind = backbone.kind
        self.num_features = backbone.num_features
        if self.kind == "2d":
            self.frame_offsets = (0, 1)
        # benchmark.evaluation.features: never share cached features with the plain backbone
        self.feature_cache_tag = f"aot-difference:{self.kind}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = frame_differences(x)
        return self.backbone(diff[..., 0, :, :, :] if self.kind == "2d" else diff)


def reversal_mask(batch_size: int, step: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """True where slot i of this step plays backwards: (i + step) odd. Exactly half of an even batch."""
    return (torch.arange(batch_size, device=device) + step) % 2 == 1


@register_method("arrow_of_time")
class ArrowOfTime(Method):
    """Arrow of Time: does this clip play forwards or backwards? (frame differences or RGB, balanced batches)."""

    Config = ArrowOfTimeConfig
    sampler = "clip"
    sampler_fields = ("clip_len", "stride")
    backbone_kind = "either"

    def __init__(self, cfg: ArrowOfTimeConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        f = backbone.num_features
        if backbone.kind == "3d":  # clip feature [B, F] -> 2
            self.head: nn.Module = nn.Linear(f, 2)
        elif cfg.head_2d == "concat":  # per-frame features concatenated in time order -> MLP -> 2
            steps = cfg.clip_len - 1 if cfg.input == "difference" else cfg.clip_len
            self.head = nn.Sequential(nn.Flatten(1), MLPHead(steps * f, 2, hidden=(cfg.hidden_dim,)))
        else:
            self.head = TemporalConvHead(f, cfg.hidden_dim, 2)

    @classmethod
    def eval_encoder(cls, cfg: ArrowOfTimeConfig, backbone: nn.Module, model_state) -> nn.Module:
        """``input: difference``: the backbone reads frame differences at test time too (:class:`DifferenceEncoder`)."""
        return DifferenceEncoder(backbone) if cfg.input == "difference" else backbone

    def chance(self, batch_size: int) -> Chance:
        return Chance(math.log(2), 0.5)  # forwards / backwards, exactly balanced

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        clip = batch["clip"]  # [B, T, C, H, W], in playing order
        if self.cfg.directions == "both":  # each clip forwards, then each clip reversed
            backwards = torch.arange(2 * len(clip), device=clip.device) >= len(clip)
            clip = torch.cat([clip, clip.flip(1)])
        else:
            backwards = reversal_mask(len(clip), progress.step, clip.device)
            clip = torch.where(backwards[:, None, None, None, None], clip.flip(1), clip)
        if self.cfg.input == "difference":  # after the reversal: the differences of the frames as shown
            clip = frame_differences(clip)
        logits = self.head(self.backbone(clip))  # 2D: [B, T, F] -> head; 3D: [B, F] -> linear
        return StepOutput(*cross_entropy_accuracy(logits, backwards.long()))
