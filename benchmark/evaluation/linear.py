"""Linear probe on frozen, cached features: BatchNorm without affine + a linear layer.

BatchNorm without affine on a fixed feature set is a per-dimension
standardisation with train-split statistics, so it is applied once up front;
the linear layer is then trained full-batch (the features fit in memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LinearProbeConfig:
    epochs: int = 100
    lr: float = 0.1
    weight_decay: float = 1e-3
    seed: int = 0


def standardise(train_x: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train_x.mean(0), train_x.std(0, unbiased=False) + 1e-5
    return [(t - mean) / std for t in (train_x, *others)]


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: LinearProbeConfig) -> torch.nn.Linear:
    """Full-batch SGD with momentum and a cosine schedule (deterministic for a seed)."""
    g = torch.Generator().manual_seed(cfg.seed)
    layer = torch.nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=g)
        layer.bias.zero_()
    opt = torch.optim.SGD(layer.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        F.cross_entropy(layer(x), y).backward()
        opt.step()
        sched.step()
    return layer


def topk_accuracy(logits: torch.Tensor, y: torch.Tensor, ks=(1, 5)) -> dict[str, float]:
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        hit = (logits.topk(k_eff, dim=1).indices == y[:, None]).any(1).float().mean().item()
        out[f"top{k}"] = round(100.0 * hit, 3)
    return out


def linear_probe(train_x, train_y, test_x, test_y, num_classes: int, cfg: LinearProbeConfig) -> dict:
    tr, te = standardise(train_x, test_x)
    layer = fit_linear(tr, train_y, num_classes, cfg)
    with torch.no_grad():
        metrics = topk_accuracy(layer(te), test_y)
        metrics["train_top1"] = topk_accuracy(layer(tr), train_y, ks=(1,))["top1"]
        metrics["per_video_correct"] = (layer(te).argmax(1) == test_y).int().tolist()
    return metrics
