"""Per-video features from a frozen backbone, cached on disk.

2D backbones: the mean of the features of F evenly spaced frames; 3D: the mean
over M uniformly spaced clips. The cache key covers the checkpoint, the video
list and the sampling, so several protocols (linear, kNN) reuse one pass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from benchmark.config import ExperimentConfig


@dataclass
class Features:
    x: torch.Tensor  # [N, F] float32
    y: torch.Tensor  # [N] int64
    video_ids: list[str]


def sampling_spec(cfg: ExperimentConfig, kind: str) -> dict:
    if kind == "2d":
        return {"sampler": "frames", "count": cfg.eval.frames}
    return {"sampler": "clips", "count": cfg.eval.clips, "clip_len": cfg.eval.clip_len}


def cache_key(checkpoint: str, records: list, spec: dict, resolution: int) -> str:
    h = hashlib.sha1()
    ck = Path(checkpoint)
    h.update(f"{ck.resolve()}:{ck.stat().st_mtime_ns if ck.exists() else 0}".encode())
    h.update(json.dumps([spec, resolution]).encode())
    for r in records:
        h.update(f"{r.path}\0{r.label}\n".encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def extract(backbone, records: list, cfg: ExperimentConfig, checkpoint: str, cache_dir: Path | None, desc: str = "features",
            progress_bar: bool = True) -> Features:
    from benchmark.data.loader import SampledVideos, make_loader
    from benchmark.data.samplers import build_sampler
    from benchmark.device import resolve_runtime

    spec = sampling_spec(cfg, backbone.kind)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"features-{cache_key(checkpoint, records, spec, cfg.data.resolution)}.pt"
        if path.exists():
            data = torch.load(path, weights_only=False)
            return Features(data["x"], data["y"], data["video_ids"])
    ctx = resolve_runtime(cfg.run.device, cfg.run.precision, cfg.run.channels_last)
    backbone = ctx.prepare(backbone).eval()
    options = {k: v for k, v in spec.items() if k != "sampler"}
    sampler = build_sampler(spec["sampler"], cfg.data.resolution, train=False, **options)
    dataset = SampledVideos(records, sampler, cfg.data.decoder, seed=0, with_labels=True)
    loader = make_loader(dataset, batch_size=max(1, cfg.eval.batch_size // max(1, spec["count"])), num_workers=cfg.data.num_workers)
    xs, ys, ids = [], [], []
    for batch in tqdm(loader, desc=desc, disable=not progress_bar, dynamic_ncols=True, leave=False):
        views = batch["frames"] if "frames" in batch else batch["clips"]  # [B, F, C, H, W] or [B, M, T, C, H, W]
        with ctx.autocast():
            feats = backbone(ctx.to_input(views))  # [B, F|M, D]
        xs.append(feats.float().mean(1).cpu())
        ys.append(batch["label"])
        ids += [records[int(i)].video_id for i in batch["index"]]
    feats = Features(torch.cat(xs), torch.cat(ys), ids)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"x": feats.x, "y": feats.y, "video_ids": feats.video_ids}, path)
    return feats
