"""SimCLR on clips: a vssl-bench method plugin (an example of the out-of-tree path).

SimCLR (Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020) with the two views taken as two clips from different times of one video,
each with its own augmentation (the temporal-view idea of CVRL, Qian et al., CVPR 2021). Loss: NT-Xent
over the 2B embeddings of a batch (each clip's positive is the other clip of its video; every other clip
in the batch is a negative).

Deviations from SimCLR / CVRL: a 2-layer projection head with BatchNorm at small width (SimCLR: 2048 ->
128); negatives are the clips of the local batch (under DDP not gathered across ranks); no LARS optimiser
(the run's ``optim`` section decides); 2D backbones average their per-frame features over the clip.

Registered entirely from here: the harness finds this module through the ``vssl.methods`` entry point in
pyproject.toml, and importing it runs the two decorators below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import MethodConfig
from benchmark.data.samplers import Sampler, loop_index
from benchmark.data.transforms import AugmentConfig, AugmentFields, train_transform
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.registry import register_method, register_sampler


@register_sampler("two_clips")
class TwoClips(Sampler):
    """Two clips of ``clip_len`` frames at ``stride`` from independent random times of one video, each with its
    own augmentation (shared by that clip's frames) -> {"clip_a": [T,C,H,W], "clip_b": [T,C,H,W]}."""

    def __init__(self, clip_len: int = 8, stride: int = 2, aug: AugmentConfig = AugmentConfig(), **kw: Any):
        super().__init__(**kw)
        self.clip_len, self.stride = clip_len, stride
        self.frames_needed = (clip_len - 1) * stride + 1
        if self.train:
            self.transform = train_transform(self.resolution, aug)

    def random_clip(self, video, rng: np.random.Generator) -> torch.Tensor:
        n = video.num_frames
        start = int(rng.integers(0, max(1, n - self.frames_needed + 1)))
        indices = loop_index(range(start, start + self.frames_needed, self.stride), n)  # loop-pads a short video
        return self.transform(video.get_frames(indices))  # one call: one augmentation for the whole clip

    def __call__(self, video, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        self.check_length(video.num_frames)  # raises ShortVideo when data.short_video=skip
        return {"clip_a": self.random_clip(video, rng), "clip_b": self.random_clip(video, rng)}


# AugmentFields adds method.crop_scale_min/max, flip, jitter, hue, jitter_p and gray_p (defaults: AugmentConfig(),
# the sampler's own default); the base Method.sampler_options hands them to the sampler as `aug`
@dataclass
class SimCLRClipsConfig(AugmentFields, MethodConfig):
    name: str = "simclr_clips"
    clip_len: int = 8
    stride: int = 2
    embed_dim: int = 128
    hidden_dim: int = 512
    temperature: float = 0.1


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2B unit vectors where rows i and i+B are the two views of one video."""
    n = len(z) // 2
    logits = z @ z.t() / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own positive or negative
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


@register_method("simclr_clips")
class SimCLRClips(Method):
    """SimCLR on clips (plugin example): two clips of a video attract, other videos' clips repel (NT-Xent)."""

    Config = SimCLRClipsConfig
    sampler = "two_clips"
    sampler_fields = ("clip_len", "stride")
    backbone_kind = "either"
    # vssl-bench's registry-wide learning test pre-trains the method with these overrides: held-out retrieval
    # 0.725 -> 0.922 (needed 0.758; seeds 1, 2: 0.906, 0.910), ~10 CPU s (2026-12-05, AMD EPYC avx512, fp32)
    learning_test_budget = ("data.resolution=32", "optim.batch_size=16", "optim.steps=100", "optim.lr=0.003",
                            "method.clip_len=4", "method.embed_dim=64", "method.hidden_dim=128",
                            "method.crop_scale_min=0.8", "method.jitter=0", "method.hue=0", "method.gray_p=0")  # fmt: skip

    def __init__(self, cfg: SimCLRClipsConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        f = backbone.num_features
        self.projection = nn.Sequential(
            nn.Linear(f, cfg.hidden_dim),
            nn.BatchNorm1d(cfg.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden_dim, cfg.embed_dim),
        )

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        features = self.backbone(clips)  # 3D: [N, F]; 2D: [N, T, F]
        if features.dim() == 3:
            features = features.mean(1)
        return F.normalize(self.projection(features).float(), dim=-1)

    def chance(self, batch_size: int) -> Chance:
        """Each of the 2B views must find its partner among the 2B - 1 others (the harness's pretext check)."""
        others = max(1, 2 * batch_size - 1)
        return Chance(math.log(others), 1 / others)

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        z = self.embed(torch.cat([batch["clip_a"], batch["clip_b"]]))
        loss = nt_xent(z, self.cfg.temperature)
        with torch.no_grad():
            a, b = z.chunk(2)
            positive_similarity = (a * b).sum(-1).mean()
            sim = (z @ z.t()).fill_diagonal_(float("-inf"))
            n = len(a)
            partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
            accuracy = (sim.argmax(1) == partner).float().mean()  # the default pretext_eval reads this
        return StepOutput(loss, {"loss": loss.detach(), "pos_sim": positive_similarity, "accuracy": accuracy})
