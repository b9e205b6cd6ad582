"""Test-time views of videos, video-level outputs averaged over views, and a feature cache.

One video becomes V views: F evenly spaced frames (2D backbones, TSN test
sampling) or M uniformly spaced clips of T frames (3D), each in 1 or 3 spatial
crops. A function of the views (the frozen backbone for features, backbone +
head for fine-tuning logits) is applied in batches and averaged over the V
views into one video-level output (:func:`video_outputs`).

Per-video features (:func:`extract`) are cached on disk under ``RUN/cache``,
keyed by the checkpoint (path, size, mtime), the video list (paths, labels),
the view spec and the decoder, so linear probe and kNN share one pass.

A video that fails to decode is skipped, counted and named (``Outputs.bad``):
never replaced by another video, which would carry another label.

Speed on CPU (the shared 2-core project machine, resnet10t 64 px; CPU ms per
video of 8 frames for the model alone, one run): eager 64, channels_last 45,
BatchNorm folded into the convolutions + channels_last 36; 256 frames per
forward instead of 64 took ~40% less CPU. Frames leave the loader as uint8 and
are normalised per batch (eval_transform's per-sample ToDtype + Normalize cost
about as much as decoding). Against the first implementation: 2.1-2.5x less
CPU time for the same features (max abs difference 7e-8).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from benchmark.checkpoint import write_error
from benchmark.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from benchmark.device import single_thread_worker
from benchmark.errors import UserError

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # bump when extraction changes what it computes (2: bad videos skipped, not replaced)


# ====================================================================== what one video becomes
@dataclass(frozen=True)
class ViewSpec:
    """Test-time sampling: ``count`` frames (2D) or clips (3D) of ``clip_len`` frames at ``stride``, x ``crops``.

    ``offsets`` (2D only): the frames each view decodes, relative to its frame. The default ``(0,)`` is the frame
    alone; an evaluation encoder that reads a frame and its motion (CMC's flow view) asks for more through its
    ``frame_offsets`` attribute, and then receives ``[..., len(offsets), C, H, W]`` per view."""

    kind: str  # "2d" | "3d"
    count: int
    resolution: int
    clip_len: int = 1
    stride: int = 1
    crops: int = 1
    offsets: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if self.kind not in ("2d", "3d"):
            raise ValueError(f"kind must be '2d' or '3d', got {self.kind!r}")
        if self.count < 1 or self.clip_len < 1 or self.stride < 1 or self.crops not in (1, 3):
            raise ValueError(f"bad view spec {self}")
        if (
            not self.offsets
            or self.offsets[0] != 0
            or min(self.offsets) < 0
            or (self.kind == "3d" and self.offsets != (0,))
        ):
            raise ValueError(f"offsets {self.offsets}: 2D only, non-negative, starting with 0")

    @property
    def views(self) -> int:
        return self.count * self.crops

    @property
    def frames_per_view(self) -> int:
        return self.clip_len if self.kind == "3d" else len(self.offsets)

    @property
    def view_shape(self) -> tuple[int, ...]:
        """The dimensions of one view before its [C, H, W]: (T,) for a 3D clip, (K,) for K offsets, () for a frame."""
        return (self.frames_per_view,) if self.kind == "3d" or len(self.offsets) > 1 else ()

    def frame_indices(self, num_frames: int) -> list[int]:
        """2D: centres of ``count`` equal segments (each followed by its offsets, loop-padded); 3D: ``count``
        clips with starts spread evenly (loop-padded)."""
        from benchmark.data.samplers import evenly_spaced, loop_index

        if self.kind == "2d":
            return loop_index([c + o for c in evenly_spaced(num_frames, self.count) for o in self.offsets], num_frames)
        span = (self.clip_len - 1) * self.stride + 1
        starts = np.linspace(0, max(0, num_frames - span), self.count).round().astype(int)
        return loop_index([i for s in starts for i in range(s, s + span, self.stride)], num_frames)

    def entry_fields(self) -> dict:
        """What a metrics entry says about test sampling."""
        if self.kind == "2d":
            coverage = f"{self.count} frames spread over the video"
            if len(self.offsets) > 1:
                coverage += f", each with the frames at offsets {list(self.offsets[1:])}"
            return {"frames_at_test": self.count, "clips_at_test": None, "crops_at_test": self.crops,
                    "frames_seen": self.count * len(self.offsets), "coverage": coverage}  # fmt: skip
        where = "spread over the video" if self.count > 1 else "one window of the video"
        return {
            "frames_at_test": None,
            "clips_at_test": self.count,
            "clip_len": self.clip_len,
            "clip_stride": self.stride,
            "crops_at_test": self.crops,
            "frames_seen": self.count * self.clip_len,  # how much of each test video the prediction reads
            "coverage": f"{self.count} clip(s) of {self.clip_len} frames (stride {self.stride}), {where}",
        }


def view_spec(eval_cfg, resolution: int, kind: str, offsets: tuple[int, ...] = (0,)) -> ViewSpec:
    """The ViewSpec of an EvalConfig for a backbone kind (``offsets``: an evaluation encoder's ``frame_offsets``)."""
    if kind == "2d":
        return ViewSpec("2d", eval_cfg.frames, resolution, crops=eval_cfg.crops, offsets=tuple(offsets))
    return ViewSpec("3d", eval_cfg.clips, resolution, eval_cfg.clip_len, eval_cfg.clip_stride, eval_cfg.crops)


def spatial_crops(frames: torch.Tensor, resolution: int, crops: int) -> torch.Tensor:
    """uint8 [T, C, H, W] -> [crops, T, C, r, r]: short side resized to r, then the centre crop (crops=1) or
    crops at the start, centre and end of the long side (crops=3)."""
    from torchvision.transforms.v2 import functional as TF

    if min(frames.shape[-2:]) != resolution:
        frames = TF.resize(frames, [resolution], antialias=True)
    h, w = frames.shape[-2:]
    top, left = int(round((h - resolution) / 2.0)), int(round((w - resolution) / 2.0))  # as v2.CenterCrop
    if h >= w:
        offsets = [(0, left), (top, left), (h - resolution, left)]
    else:
        offsets = [(top, 0), (top, left), (top, w - resolution)]
    if crops == 1:  # a view, no copy: the collate copies once per batch anyway
        return frames[..., top : top + resolution, left : left + resolution].unsqueeze(0)
    return torch.stack([frames[..., y : y + resolution, x : x + resolution] for y, x in offsets])


def normalise_hwc(x: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, C] -> float32 [..., C, H, W] normalised with the ImageNet mean/std (the numbers
    eval_transform gives), in channels-last memory order (what ctx.to_input wants: no further copy)."""
    std = torch.tensor(IMAGENET_STD, device=x.device) * 255
    shift = -torch.tensor(IMAGENET_MEAN, device=x.device) * 255 / std
    return torch.addcmul(shift, x.float(), 1 / std).movedim(-1, -3)


# ====================================================================== dataset
class EvalVideos(Dataset):
    """Video i -> {"views": uint8 [V, r, r, C] (2D) or [V, T, r, r, C] (3D), "label", "index"}; views are
    ordered crop-major; channels last, as decoders produce them, so that batching copies without transposing.
    A video that fails to decode gives {"index", "error"} instead."""

    def __init__(self, records: Sequence, spec: ViewSpec, decoder: str = "auto"):
        self.records, self.spec, self.decoder = list(records), spec, decoder

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        from benchmark.data.video import VideoDecodeError, open_video

        record = self.records[i]
        try:
            with open_video(record.path, self.decoder) as video:
                frames = video.get_frames(self.spec.frame_indices(video.num_frames))
        except (VideoDecodeError, OSError) as exc:
            return {"index": i, "error": str(exc)}
        views = spatial_crops(frames, self.spec.resolution, self.spec.crops).movedim(
            -3, -1
        )  # [crops, count*T, r, r, C]
        shape = (self.spec.views, *self.spec.view_shape, *views.shape[-3:])
        return {"views": views.reshape(shape), "label": record.label, "index": i}


def collate_views(samples: list[dict]) -> dict:
    good = [s for s in samples if "error" not in s]
    out = {"bad": [(s["index"], s["error"]) for s in samples if "error" in s]}
    if good:
        out["views"] = torch.stack([s["views"] for s in good])
        out["label"] = torch.tensor([s["label"] for s in good])
        out["index"] = torch.tensor([s["index"] for s in good])
    return out


def views_loader(
    records: Sequence, spec: ViewSpec, decoder: str, videos_per_batch: int, num_workers: int = 0
) -> DataLoader:
    extra = {"worker_init_fn": single_thread_worker, "prefetch_factor": 4} if num_workers > 0 else {}
    return DataLoader(
        EvalVideos(records, spec, decoder),
        batch_size=max(1, videos_per_batch),
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_views,
        **extra,
    )


# ====================================================================== inference
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with every BatchNorm that directly follows a convolution folded into it.

    Pairs are found in module registration order and checked numerically by :func:`inference_copy`; on a
    model whose registration order is not its execution order the check fails and the model is left as is.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    named = dict(model.named_modules())
    leaves = [(n, m) for n, m in named.items() if not any(True for _ in m.children())]
    for (conv_name, conv), (bn_name, bn) in zip(leaves, leaves[1:], strict=False):  # consecutive pairs
        pair = (type(conv), type(bn))  # exact types: a BatchNorm subclass may carry an activation (timm BatchNormAct)
        if (
            pair in ((nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))
            and bn.track_running_stats
            and conv.out_channels == bn.num_features
        ):
            for name, new in ((conv_name, fuse_conv_bn_eval(conv, bn)), (bn_name, nn.Identity())):
                parent, _, attr = name.rpartition(".")
                setattr(named[parent] if parent else model, attr, new)
    return model


def inference_copy(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """An eval-mode copy for inference: BatchNorm folded when that provably gives the same outputs on ``probe``."""
    reference = copy.deepcopy(model).eval()
    param = next(model.parameters(), None)
    probe = probe.to(param.device) if param is not None else probe
    try:
        folded = fold_batchnorm(model)
        with torch.inference_mode():
            a, b = reference(probe), folded(probe)
        scale = a.abs().max().item() + 1e-6
        if torch.allclose(a, b, rtol=1e-3, atol=1e-4 * scale):
            return folded
        log.info("BatchNorm folding changed the outputs of %s; using the model as is", type(model).__name__)
    except (RuntimeError, AssertionError, ValueError) as exc:  # an exotic layer: fall back to the plain copy
        log.info("BatchNorm folding failed (%s); using the model as is", exc)
    return reference


@dataclass
class Outputs:
    """Video-level outputs (averaged over views), in the order of the good videos of the input list."""

    x: torch.Tensor  # [N, D] float32
    y: torch.Tensor  # [N] int64
    video_ids: list[str]
    bad: list[dict] = field(default_factory=list)  # [{"video_id", "path", "reason"}] skipped videos


def single_threaded(loader):
    """Batches of ``loader`` decoded and collated in this process with one intra-op thread: small tensor
    copies split over two threads wait for each other on a busy machine (measured on the shared 2-core
    project machine, 384 videos: median 21.6 s wall vs 30.6 s with two threads, 27.3 s with one worker)."""
    it = iter(loader)
    threads = torch.get_num_threads()
    while True:
        torch.set_num_threads(1)
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(threads)
        yield batch


def video_outputs(
    fn: Callable[[torch.Tensor], torch.Tensor],
    records: Sequence,
    spec: ViewSpec,
    ctx,
    *,
    frames_per_batch: int = 64,
    decoder: str = "auto",
    num_workers: int = 0,
    desc: str = "videos",
    progress_bar: bool = True,
) -> Outputs:
    """Apply ``fn`` ([B, V, ...] normalised views -> [B, V, D]) to every video and average over the V views."""
    frames_per_video = spec.views * spec.frames_per_view
    loader = views_loader(records, spec, decoder, max(1, frames_per_batch // frames_per_video), num_workers)
    xs, ys, ids, bad = [], [], [], []
    with torch.inference_mode():
        bar = tqdm(total=len(records), desc=desc, disable=not progress_bar, dynamic_ncols=True, leave=False)
        for batch in single_threaded(loader) if num_workers == 0 else loader:
            bar.update(len(batch["bad"]) + len(batch.get("index", ())))
            for i, reason in batch["bad"]:
                r = records[i]
                bad.append({"video_id": r.video_id, "path": r.path, "reason": reason})
                tqdm.write(f"warning: skipped {r.path}: {reason}")
            if "views" not in batch:
                continue
            views = normalise_hwc(batch["views"].to(ctx.device))
            views = ctx.to_input(views if ctx.channels_last else views.contiguous())
            with ctx.autocast():
                out = fn(views)  # [B, V, D]
            xs.append(out.float().mean(1).cpu())
            ys.append(batch["label"])
            ids += [records[int(i)].video_id for i in batch["index"]]
    bar.close()
    if not xs:
        return Outputs(torch.empty(0, 0), torch.empty(0, dtype=torch.long), [], bad)
    return Outputs(torch.cat(xs), torch.cat(ys).long(), ids, bad)


# ====================================================================== cached features
def cache_key(checkpoint: str | Path, records: Sequence, spec: ViewSpec, decoder: str, encoder: str = "") -> str:
    """``encoder``: a tag for an encoder other than the checkpoint's backbone, so the two never share features."""
    h = hashlib.sha1()
    ck = Path(checkpoint)
    st = ck.stat() if ck.exists() else None
    h.update(f"v{CACHE_VERSION}:{ck.resolve()}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}".encode())
    h.update(json.dumps([asdict(spec), decoder], sort_keys=True).encode())
    if encoder:
        h.update(f"encoder:{encoder}".encode())
    for r in records:
        h.update(f"{r.path}\0{r.label}\0{r.video_id}\0{content_stamp(r.path)}\n".encode())
    return h.hexdigest()[:16]


def content_stamp(path: str | Path) -> str:
    """Size and modification time of a video file, so that cached features of a video re-encoded, repaired or
    replaced under the same name are not reused. A frame folder: its own time, its image count and the stamps of
    its first, middle and last images (every image would cost a stat each, millions for UCF101's frames)."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISDIR(st.st_mode):
        return f"{st.st_size}.{st.st_mtime_ns}"
    try:
        names = sorted(os.listdir(path))
        picked = {names[0], names[len(names) // 2], names[-1]} if names else set()
        stamps = [f"{s.st_size}.{s.st_mtime_ns}" for s in (os.stat(os.path.join(path, n)) for n in sorted(picked))]
    except OSError:
        return f"dir.{st.st_mtime_ns}"
    return f"dir.{st.st_mtime_ns}.{len(names)}." + ".".join(stamps)


def extract(
    backbone: nn.Module,
    records: Sequence,
    spec: ViewSpec,
    ctx,
    checkpoint: str | Path,
    cache_dir: Path | None,
    *,
    frames_per_batch: int = 64,
    decoder: str = "auto",
    num_workers: int = 0,
    desc: str = "features",
    progress_bar: bool = True,
) -> Outputs:
    """Per-video features of a frozen backbone (mean over views), read from or written to the cache."""
    # an encoder built over the checkpoint's backbone (CMC's two encoders) names itself, so it never reads the
    # backbone's cached features
    path = None
    if cache_dir:  # the key stats every video: only where a cache is read or written
        key = cache_key(checkpoint, records, spec, decoder, getattr(backbone, "feature_cache_tag", ""))
        path = Path(cache_dir) / f"features-{key}.pt"
    if path is not None and path.exists():
        try:
            data = torch.load(path, weights_only=True)
            return Outputs(data["x"], data["y"], list(data["video_ids"]), list(data.get("bad", [])))
        except Exception as exc:  # noqa: BLE001 -- a cut or stale cache file is recomputed, never trusted
            log.warning("ignoring unreadable feature cache %s (%s)", path, exc)
    probe_shape = (1, 1, *spec.view_shape, 3, spec.resolution, spec.resolution)
    probe = torch.randn(probe_shape, generator=torch.Generator().manual_seed(0))
    model = ctx.prepare(inference_copy(backbone, probe))
    out = video_outputs(
        model,
        records,
        spec,
        ctx,
        frames_per_batch=frames_per_batch,
        decoder=decoder,
        num_workers=num_workers,
        desc=desc,
        progress_bar=progress_bar,
    )
    broken = int((~torch.isfinite(out.x)).any(dim=1).sum()) if out.x.numel() else 0
    if broken:  # NaN weights (an imported or diverged checkpoint) would score chance as if it were a result
        raise UserError(f"the backbone of {Path(str(checkpoint)).name} gives NaN or inf features for {broken} of "
                        f"{len(out.x)} videos: its weights cannot be evaluated")  # fmt: skip
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save({"x": out.x, "y": out.y, "video_ids": out.video_ids, "bad": out.bad}, tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:  # a full disk: no half-written cache is left behind
            tmp.unlink(missing_ok=True)
            raise write_error(exc, path) from None
    return out
