"""TCE — Temporally Coherent Embeddings (Knights et al., ICPR 2020, arXiv 2004.02753).

Frames close in time in one video embed close together; frames of other
videos embed far apart. A per-frame 2D backbone, a projection to a unit
sphere, a memory bank with one slot per video, a contrastive loss over
(positive, K negatives from the bank) and hard-negative mining whose
similarity threshold rises over training. The math lives in
:mod:`benchmark.losses` and :mod:`benchmark.mining`; this file wires it.

Defaults follow the specification (shared reference tce.md): a linear
projection head, the anchor's bank slot overwritten after each step, InfoNCE,
independent per-frame augmentation with colour jitter always applied
(brightness/contrast/saturation 0.5, hue 0.25), random gray p = 0.5, random
resized crop and horizontal flip, temperature 0.07, K negatives per anchor.

Deviations from the authors' release (see shared reference tce.md):
- the temporal offset d defaults to uniform in [1, 4]; d = 0 (the release's
  default, a bug) needs ``allow_zero_offset: true`` and is an ablation;
- random resized crop is real (the release's crop was a no-op), scale
  ``crop_scale_min``-``crop_scale_max`` (0.5-1 by default);
- the horizontal flip is drawn per frame (the release flipped anchor and
  positive together);
- K = ``negatives: auto`` = min(8192, floor((N - 1) / 4)) for a bank of N videos:
  the release's 8192 wherever the bank has over 32k videos (Kinetics-400),
  fewer on smaller sets so that hard-negative mining can still choose (the
  resolved K is written to the run's config.yaml; K above (N - 1) / 4 with
  mining on is refused at load);
- InfoNCE is the default loss; the release's binary NCE is ``loss: nce``
  (its normaliser Z is estimated once and stored in the checkpoint);
- mining is vectorised, compares against the bank's transpose, honours
  ``mining_schedule: none``, and its exponential schedule rises (the
  release's never left -1, so it never mined);
- the rotation task (``rotation_aux``) rotates the augmented anchor frame
  rather than a third, separately augmented copy (one decode fewer);
- ``batch_negatives`` (off by default; not in the release) adds the batch's
  live positives of other videos to InfoNCE's negatives.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.transforms import AugmentFields
from benchmark.distributed import all_gather_cat
from benchmark.errors import UserError
from benchmark.heads import MLPHead
from benchmark.losses import binary_nce, contrastive_logits, estimate_normaliser, info_nce_from_logits
from benchmark.losses.rotation import rotate_quarter_turns, rotation_loss
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.mining import SCHEDULES, ThresholdSchedule, init_bank, mine_negatives, momentum_update_
from benchmark.registry import register_method
from benchmark.smoothness import embedding_smoothness

RELEASE_K = 8192  # the release's negatives per anchor


@dataclass
class TCEConfig(AugmentFields, MethodConfig):
    name: str = "tce"
    # sampling: the positive is d frames from the anchor, d uniform in [offset_min, offset_max]
    offset_min: int = 1
    offset_max: int = 4
    allow_zero_offset: bool = False  # d = 0 (the release's bug) only as an explicit ablation
    # network
    embed_dim: int = 128
    head: Literal["linear", "mlp"] = "linear"  # the specification and release: one linear layer
    # augmentation (AugmentFields: crop_scale_min/max 0.5-1, flip, jitter 0.5, hue 0.25, gray_p 0.5), drawn
    # independently for anchor and positive (the specification's)
    jitter_p: float = 1.0  # the specification applies colour jitter always
    # loss
    loss: Literal["infonce", "nce"] = "infonce"  # nce: the release's binary NCE with a constant normaliser
    temperature: float = 0.07
    negatives: int | Literal["auto"] = "auto"  # K per anchor; auto = min(8192, floor((N - 1) / 4)), N bank slots
    bank_momentum: float = 0.0  # 0: overwrite the anchor's slot (release); m: m*old + (1-m)*new, renormalised
    batch_negatives: bool = False  # infonce: also the batch's live positives of other videos (not in the release)
    # hard-negative mining: threshold thr(step); entries >= thr are not eligible, the hardest eligible are taken
    mining_schedule: Literal["none", "fixed", "exponential", "linear", "step"] = "exponential"
    mining_r: float = 5.0  # exponential: thr = t_low + (t_high - t_low)(1 - exp(-r s/S))
    mining_t_low: float = -1.0
    mining_t_high: float = 1.0
    mining_fixed_threshold: float = 0.5  # fixed
    mining_step_count: int = 4  # step: rises in this many equal steps
    max_hard_fraction: float = 1.0  # at most this fraction of the K negatives is hard
    # auxiliary rotation prediction (the release's; unverified in the paper)
    rotation_aux: bool = False
    rotation_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.offset_min < 0 or self.offset_max < self.offset_min:
            raise UserError(
                f"method.offset_min/offset_max = {self.offset_min}/{self.offset_max}: need 0 <= offset_min <= offset_max"
            )
        if self.offset_min == 0 and not self.allow_zero_offset:
            raise UserError(
                "method.offset_min = 0 makes the positive the anchor frame itself (the release's bug); "
                "set method.allow_zero_offset=true to run it as an ablation"
            )
        if self.temperature <= 0:
            raise UserError(f"method.temperature = {self.temperature}: must be > 0")
        if self.negatives != "auto" and self.negatives < 1:
            raise UserError(f"method.negatives = {self.negatives}: 'auto' or a count >= 1")
        if self.embed_dim < 1:
            raise UserError(f"method.embed_dim = {self.embed_dim}: must be >= 1")
        super().__post_init__()  # AugmentFields' checks
        if not 0 <= self.bank_momentum < 1:
            raise UserError(f"method.bank_momentum = {self.bank_momentum} should be in [0, 1)")
        if not 0 <= self.max_hard_fraction <= 1:
            raise UserError(f"method.max_hard_fraction = {self.max_hard_fraction} should be in [0, 1]")
        if self.mining_t_low > self.mining_t_high or self.mining_step_count < 1:
            raise UserError("method.mining_t_low must be <= mining_t_high and mining_step_count >= 1")
        if self.batch_negatives and self.loss != "infonce":
            raise UserError(
                "method.batch_negatives needs method.loss=infonce (the release's NCE uses bank negatives only)"
            )
        if self.mining_schedule not in SCHEDULES:
            raise UserError(
                f"method.mining_schedule = {self.mining_schedule!r} should be one of {', '.join(SCHEDULES)}"
            )

    def schedule(self) -> ThresholdSchedule:
        return ThresholdSchedule(
            self.mining_schedule,
            self.mining_t_low,
            self.mining_t_high,
            self.mining_r,
            self.mining_fixed_threshold,
            self.mining_step_count,
        )


@register_method("tce")
class TCE(Method):
    """Temporally Coherent Embeddings: nearby frames close, other videos far (memory bank, hard-negative mining)."""

    Config = TCEConfig
    sampler = "frame_pair"
    backbone_kind = "2d"

    @classmethod
    def sampler_options(cls, cfg: TCEConfig, info: DataInfo) -> dict:
        return {"offset_min": cfg.offset_min, "offset_max": cfg.offset_max, "aug": cfg.augment()}

    @classmethod
    def smoke_overrides(cls, cfg: TCEConfig) -> dict:
        """A bank-sized K (8192 on Kinetics) cannot fit the stand-in's few videos: resolve it there instead."""
        return {"method.negatives": "auto"} if cfg.negatives != "auto" else {}

    @classmethod
    def resolve(cls, cfg: TCEConfig, info: DataInfo) -> TCEConfig:
        """K = 'auto' -> min(8192, floor((N - 1) / 4)): the release's K where the bank is big enough, else the
        largest K that leaves hard-negative mining a choice (at least 4 candidates per negative)."""
        if cfg.negatives != "auto":
            return cfg
        return dataclasses.replace(cfg, negatives=max(1, min(RELEASE_K, (info.num_videos - 1) // 4)))

    @classmethod
    def check(cls, cfg: TCEConfig, info: DataInfo) -> None:
        n = info.num_videos
        if n < 2:
            raise UserError(f"TCE needs at least 2 pre-training videos (one bank slot each), got {n}")
        k = cls.resolve(cfg, info).negatives
        if cfg.mining_schedule != "none" and n - 1 < 4 * k:
            raise UserError(
                f"hard-negative mining needs N - 1 >= 4K to choose anything: N = {n} bank slots (videos), "
                f"K = {k} negatives; set method.negatives <= {max(1, (n - 1) // 4)} (or auto), or mining_schedule=none"
            )

    def __init__(self, cfg: TCEConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        f = backbone.num_features
        self.head = MLPHead(f, cfg.embed_dim, hidden=(f,) if cfg.head == "mlp" else (), batch_norm=True)
        # the release's rotation head: C -> 200 -> 200 -> 4 with BN + ReLU
        self.rotation_head = MLPHead(f, 4, hidden=(200, 200), batch_norm=True) if cfg.rotation_aux else None
        self.schedule = cfg.schedule()
        self.num_negatives = min(self.resolve(cfg, info).negatives, info.num_videos - 1)
        self.register_buffer("bank", init_bank(info.num_videos, cfg.embed_dim))
        # NCE's normaliser Z: 0 until estimated from the first batch; a buffer, so checkpoints carry it
        self.register_buffer("nce_normaliser", torch.zeros(()))
        self._normaliser_known: bool | None = None  # read from the buffer once (one host sync), then kept

    def chance(self, batch_size: int) -> Chance:
        """Training loss: InfoNCE over the positive and K negatives (+ the batch's other videos with
        batch_negatives); the release's NCE has no closed form here. Pretext measure: in-batch retrieval (see
        :meth:`pretext_eval`), one right answer among the batch's videos."""
        candidates = 1 + self.num_negatives + (batch_size - 1 if self.cfg.batch_negatives else 0)
        return Chance(math.log(candidates) if self.cfg.loss == "infonce" else None, 1 / max(1, batch_size))

    def pretext_eval(self, batch: dict, progress: Progress) -> dict[str, torch.Tensor]:
        """Instance discrimination on held-out videos: each anchor frame must pick its own video's positive
        frame among the positives of the batch's other videos (in-batch retrieval, chance 1/videos). The
        memory bank is neither read nor written: its slots belong to the training videos, and at step 0 they
        are random vectors that would make the task trivially easy."""
        index = batch["index"].to(device=batch["anchor"].device, dtype=torch.long)
        anchor, positive = self.embed(batch["anchor"]), self.embed(batch["positive"])
        same_video_other_row = (index[:, None] == index[None, :]) & ~torch.eye(len(index), dtype=torch.bool,
                                                                               device=index.device)  # fmt: skip
        logits = (anchor @ positive.T / self.cfg.temperature).masked_fill(same_video_other_row, float("-inf"))
        target = torch.arange(len(index), device=index.device)
        candidates = (~same_video_other_row).sum(1).float()
        return {
            "loss": F.cross_entropy(logits, target),
            "accuracy": (logits.argmax(1) == target).float().mean(),
            "chance_accuracy": (1 / candidates).mean(),
        }

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(frames)).float(), dim=-1)

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        index = batch["index"].to(device=batch["anchor"].device, dtype=torch.long)
        frames = [batch["anchor"], batch["positive"]]
        if self.rotation_head is not None:
            turns = torch.randint(0, 4, (len(index),), device=index.device)
            frames.append(rotate_quarter_turns(batch["anchor"], turns))
        features = self.backbone(torch.cat(frames))
        anchor, positive = F.normalize(self.head(features[: 2 * len(index)]).float(), dim=-1).chunk(2)
        with torch.autocast(device_type=anchor.device.type, enabled=False):  # the loss and mining in fp32
            loss, scalars = self.contrastive_loss(anchor, positive, index, progress)
        if self.rotation_head is not None:
            logits = self.rotation_head(features[2 * len(index) :]).float()
            rot = rotation_loss(logits, turns)
            accuracy = (logits.detach().argmax(1) == turns).float().mean()
            scalars.update(loss_rotation=rot.detach(), rotation_acc=accuracy, loss_contrastive=loss.detach())
            loss = loss + self.cfg.rotation_weight * rot
        self.update_bank(index, anchor.detach())
        scalars.update(embedding_smoothness(anchor, positive, index))
        return StepOutput(loss, {"loss": loss.detach(), **scalars})

    def contrastive_loss(
        self, anchor: torch.Tensor, positive: torch.Tensor, index: torch.Tensor, progress: Progress
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """Mine K negatives from the bank, then InfoNCE or NCE; gradients reach anchor and positive, never the bank."""
        threshold = self.schedule(progress.step, progress.total_steps)
        mined = mine_negatives(
            anchor.detach(), self.bank, index, self.num_negatives, threshold, self.cfg.max_hard_fraction
        )
        negatives = self.bank[mined.indices].detach()  # [B, K, D]
        logits = contrastive_logits(anchor, positive, negatives, self.cfg.temperature)
        if self.cfg.batch_negatives:  # live negatives carry gradient: they push the videos of a batch apart
            in_batch = (anchor @ positive.T / self.cfg.temperature).masked_fill(
                index[:, None] == index[None, :], float("-inf")
            )
            logits = torch.cat([logits, in_batch], dim=1)
        if self.cfg.loss == "nce":
            if self._normaliser_known is None:  # a resumed run carries Z in its checkpoint
                self._normaliser_known = bool(self.nce_normaliser != 0)
            if not self._normaliser_known:  # estimated once (averaged over DDP ranks), then constant
                estimate = all_gather_cat(estimate_normaliser(logits, len(self.bank))[None]).mean()
                self.nce_normaliser.copy_(estimate.to(self.nce_normaliser.dtype))
                self._normaliser_known = True
            loss = binary_nce(logits, self.nce_normaliser, len(self.bank))
        else:
            loss = info_nce_from_logits(logits)
        neg_sim = logits[:, 1 : 1 + self.num_negatives].detach().mean().double() * self.cfg.temperature
        return loss, {**mined.stats(), "neg_sim": neg_sim}

    @torch.no_grad()
    def update_bank(self, index: torch.Tensor, z: torch.Tensor) -> None:
        index, z = all_gather_cat(index), all_gather_cat(z)  # DDP: every rank writes the whole global batch
        momentum_update_(self.bank, index, z, self.cfg.bank_momentum)
