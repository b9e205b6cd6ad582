"""MAS — Motion and Appearance Statistics (Wang, Jiao, Bao, He, Liu, Liu, "Self-supervised Spatio-temporal
Representation Learning for Videos by Predicting Motion and Appearance Statistics", CVPR 2019, arXiv 1904.03597).

Pretext: a 3D network regresses, from an RGB clip, summary statistics computed from the same clip: for each
spatial partition pattern (a 4 x 4 grid of blocks, 4 concentric rings, 8 triangles), WHERE the largest motion is
and WHICH WAY it points (from the motion boundaries of the optical flow, u and v separately), when the motion
peaks, where the colour changes most and least over time and what those regions' dominant colours are, and the
clip's dominant colour (:mod:`benchmark.data.statistics` defines every label). Labels are the release's integer
codes; the loss is L2: MSE over the motion labels + ``appearance_weight`` (0.1, the PyTorch release's) x MSE over
the appearance labels, from two linear heads on the backbone's pooled features.

Pretext check (a regression): ``chance()`` is ``Chance(None, None, "r2")`` and ``pretext_eval`` returns
{"loss", "sse", "sst"} on a held-out batch, with every label weighted as in the loss (motion 1 / M, appearance
``appearance_weight`` / A) and ``sst`` the weighted squared distance of the held-out targets to the MEAN OF THE
TRAINING TARGETS: a running mean kept in the buffer ``target_mean`` (with ``target_count``), updated in
``training_step`` from every training batch (all DDP ranks' targets) and never in ``pretext_eval``. Predicting
that mean scores R^2 = 0; the harness calls the pretext learned when the held-out R^2 >= 0.1. Before the first
training step (count 0) the held-out batch's own mean stands in.

Flow is computed on the fly in the loader's workers (``benchmark.data.flow``: OpenCV Farneback by default, DIS
as an option) from the cropped uint8 frames the network sees; the grey frame difference instead of flow is an
explicit option (``motion_source: difference``: 2 labels per pattern and 1 global instead of 4 and 2).

Defaults are CPU-lite (8 frames at the run's resolution, a multiple of 8; about a CPU-minute on the synthetic
set at 32 px); the paper-scale row (sweeps/table1.yaml) uses 16 frames at 112 px.

Deviations from the paper and the releases (TF laura-wang/video_repres_mas: motion only; PyTorch
laura-wang/video_repres_sts: motion + appearance):
- backbone: any harness 3D backbone (inflated resnet10t on CPU, r3d_18 in table1.yaml) with two linear heads on
  pooled features (the PyTorch release's head layout) instead of the CVPR paper's C3D with fc6/fc7/fc8;
  ``head: map`` gives the heads the flattened last feature map instead (as fc6 reads C3D's pool5): pooling
  averages away where things are, which most motion labels ask;
- flow: Farneback from OpenCV instead of pre-computed TV-L1 (not in opencv-python-headless), at the training
  resolution, after the crop; the releases quantise TV-L1 flow to JPEG at +-20 px, this flow is exact floats;
- clips: ``clip_len`` 8 at the run's resolution by default (the paper: 16 frames at 112 px); the partition
  patterns scale with the frame (R a multiple of 8);
- augmentation: one random resized crop (scale 0.5-1) and flip for the whole clip (the releases: a fixed-size
  random crop, the PyTorch one with flips whose u sign it does not correct); the labels are computed after it
  from exactly the pixels the network sees, so flips need no correction; no colour augmentation (it would
  change the appearance labels);
- motion-boundary magnitude and angle with numpy's hypot / arctan2 (the release: ``cv2.cartToPolar``, whose
  angle is approximate to ~0.3 degrees);
- the appearance labels follow the PyTorch (T-PAMI) release; whether the CVPR version had the same 13 is not
  verified; ``dominant_colour: octant`` (the most populated RGB octant rather than the most frequent exact
  triple) is an option against compression noise;
- ties and clips without motion take the first region / bin (the TF release would fail on an all-zero map);
  ``static_frac`` logs how often that happens;
- ``normalise_labels`` (off: the release's raw integers) divides each label by its number of values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.flow import FLOW_ALGORITHMS, MOTION_SOURCES, FlowConfig
from benchmark.data.statistics import DOMINANT_COLOUR, PATTERNS, appearance_label_names, motion_label_names
from benchmark.data.transforms import AugmentConfig
from benchmark.distributed import all_gather_cat
from benchmark.errors import UserError
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method

REGIONS = {"blocks": 16, "rings": 4, "triangles": 8}
OCTANTS = 8
DIRECTIONS = 8


@dataclass
class MotionStatsConfig(MethodConfig):
    name: str = "motion_stats"
    clip_len: int = 8  # frames per clip (the paper: 16)
    stride: int = 1
    patterns: list[str] = field(default_factory=lambda: list(PATTERNS))  # blocks, rings, triangles
    motion: bool = True  # regress the motion statistics
    appearance: bool = True  # regress the appearance statistics
    motion_source: Literal["flow", "difference"] = "flow"  # difference: the grey frame difference (explicit option)
    flow_algorithm: Literal["farneback", "dis"] = "farneback"
    flow_levels: int = 3
    flow_winsize: int = 9
    dominant_colour: Literal["mode", "octant"] = "mode"  # mode: most frequent exact RGB triple (the release)
    appearance_weight: float = 0.1  # the PyTorch release's weight of the appearance MSE
    normalise_labels: bool = False  # divide each label by its number of values (the release: raw integers)
    # pooled: the heads read the backbone's pooled features (the PyTorch release); map: the flattened last feature
    # map, time and space kept (the CVPR paper's fc6 reads C3D's flattened pool5), so a head can tell WHERE
    head: Literal["pooled", "map"] = "pooled"
    crop_scale_min: float = 0.5  # one random resized crop (scale crop_scale_min..1) + flip per clip
    flip: bool = True

    def __post_init__(self) -> None:
        unknown = [p for p in self.patterns if p not in PATTERNS]
        if unknown or not self.patterns or len(set(self.patterns)) != len(self.patterns):
            raise UserError(
                f"method.patterns = {self.patterns}: a non-empty list without repeats of {', '.join(PATTERNS)}"
            )
        if not (self.motion or self.appearance):
            raise UserError("method.motion and method.appearance are both false: nothing to regress")
        if self.motion_source not in MOTION_SOURCES:
            raise UserError(
                f"method.motion_source = {self.motion_source!r} should be one of {', '.join(MOTION_SOURCES)}"
            )
        if self.flow_algorithm not in FLOW_ALGORITHMS:
            raise UserError(
                f"method.flow_algorithm = {self.flow_algorithm!r} should be one of {', '.join(FLOW_ALGORITHMS)}"
            )
        if self.dominant_colour not in DOMINANT_COLOUR:
            raise UserError(
                f"method.dominant_colour = {self.dominant_colour!r} should be one of {', '.join(DOMINANT_COLOUR)}"
            )
        if self.clip_len < 2 or self.stride < 1:
            raise UserError(f"method.clip_len = {self.clip_len} (>= 2: flow needs two frames), stride >= 1")
        if self.flow_levels < 1 or self.flow_winsize < 3:
            raise UserError("method.flow_levels must be >= 1 and method.flow_winsize >= 3")
        if self.appearance_weight < 0:
            raise UserError(f"method.appearance_weight = {self.appearance_weight}: must be >= 0")
        if not 0 < self.crop_scale_min <= 1:
            raise UserError(f"method.crop_scale_min = {self.crop_scale_min}: need 0 < crop_scale_min <= 1")

    def components(self) -> tuple[str, ...]:
        return ("u", "v") if self.motion_source == "flow" else ("d",)

    def motion_names(self) -> list[str]:
        return motion_label_names(tuple(self.patterns), self.components()) if self.motion else []

    def appearance_names(self) -> list[str]:
        return appearance_label_names(tuple(self.patterns)) if self.appearance else []

    def label_ranges(self) -> list[int]:
        """How many values each label takes (motion labels, then appearance labels)."""

        def values(name: str) -> int:
            if name.endswith("_frame"):
                return self.clip_len - 1
            if name == "global_col" or "_col_" in name:
                return OCTANTS
            if "_dir_" in name:
                return DIRECTIONS
            return REGIONS[name.rsplit("_", 1)[1]]  # a location: one of the pattern's regions

        return [values(n) for n in self.motion_names() + self.appearance_names()]


def map_shape(backbone: nn.Module, clip_len: int, info: DataInfo) -> tuple[int, ...]:
    """The shape [F, t, h, w] of the backbone's last feature map for one training clip (a probe forward in eval
    mode, so no BatchNorm statistic moves)."""
    param = next(backbone.parameters())
    probe = torch.zeros(1, clip_len, 3, info.resolution, info.resolution, device=param.device, dtype=param.dtype)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            return tuple(backbone.forward_features(probe).shape[1:])
    finally:
        backbone.train(was_training)


@register_method("motion_stats")
class MotionStats(Method):
    """MAS: regress where the largest motion is, which way it points, and the dominant colours, per region (L2)."""

    Config = MotionStatsConfig
    sampler = "stats_clip"
    backbone_kind = "3d"

    @classmethod
    def sampler_options(cls, cfg: MotionStatsConfig, info: DataInfo) -> dict:
        return {
            "clip_len": cfg.clip_len,
            "stride": cfg.stride,
            "patterns": tuple(cfg.patterns),
            "motion": cfg.motion,
            "appearance": cfg.appearance,
            "motion_source": cfg.motion_source,
            "dominant_colour": cfg.dominant_colour,
            "flow": FlowConfig(cfg.flow_algorithm, levels=cfg.flow_levels, winsize=cfg.flow_winsize),
            "aug": AugmentConfig((cfg.crop_scale_min, 1.0), cfg.flip, jitter=0.0, hue=0.0, gray_p=0.0),
        }

    @classmethod
    def check(cls, cfg: MotionStatsConfig, info: DataInfo) -> None:
        if info.resolution % 8:
            raise UserError(
                f"data.resolution = {info.resolution}: MAS's partition patterns need a multiple of 8 px (e.g. 32, 64, 112)"
            )

    def __init__(self, cfg: MotionStatsConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        f = backbone.num_features if cfg.head == "pooled" else math.prod(map_shape(backbone, cfg.clip_len, info))
        self.num_motion, self.num_app = len(cfg.motion_names()), len(cfg.appearance_names())
        self.motion_head = nn.Linear(f, self.num_motion) if self.num_motion else None
        self.app_head = nn.Linear(f, self.num_app) if self.num_app else None
        n = self.num_motion + self.num_app
        # per-label weight: the loss is MSE_motion + w * MSE_app = sum_i weight_i * mean_b (pred - y)^2
        weight = [1.0 / max(1, self.num_motion)] * self.num_motion
        weight += [cfg.appearance_weight / max(1, self.num_app)] * self.num_app
        self.register_buffer("label_weight", torch.tensor(weight), persistent=False)
        scale = torch.tensor(cfg.label_ranges(), dtype=torch.float32) if cfg.normalise_labels else torch.ones(n)
        self.register_buffer("label_scale", scale, persistent=False)
        # the running mean of the training targets (R^2's baseline); buffers, so checkpoints carry them
        self.register_buffer("target_mean", torch.zeros(n))
        self.register_buffer("target_count", torch.zeros((), dtype=torch.float64))

    def chance(self, batch_size: int) -> Chance:
        """A regression: predicting the training targets' mean scores R^2 = 0 (no closed-form chance loss)."""
        return Chance(None, None, "r2")

    def targets(self, batch: dict) -> torch.Tensor:
        parts = [batch["motion_label"]] if self.num_motion else []
        parts += [batch["app_label"]] if self.num_app else []
        return torch.cat(parts, dim=1).float() / self.label_scale

    def predict(self, clip: torch.Tensor) -> torch.Tensor:
        if self.cfg.head == "map":
            features = self.backbone.forward_features(clip).flatten(1)  # [B, F, t, h, w] -> [B, F*t*h*w]
        else:
            features = self.backbone(clip)
        heads = [h(features) for h in (self.motion_head, self.app_head) if h is not None]
        return torch.cat(heads, dim=1).float()

    def weighted_squares(self, pred: torch.Tensor, target: torch.Tensor, centre: torch.Tensor) -> tuple:
        """(sse, sst): sum over the batch of sum_i weight_i * (pred - y)^2 and of weight_i * (y - centre)^2."""
        sse = ((pred - target).pow(2) * self.label_weight).sum()
        sst = ((target - centre).pow(2) * self.label_weight).sum()
        return sse, sst

    def pretext_eval(self, batch: dict, progress: Progress) -> dict[str, torch.Tensor]:
        """{"loss", "sse", "sst"} on a held-out batch; sst against the training targets' running mean (the
        held-out batch's own mean before any training step). Reads the buffers, never writes them."""
        target = self.targets(batch)
        pred = self.predict(batch["clip"])
        centre = torch.where(self.target_count > 0, self.target_mean, target.mean(0))
        sse, sst = self.weighted_squares(pred, target, centre)
        return {"loss": sse / len(target), "sse": sse, "sst": sst}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        target = self.targets(batch)
        pred = self.predict(batch["clip"])
        with torch.autocast(device_type=pred.device.type, enabled=False):
            squares = (pred - target).pow(2).mean(0)  # [labels]: mean over the batch
            loss = (squares * self.label_weight).sum()  # = MSE_motion + appearance_weight * MSE_app
            scalars: dict[str, torch.Tensor] = {"loss": loss.detach()}
            with torch.no_grad():
                if self.num_motion:
                    scalars["loss_motion"] = squares[: self.num_motion].mean()
                if self.num_app:
                    scalars["loss_app"] = squares[self.num_motion :].mean()
                centre = torch.where(self.target_count > 0, self.target_mean, target.mean(0))
                sse, sst = self.weighted_squares(pred.detach(), target, centre)
                scalars["r2"] = 1 - sse / sst  # against the training mean so far (logged, not the check)
                raw = lambda x: x * self.label_scale  # noqa: E731
                scalars["label_acc"] = (raw(pred.detach()).round() == raw(target)).float().mean()
                scalars["static_frac"] = batch["static"].float().mean()
                self.update_target_mean(target)
        return StepOutput(loss, scalars)

    @torch.no_grad()
    def update_target_mean(self, target: torch.Tensor) -> None:
        """The running mean of every training target seen (all DDP ranks' batches), without a host sync."""
        target = all_gather_cat(target.detach()).double()
        count = self.target_count + len(target)
        mean = self.target_mean.double() + (target.sum(0) - len(target) * self.target_mean.double()) / count
        self.target_mean.copy_(mean.to(self.target_mean.dtype))
        self.target_count.copy_(count)
