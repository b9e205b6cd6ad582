"""CMC for video — Contrastive Multiview Coding (Tian, Krishnan, Isola, "Contrastive Multiview Coding",
arXiv 1906.05849, 2019; ECCV 2020).

Pretext: two views of the same moment of a video -- the RGB frame at t and its optical flow (the paper's
"dorsal" pair; ``view2: frame`` gives the "ventral" pair, the frame at t+d) -- are embedded by two encoders of
the same architecture, each followed by a linear layer to a 128-d unit vector. Each view's embedding must pick
out the other view of the same video among K negatives drawn from a memory bank of the OTHER view (one bank per
view, one slot per video): the loss is the release's binary NCE with a constant normaliser Z per view
(``loss: nce``), or InfoNCE (``loss: infonce``), summed over the two views. After scoring, each video's slot in
each bank moves halfway to the new embedding (momentum 0.5) and is renormalised.

Two encoders: ``backbone`` (the harness's shared backbone) encodes RGB and is what evaluation reads; the second
(``view2_encoder``) is built by the same factory from the same configuration (``build_backbone_like``: same
architecture, its own random init) for the second view's input channels -- 2 for one flow field (u, v), 2L for
a stack of L fields (timm builds its stem for that many channels), 3 for ``flow_encoding: uvm`` (u, v and the
magnitude: the RGB architecture unchanged), a frame or an RGB difference. It is a submodule, so checkpoints
(``model``) carry it; ``checkpoints/*.pt["backbone"]`` holds the RGB encoder only, as for every method.

Flow: computed on the fly in the loader's workers with OpenCV (``benchmark.data.flow``), after the shared crop
and flip, so it matches the pixels the RGB encoder sees; encoded as flow / bound clipped to [-1, 1]
(bound = 20 px at 256 px, scaled to the resolution). Frame differences are an explicit option
(``view2: difference``).

Defaults are CPU-lite (they make the pretext learnable in about a CPU-minute at 32 px on the synthetic set):
InfoNCE, K = ``negatives: auto`` = min(16384, N - 1) negatives for a bank of N videos, temperature 0.07. The
paper-scale row (sweeps/table1.yaml) sets ``loss: nce``.

Deviations from the paper and the release (HobbitLong/CMC, whose code covers images only):
- backbone: any harness 2D backbone per view (resnet10t on CPU, ResNet-18 in table1.yaml) instead of a CaffeNet
  per view; the RGB encoder is the harness's shared backbone, the flow encoder a second instance of it;
- flow: Farneback (or DIS) from OpenCV instead of TV-L1 (not in opencv-python-headless), computed at the
  training resolution after augmentation; ``flow_stack`` = 1 field by default (the paper stacks ~10);
- the default loss is InfoNCE (``loss: nce`` is the release's default and the table1.yaml row's);
- negatives are drawn uniformly with replacement (as the release's alias sampler with uniform weights), so the
  anchor's own slot may be among them; K is capped at N - 1 by ``auto``;
- the memory banks start uniform in +-1/sqrt(D/3) (the release's, not normalised), one slot per VIDEO (the
  paper's instances are frames of videos: a video's slot holds whichever of its moments was seen last);
- augmentation (unverified for the paper's video experiment): one random resized crop (scale 0.5-1) and flip
  shared by both views, colour jitter (0.4, hue 0.1, p 0.8) and random gray (p 0.2) on RGB frames only;
  ``crop: independent`` (ventral pair only) crops and flips the two frames independently, as TCE does (a shared
  crop lets the two frames be matched by where things are; on held-out videos it did not help:
  results/table1-cpu/calibration.md);
- evaluation reads the RGB encoder by default (as for every method); ``eval_features: concat`` gives the paper's
  concatenation of both encoders' features (linear probe and kNN; fine-tuning trains the RGB encoder). With
  ``view2: frame`` the second encoder reads the same test frames; with flow or difference, each test frame is
  decoded with the frames its motion needs, and the motion is computed as in training (centre crop, no
  augmentation). The flow is computed in the evaluating process: on the synthetic set at 32 px (960 videos x 4
  frames, one thread) extraction took 4.4 s against 3.6 s for the RGB encoder alone; at 224 px Farneback costs
  ~27 ms per pair (results/perf/flow.md);
- the published CMC row of the TCE table (UCF101 55.3, "CaffeNet x2") is, as recalled but not verified, the
  paper's two-view RGB-vs-neighbouring-frame model (CMC(V)); ``view2: frame`` reproduces that reading,
  ``view2: flow`` the dorsal pair; table1.yaml runs both.

The pretext check (``pretext_eval``) is in-batch cross-view retrieval on held-out videos: each RGB embedding
must retrieve its own video's second view among the batch's (and each second view its RGB frame), chance
1 / videos in the batch; the banks are neither read nor written.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones import ConcatenatedBackbones, build_backbone_like
from benchmark.config import MethodConfig
from benchmark.data.flow import (
    FLOW_ALGORITHMS,
    FLOW_ENCODINGS,
    VIEWS,
    FlowConfig,
    default_bound,
    motion_offsets,
    motion_view,
    view2_channels,
)
from benchmark.data.transforms import AugmentFields, to_uint8
from benchmark.distributed import all_gather_cat
from benchmark.errors import UserError
from benchmark.heads import MLPHead
from benchmark.losses import binary_nce, estimate_normaliser, info_nce_from_logits
from benchmark.method import Chance, DataInfo, Method, Progress, StepOutput
from benchmark.mining import momentum_update_
from benchmark.registry import register_method

RELEASE_K = 16384  # the release's nce_k


@dataclass
class CMCConfig(AugmentFields, MethodConfig):
    name: str = "cmc"
    # views
    view2: Literal["flow", "frame", "difference"] = "flow"  # flow: dorsal pair; frame: ventral (frame at t+d)
    flow_algorithm: Literal["farneback", "dis"] = "farneback"
    flow_levels: int = 3  # Farneback pyramid levels
    flow_winsize: int = 9  # Farneback averaging window (px)
    flow_stack: int = 1  # L flow fields t -> t+s -> ... (the paper: ~10)
    flow_stride: int = 1  # s: frames between the two frames of a flow field
    flow_encoding: Literal["uv", "uvm"] = "uv"  # uv: 2L channels; uvm: u, v, |f| (3 channels, L = 1)
    flow_bound: float | Literal["auto"] = "auto"  # px mapped to +-1; auto: 20 px at 256 px, scaled to R
    offset_min: int = 1  # view2 = frame: d uniform in [offset_min, offset_max]
    offset_max: int = 4
    # network
    embed_dim: int = 128
    head: Literal["linear", "mlp"] = "linear"  # the release: one linear layer per encoder
    # loss and memory banks
    loss: Literal["nce", "infonce"] = "infonce"  # nce: the release's binary NCE with a constant normaliser
    temperature: float = 0.07
    negatives: int | Literal["auto"] = "auto"  # K per anchor; auto = min(16384, N - 1), N bank slots (videos)
    bank_momentum: float = 0.5
    positive: Literal["bank", "live"] = "bank"  # bank: the other view's memory (release); live: its fresh embedding
    batch_negatives: bool = False  # also the other view's live embeddings of the batch's other videos (not in CMC)
    # augmentation (AugmentFields: crop_scale_min/max 0.5-1, flip, jitter_p 0.8, and these): crop + flip shared by
    # both views (independent: view2 frame only, one draw per frame, as TCE's pairs); colour on RGB frames only
    crop: Literal["shared", "independent"] = "shared"
    jitter: float = 0.4
    hue: float = 0.1
    gray_p: float = 0.2
    # evaluation: rgb -- the RGB encoder's features (every method's protocol); concat -- both encoders' features
    # side by side (the paper's reported protocol): the second encoder reads its own view of each test frame
    eval_features: Literal["rgb", "concat"] = "rgb"

    def __post_init__(self) -> None:
        super().__post_init__()  # AugmentFields' checks
        if self.eval_features not in ("rgb", "concat"):
            raise UserError(f"method.eval_features = {self.eval_features!r} should be rgb or concat")
        if self.view2 not in VIEWS:
            raise UserError(f"method.view2 = {self.view2!r} should be one of {', '.join(VIEWS)}")
        if self.flow_algorithm not in FLOW_ALGORITHMS:
            raise UserError(
                f"method.flow_algorithm = {self.flow_algorithm!r} should be one of {', '.join(FLOW_ALGORITHMS)}"
            )
        if self.flow_encoding not in FLOW_ENCODINGS:
            raise UserError(
                f"method.flow_encoding = {self.flow_encoding!r} should be one of {', '.join(FLOW_ENCODINGS)}"
            )
        if self.flow_encoding == "uvm" and self.flow_stack != 1:
            raise UserError(f"method.flow_encoding = uvm encodes one flow field; method.flow_stack = {self.flow_stack}")
        if min(self.flow_stack, self.flow_stride, self.flow_levels) < 1 or self.flow_winsize < 3:
            raise UserError("method.flow_stack, flow_stride and flow_levels must be >= 1, flow_winsize >= 3")
        if self.flow_bound != "auto" and self.flow_bound <= 0:
            raise UserError(f"method.flow_bound = {self.flow_bound}: must be > 0 px (or auto)")
        if not 1 <= self.offset_min <= self.offset_max:
            raise UserError(f"method.offset_min/offset_max = {self.offset_min}/{self.offset_max}: need 1 <= min <= max")
        if self.head not in ("linear", "mlp"):
            raise UserError(f"method.head = {self.head!r} should be linear or mlp")
        if self.loss not in ("nce", "infonce"):
            raise UserError(f"method.loss = {self.loss!r} should be nce or infonce")
        if self.temperature <= 0 or self.embed_dim < 1 or (self.negatives != "auto" and self.negatives < 1):
            raise UserError("method.temperature must be > 0, method.embed_dim >= 1, method.negatives >= 1 (or auto)")
        if self.positive not in ("bank", "live"):
            raise UserError(f"method.positive = {self.positive!r} should be bank or live")
        if self.batch_negatives and self.positive != "live":
            raise UserError("method.batch_negatives needs method.positive=live (live negatives beside a live positive)")
        if not 0 <= self.bank_momentum < 1:
            raise UserError(f"method.bank_momentum = {self.bank_momentum} should be in [0, 1)")
        if self.crop not in ("shared", "independent"):
            raise UserError(f"method.crop = {self.crop!r} should be shared or independent")
        if self.crop == "independent" and self.view2 != "frame":
            raise UserError(
                f"method.crop = independent needs method.view2 = frame (the {self.view2} view must stay aligned with "
                "its frames)"
            )


def flow_config(cfg: CMCConfig) -> FlowConfig:
    return FlowConfig(cfg.flow_algorithm, levels=cfg.flow_levels, winsize=cfg.flow_winsize)


class MotionViewConcat(ConcatenatedBackbones):
    """CMC's evaluation encoder for a flow or difference view: each view arrives as the frame t and the frames
    its motion is computed from (``frame_offsets``, [..., K, 3, H, W], normalised). The RGB encoder reads frame t;
    the motion is computed from the uint8 frames exactly as the training sampler computes it
    (``benchmark.data.flow.motion_view``, bound scaled to the frames' size) and read by the second encoder; the
    two features are concatenated ([..., D1 + D2])."""

    def __init__(self, rgb: nn.Module, second: nn.Module, cfg: CMCConfig):
        super().__init__(rgb, second)
        self.frame_offsets = motion_offsets(cfg.view2, cfg.flow_stack, cfg.flow_stride)
        self.view2, self.encoding, self.bound = cfg.view2, cfg.flow_encoding, cfg.flow_bound
        self.flow = flow_config(cfg)
        # benchmark.evaluation.features: never share cached features with the RGB encoder or another view
        self.feature_cache_tag += (
            f":cmc-{cfg.view2}:{self.frame_offsets}:{cfg.flow_encoding}:{cfg.flow_bound}:{self.flow}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, (k, c, h, w) = x.shape[:-4], x.shape[-4:]
        rgb = self.parts[0](x[..., 0, :, :, :])
        bound = default_bound(h) if self.bound == "auto" else self.bound
        frames = to_uint8(x.reshape(-1, k, c, h, w)).cpu()  # OpenCV works on host uint8 frames
        motion = torch.stack([motion_view(f, self.view2, bound, self.encoding, self.flow) for f in frames])
        motion = motion.to(x.device, x.dtype).reshape(*lead, -1, h, w)
        return torch.cat([rgb, self.parts[1](motion)], dim=-1)


def init_cmc_bank(num_slots: int, dim: int) -> torch.Tensor:
    """The release's memory-bank init: uniform in +-1/sqrt(dim/3) (norm ~1), not normalised."""
    bound = 1.0 / math.sqrt(dim / 3)
    return torch.rand(num_slots, dim) * 2 * bound - bound


@register_method("cmc")
class CMC(Method):
    """CMC (video): an RGB frame and its optical flow, two encoders, contrasted across views with a bank per view."""

    Config = CMCConfig
    sampler = "frame_flow"
    eval_only_fields = ("eval_features",)
    backbone_kind = "2d"

    @classmethod
    def sampler_options(cls, cfg: CMCConfig, info: DataInfo) -> dict:
        return {
            "view2": cfg.view2,
            "flow_stack": cfg.flow_stack,
            "flow_stride": cfg.flow_stride,
            "offset_min": cfg.offset_min,
            "offset_max": cfg.offset_max,
            "bound": None if cfg.flow_bound == "auto" else cfg.flow_bound,
            "encoding": cfg.flow_encoding,
            "flow": flow_config(cfg),
            "aug": cfg.augment(),
            "shared_crop": cfg.crop == "shared",
        }

    @classmethod
    def smoke_overrides(cls, cfg: CMCConfig) -> dict:
        """A bank-sized K cannot fit the stand-in's few videos: resolve it there instead."""
        return {"method.negatives": "auto"} if cfg.negatives != "auto" else {}

    @classmethod
    def resolve(cls, cfg: CMCConfig, info: DataInfo) -> CMCConfig:
        """K = 'auto' -> min(16384, N - 1): the release's K where the bank has that many other videos."""
        if cfg.negatives != "auto":
            return cfg
        return dataclasses.replace(cfg, negatives=max(1, min(RELEASE_K, info.num_videos - 1)))

    @classmethod
    def check(cls, cfg: CMCConfig, info: DataInfo) -> None:
        if info.num_videos < 2:
            raise UserError(f"CMC needs at least 2 pre-training videos (one bank slot each), got {info.num_videos}")

    @classmethod
    def eval_encoder(cls, cfg: CMCConfig, backbone: nn.Module, model_state) -> nn.Module:
        """``eval_features: concat``: both encoders' features side by side (2 x D). ``view2: frame``: the second
        encoder reads the same evaluation frames; flow or difference: each evaluation frame is decoded with the
        frames its motion is computed from, and the second encoder reads that motion (:class:`MotionViewConcat`).
        Otherwise the RGB encoder alone."""
        if cfg.eval_features != "concat":
            return backbone
        prefix = "view2_encoder."
        state = {k[len(prefix) :]: v for k, v in model_state.items() if k.startswith(prefix)}
        if not state:
            raise UserError("method.eval_features = concat: the checkpoint has no second encoder (view2_encoder.*)")
        second = build_backbone_like(backbone, in_chans=view2_channels(cfg.view2, cfg.flow_stack, cfg.flow_encoding))
        second.load_state_dict(state)
        if cfg.view2 == "frame":
            return ConcatenatedBackbones(backbone, second)
        return MotionViewConcat(backbone, second, cfg)

    def __init__(self, cfg: CMCConfig, backbone: nn.Module, info: DataInfo):
        super().__init__(cfg, backbone, info)
        channels = view2_channels(cfg.view2, cfg.flow_stack, cfg.flow_encoding)
        self.view2_encoder = build_backbone_like(backbone, in_chans=channels)
        hidden = (backbone.num_features,) if cfg.head == "mlp" else ()
        self.head = MLPHead(backbone.num_features, cfg.embed_dim, hidden=hidden, batch_norm=True)
        self.view2_head = MLPHead(self.view2_encoder.num_features, cfg.embed_dim, hidden=hidden, batch_norm=True)
        self.num_negatives = self.resolve(cfg, info).negatives
        self.register_buffer("bank_rgb", init_cmc_bank(info.num_videos, cfg.embed_dim))
        self.register_buffer("bank_view2", init_cmc_bank(info.num_videos, cfg.embed_dim))
        # NCE's normaliser Z per view: 0 until estimated from the first batch; buffers, so checkpoints carry them
        self.register_buffer("nce_normaliser", torch.zeros(2))
        self._normaliser_known: bool | None = None  # read from the buffer once (one host sync), then kept

    def chance(self, batch_size: int) -> Chance:
        """Training loss: InfoNCE over the positive and K negatives, per view, summed over the two views (the NCE
        has no closed form). Pretext measure: in-batch cross-view retrieval, one right answer among the batch."""
        candidates = 1 + self.num_negatives + (batch_size - 1 if self.cfg.batch_negatives else 0)
        loss = 2 * math.log(candidates) if self.cfg.loss == "infonce" else None
        return Chance(loss, 1 / max(1, batch_size))

    def embed(self, frames: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit embeddings of the RGB frames [B, 3, H, W] and of the second views [B, C2, H, W]."""
        z1 = F.normalize(self.head(self.backbone(frames)).float(), dim=-1)
        z2 = F.normalize(self.view2_head(self.view2_encoder(view2)).float(), dim=-1)
        return z1, z2

    def pretext_eval(self, batch: dict, progress: Progress) -> dict[str, torch.Tensor]:
        """Cross-view retrieval on held-out videos: each RGB frame must pick its own video's second view among the
        batch's, and each second view its RGB frame (chance 1 / videos in the batch). The banks (training videos'
        slots) are neither read nor written."""
        index = batch["index"].to(device=batch["frame"].device, dtype=torch.long)
        z1, z2 = self.embed(batch["frame"], batch["view2"])
        other = (index[:, None] == index[None, :]) & ~torch.eye(len(index), dtype=torch.bool, device=index.device)
        logits = (z1 @ z2.T / self.cfg.temperature).masked_fill(other, float("-inf"))
        target = torch.arange(len(index), device=index.device)
        hits = (logits.argmax(1) == target).float().mean() + (logits.argmax(0) == target).float().mean()
        loss = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
        return {"loss": loss, "accuracy": hits / 2, "chance_accuracy": (1 / (~other).sum(1).float()).mean()}

    def training_step(self, batch: dict, progress: Progress) -> StepOutput:
        index = batch["index"].to(device=batch["frame"].device, dtype=torch.long)
        z1, z2 = self.embed(batch["frame"], batch["view2"])
        with torch.autocast(device_type=z1.device.type, enabled=False):  # scores, loss and banks in fp32
            logits_rgb, logits_view2 = self.cross_view_logits(z1, z2, index)
            loss_rgb, loss_view2, extra = self.contrastive_loss(logits_rgb, logits_view2)
        loss = loss_rgb + loss_view2
        with torch.no_grad():
            accuracy = ((logits_rgb.argmax(1) == 0).float().mean() + (logits_view2.argmax(1) == 0).float().mean()) / 2
        self.update_banks(index, z1.detach(), z2.detach())
        return StepOutput(loss, {"loss": loss.detach(), "loss_rgb": loss_rgb.detach(),
                                 "loss_view2": loss_view2.detach(), "bank_accuracy": accuracy, **extra})  # fmt: skip

    def cross_view_logits(
        self, z1: torch.Tensor, z2: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 1 + K] logits per view, positive in column 0: each view's anchor is scored against the OTHER view's
        bank. ``positive: bank`` (the release): column 0 is the video's own slot, then K uniform draws with
        replacement (the own slot may recur). ``live``: column 0 is the other view's fresh embedding of the same
        sample (gradient to both encoders), then K uniform draws among the OTHER videos' slots."""
        n, k, t = len(self.bank_rgb), self.num_negatives, self.cfg.temperature
        if self.cfg.positive == "bank":
            draws = torch.randint(0, n, (len(index), k), device=index.device)
            slots = torch.cat([index[:, None], draws], dim=1)
            logits_rgb = torch.einsum("bkd,bd->bk", self.bank_view2[slots].detach(), z1) / t
            logits_view2 = torch.einsum("bkd,bd->bk", self.bank_rgb[slots].detach(), z2) / t
            return logits_rgb, logits_view2
        draws = torch.randint(0, n - 1, (len(index), k), device=index.device)
        draws = draws + (draws >= index[:, None]).long()  # uniform over the other videos' slots
        positive = (z1 * z2).sum(1, keepdim=True) / t
        logits_rgb = torch.cat([positive, torch.einsum("bkd,bd->bk", self.bank_view2[draws].detach(), z1) / t], 1)
        logits_view2 = torch.cat([positive, torch.einsum("bkd,bd->bk", self.bank_rgb[draws].detach(), z2) / t], 1)
        if self.cfg.batch_negatives:  # the batch's other videos, live in the other view (gradient to both encoders)
            same = index[:, None] == index[None, :]
            in_batch = (z1 @ z2.T / t).masked_fill(same, float("-inf"))
            logits_rgb = torch.cat([logits_rgb, in_batch], 1)
            logits_view2 = torch.cat([logits_view2, in_batch.T], 1)
        return logits_rgb, logits_view2

    def contrastive_loss(
        self, logits_rgb: torch.Tensor, logits_view2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if self.cfg.loss == "infonce":
            return info_nce_from_logits(logits_rgb), info_nce_from_logits(logits_view2), {}
        n = len(self.bank_rgb)
        if self._normaliser_known is None:  # a resumed run carries Z in its checkpoint
            self._normaliser_known = bool((self.nce_normaliser != 0).all())
        if not self._normaliser_known:  # estimated once per view from the first batch (averaged over DDP ranks)
            estimate = torch.stack([estimate_normaliser(logits_rgb, n), estimate_normaliser(logits_view2, n)])
            self.nce_normaliser.copy_(all_gather_cat(estimate[None]).mean(0).to(self.nce_normaliser.dtype))
            self._normaliser_known = True
        # logits - log Z with Z = 1 passed on: the same loss, and Z never leaves the device (no host sync)
        scaled_rgb = logits_rgb - self.nce_normaliser[0].log()
        scaled_view2 = logits_view2 - self.nce_normaliser[1].log()
        probs = {  # the release's logged "probabilities": mean P of the positive, exp(s / T) / Z
            "prob_rgb": scaled_rgb[:, 0].detach().exp().mean(),
            "prob_view2": scaled_view2[:, 0].detach().exp().mean(),
        }
        return binary_nce(scaled_rgb, 1.0, n), binary_nce(scaled_view2, 1.0, n), probs

    @torch.no_grad()
    def update_banks(self, index: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> None:
        """After scoring: each video's slot moves to normalise(m * slot + (1 - m) * z), m = bank_momentum."""
        index, z1, z2 = all_gather_cat(index), all_gather_cat(z1), all_gather_cat(z2)  # DDP: the global batch
        momentum_update_(self.bank_rgb, index, z1, self.cfg.bank_momentum)
        momentum_update_(self.bank_view2, index, z2, self.cfg.bank_momentum)
