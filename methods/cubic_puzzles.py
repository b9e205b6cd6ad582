"""3D Cubic Puzzles -- Space-Time Cubic Puzzles (Kim, Cho, Kweon, "Self-Supervised Video Representation Learning
with Space-Time Cubic Puzzles", AAAI 2019, pp. 8545-8552, arXiv 1811.09795).

Pretext: a space-time cube of a video is cut into a 2 x 2 spatial x 4 temporal grid, and one sample uses four
of its cells: the four spatial cells of one time slot (a *spatial* puzzle, 2x2x1) or the four time slots of one
spatial position (a *temporal* puzzle, 1x1x4). The four 3D pieces are shown in one of the 4! = 24 orders; a shared
3D backbone embeds each piece (a four-tower late-fusion network), the four pooled features are concatenated in
presentation order and a classifier predicts the order (24-way cross-entropy; chance ln 24, 1/24). Solving the
spatial puzzle needs the layout of objects and scenes, the temporal one the direction and continuity of motion.
Two guards against low-level shortcuts: every piece sits at a random offset inside its cell (no aligned borders,
gaps of up to 2 x tgap frames between temporal pieces), and channel replication (one random RGB channel copied
into all three) removes chromatic-aberration and colour-continuity cues.

Class c shows the pieces in the order ``itertools.permutations(range(4))[c]``: position i holds the piece of
canonical index ``order[i]`` (canonical: raster order top-left, top-right, bottom-left, bottom-right for a spatial
puzzle, temporal order for a temporal one); :func:`methods.vcop.shuffle_clips` does the shuffling. The sampler is
``cubic_puzzle`` (benchmark/data/samplers.py), which documents the cutting. Measures: ``accuracy`` over the 24
orders (chance 1/24; what the held-out pretext check reads) and ``acc_spatial`` / ``acc_temporal`` per puzzle mode
(NaN, i.e. not logged, when a batch holds no puzzle of that mode).

No public code of the paper exists (to our knowledge); what the paper does not pin down here is a reconstruction,
each a config field. Deviations and reconstructions:
- lite scale by default (the CPU set's 32-frame, 64-px videos): pieces of ``piece_len`` = 6 frames at stride 1 and
  ``piece_scale`` x (resolution / 2) px (28 px at 64 px, up to 4 px of jitter), temporal segments of 6 + ``tgap``
  (2) = 8 frames (4 x 8 = 32 frames: one whole synthetic video); the full-scale row (sweeps/table1.yaml) uses
  16-frame pieces at 112 px (cell 56, piece 49, tgap 4: an 80-frame temporal window), a reconstruction of the
  paper's setting, not its published numbers; pieces never fall under 17 px (what the inflated resnet10t takes): below
  40 px (at the default ``piece_scale``) the cube is larger than ``data.resolution`` (32 px: a 40-px cube, 18-px pieces);
- one puzzle mode per sample, spatial with probability ``spatial_p`` = 0.5, and one shared 24-way classifier for
  both modes (reconstruction);
- channel replication on every piece (``channel_rep: piece``, ``channel_rep_p`` = 1.0; drawn per piece is a
  reconstruction: ``sample`` draws one channel per sample, ``off`` disables it);
- the shared augmentation (random resized crop of the whole cube, flip, colour jitter; no random gray) is drawn
  once per sample before the cube is cut; the temporal pieces share one cell-sized spatial window, each with its
  own jitter (reconstruction);
- head: concatenated features -> Linear(4F, ``hidden_dim`` = 512) -> ReLU -> Dropout(``dropout`` = 0.5) ->
  Linear(512, 24) (jigsaw-CFN style; the paper's head width is not stated);
- the permutation is drawn in the training step (uniform over the 24 orders), not in the data loader;
- the backbone is any registered 3D backbone (the paper: the 3D ResNet-18 of Hara et al., i.e. r3d_18);
- evaluation clips (``eval.clip_len`` frames at the full resolution) are larger than the pieces pre-training saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.samplers import NUM_PIECES, SPATIAL_PUZZLE, TEMPORAL_PUZZLE
from benchmark.data.transforms import AugmentConfig
from benchmark.errors import UserError
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method
from methods.vcop import clip_orders, shuffle_clips


@dataclass
class CubicPuzzlesConfig(MethodConfig):
    name: str = "cubic_puzzles"
    piece_len: int = 6  # frames per piece (full scale: 16)
    stride: int = 1  # between frames of a piece
    tgap: int = 2  # temporal puzzle: extra frames per segment, the room for each piece's random start
    piece_scale: float = 0.875  # piece side / cell side (cell: resolution / 2, more if pieces < 17 px); rest: jitter
    spatial_p: float = 0.5  # probability of a spatial puzzle (else temporal)
    channel_rep: Literal["piece", "sample", "off"] = "piece"  # channel replication drawn per piece / per sample
    channel_rep_p: float = 1.0
    hidden_dim: int = 512
    dropout: float = 0.5
    crop_scale_min: float = 0.5  # the shared random resized crop of the cube
    jitter: float = 0.5  # shared colour jitter strength (brightness, contrast, saturation); hue 0.25 x jitter / 0.5

    def __post_init__(self) -> None:
        checks = [
            (self.piece_len >= 1 and self.stride >= 1, f"method.piece_len and method.stride must be >= 1, got "
                                                       f"{self.piece_len} and {self.stride}"),
            (self.tgap >= 0, f"method.tgap = {self.tgap}: must be >= 0"),
            (0.5 <= self.piece_scale <= 1, f"method.piece_scale = {self.piece_scale}: the piece's share of a grid "
                                           "cell, in [0.5, 1] (1: no spatial jitter)"),
            (0 <= self.spatial_p <= 1, f"method.spatial_p = {self.spatial_p}: a probability, in [0, 1]"),
            (0 <= self.channel_rep_p <= 1, f"method.channel_rep_p = {self.channel_rep_p}: a probability, in [0, 1]"),
            (self.hidden_dim >= 1, f"method.hidden_dim = {self.hidden_dim}: must be >= 1"),
            (0 <= self.dropout < 1, f"method.dropout = {self.dropout}: must be in [0, 1)"),
            (0 < self.crop_scale_min <= 1, f"method.crop_scale_min = {self.crop_scale_min}: must be in (0, 1]"),
            (self.jitter >= 0, f"method.jitter = {self.jitter}: must be >= 0"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise UserError(message)


@register_method("cubic_puzzles")
class CubicPuzzles(Method):
    """3D Cubic Puzzles: order 4 shuffled 3D pieces of a spatial (2x2) or temporal (4x1) puzzle (24 classes)."""

    Config = CubicPuzzlesConfig
    sampler = "cubic_puzzle"
    backbone_kind = "3d"

    def __init__(self, cfg: CubicPuzzlesConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.register_buffer("orders", clip_orders(NUM_PIECES), persistent=False)
        f = backbone.num_features
        self.head = nn.Sequential(
            nn.Linear(NUM_PIECES * f, cfg.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, len(self.orders)),
        )

    @classmethod
    def sampler_options(cls, cfg: CubicPuzzlesConfig, info: DataInfo) -> dict:
        aug = AugmentConfig(crop_scale=(cfg.crop_scale_min, 1.0), flip=True, jitter=cfg.jitter, hue=cfg.jitter / 2,
                            gray_p=0.0)  # fmt: skip
        return {"piece_len": cfg.piece_len, "stride": cfg.stride, "tgap": cfg.tgap, "piece_scale": cfg.piece_scale,
                "spatial_p": cfg.spatial_p, "channel_rep": cfg.channel_rep, "channel_rep_p": cfg.channel_rep_p,
                "aug": aug}  # fmt: skip

    def chance(self, batch_size: int) -> Chance:
        n = len(self.orders)  # orders drawn uniformly
        return Chance(math.log(n), 1 / n)

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        pieces, labels = shuffle_clips(batch["pieces"], self.orders)
        logits = self.head(self.backbone(pieces).flatten(1)).float()  # [B, 4, F] -> [B, 4F] -> [B, 24]
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            correct = (logits.argmax(1) == labels).float()
            mode = batch["mode"].to(correct.device)
            scalars = {"loss": loss.detach(), "accuracy": correct.mean()}
            for name, code in (("acc_spatial", SPATIAL_PUZZLE), ("acc_temporal", TEMPORAL_PUZZLE)):
                chosen = (mode == code).float()
                count = chosen.sum()  # NaN when the batch holds no puzzle of this mode: "not measured"
                scalars[name] = torch.where(count > 0, (correct * chosen).sum() / count.clamp(min=1), math.nan)
        return StepOutput(loss, scalars)
