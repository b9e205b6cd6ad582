"""TCE — Temporally Coherent Embeddings (Knights et al., ICPR 2020, arXiv 2004.02753).

Frames close in time in one video embed close together; frames of other
videos embed far apart. A per-frame 2D backbone, a projection to a unit
sphere, a memory bank with one slot per video, and a contrastive loss over
(positive, K negatives drawn from the bank).

Deviations from the authors' release (see shared reference tce.md):
- the temporal offset d defaults to uniform in [1, 4] (the release's d = 0 is a bug);
- random resized crop is real (the release's crop was a no-op);
- InfoNCE is the default loss; the release's binary NCE is available as ``loss: nce``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.method import DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method


@dataclass
class TCEConfig(MethodConfig):
    name: str = "tce"
    offset_min: int = 1  # temporal offset window of the positive, in frames
    offset_max: int = 4
    embed_dim: int = 128
    head: Literal["linear", "mlp"] = "mlp"
    temperature: float = 0.07
    negatives: int = 1024  # K negatives from the memory bank per anchor
    bank_momentum: float = 0.5  # 0: overwrite the anchor's slot; m: m*old + (1-m)*new, renormalised
    loss: Literal["infonce", "nce"] = "infonce"


def projection_head(in_dim: int, out_dim: int, kind: str) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax cross-entropy over [positive, K negatives]; anchor/positive [B, D], negatives [B, K, D], all unit norm."""
    pos = (anchor * positive).sum(-1, keepdim=True)
    neg = torch.einsum("bd,bkd->bk", anchor, negatives)
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(anchor), dtype=torch.long, device=anchor.device))


@register_method("tce")
class TCE(Method):
    """Temporally Coherent Embeddings: nearby frames close, other videos far (memory bank + contrastive loss)."""

    Config = TCEConfig
    sampler = "frame_pair"
    backbone_kind = "2d"

    def __init__(self, cfg: TCEConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        self.head = projection_head(backbone.num_features, cfg.embed_dim, cfg.head)
        bound = 1.0 / math.sqrt(cfg.embed_dim / 3)
        bank = torch.rand(info.num_videos, cfg.embed_dim) * 2 * bound - bound
        self.register_buffer("bank", F.normalize(bank, dim=1))

    @classmethod
    def sampler_options(cls, cfg: TCEConfig, info: DataInfo) -> dict:
        return {"offset_min": cfg.offset_min, "offset_max": cfg.offset_max}

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(frames)).float(), dim=-1)

    def draw_negatives(self, index: torch.Tensor) -> torch.Tensor:
        """K uniform bank entries per anchor, never the anchor's own video: [B, K] indices."""
        n, k = self.bank.shape[0], min(self.cfg.negatives, self.bank.shape[0] - 1)
        draw = torch.randint(0, n - 1, (len(index), k), device=index.device)
        return draw + (draw >= index[:, None]).long()  # skip the anchor's slot

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        index = batch["index"]
        both = torch.cat([batch["anchor"], batch["positive"]])
        z = self.embed(both)
        anchor, positive = z.chunk(2)
        negatives = self.bank[self.draw_negatives(index)]
        loss = info_nce(anchor, positive, negatives, self.cfg.temperature)
        self.update_bank(index, anchor.detach())
        with torch.no_grad():
            pos_sim = (anchor * positive).sum(-1).mean().item()
            neg_sim = torch.einsum("bd,bkd->bk", anchor, negatives).mean().item()
        return StepOutput(loss, {"loss": loss.item(), "pos_sim": pos_sim, "neg_sim": neg_sim})

    @torch.no_grad()
    def update_bank(self, index: torch.Tensor, z: torch.Tensor) -> None:
        m = self.cfg.bank_momentum
        new = z if m == 0 else F.normalize(m * self.bank[index] + (1 - m) * z, dim=1)
        self.bank[index] = new.to(self.bank.dtype)
