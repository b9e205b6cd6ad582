"""Linear probe on frozen, cached features: BatchNorm without affine + a linear layer.

BatchNorm without affine on a fixed feature set is a per-dimension
standardisation with train-split statistics, so it is applied once up front;
the linear layer is then trained full-batch (the features fit in memory):
SGD with momentum and a cosine schedule (lr 0.1, wd 1e-3 as in the protocol
reference), or L-BFGS on the L2-regularised cross-entropy.

With ``eval.linear_weight_decays`` set, the weight decay is chosen on a
held-out part of the train split (benchmark.evaluation.selection), the probe is
refitted on the whole train split with it and the test split is evaluated once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from benchmark.config import ExperimentConfig
from benchmark.device import one_thread
from benchmark.errors import UserError
from benchmark.evaluation import counts, frozen_features
from benchmark.registry import register_protocol
from benchmark.rundir import RunDir


@dataclass(frozen=True)
class LinearProbeConfig:
    epochs: int = 100
    lr: float = 0.1
    weight_decay: float = 1e-3
    seed: int = 0
    optimizer: str = "sgd"  # "sgd" | "lbfgs"


def standardise(train_x: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train_x.mean(0), train_x.std(0, unbiased=False) + 1e-5
    return [(t - mean) / std for t in (train_x, *others)]


def _init_layer(dim: int, num_classes: int, seed: int) -> torch.nn.Linear:
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(dim, num_classes)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=g)
        layer.bias.zero_()
    return layer


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: LinearProbeConfig) -> torch.nn.Linear:
    """Full-batch training, deterministic for a seed."""
    layer = _init_layer(x.shape[1], num_classes, cfg.seed)
    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=cfg.epochs, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(layer(x), y) + 0.5 * cfg.weight_decay * layer.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        _check_finite(layer, x, y, cfg)
        return layer
    opt = torch.optim.SGD(layer.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        F.cross_entropy(layer(x), y).backward()
        opt.step()
        sched.step()
    _check_finite(layer, x, y, cfg)
    return layer


def _check_finite(layer: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, cfg: LinearProbeConfig) -> None:
    """A diverged probe predicts one class: a chance-level top-1 that would read as a result."""
    with torch.no_grad():
        loss = F.cross_entropy(layer(x), y)
    if not torch.isfinite(loss):
        lr = f"lower eval.linear_lr (now {cfg.lr:g})" if cfg.optimizer != "lbfgs" else "try eval.linear_optimizer=sgd"
        raise UserError(f"the linear probe diverged (its training loss is {loss.item()} after {cfg.epochs} epochs): "
                        f"{lr}")  # fmt: skip


def topk_accuracy(logits: torch.Tensor, y: torch.Tensor, ks=(1, 5)) -> dict[str, float]:
    """Percent of rows whose label is among the k highest logits (k capped at the number of classes). Top-1 is
    argmax's, the same tie-break as ``per_video_correct``: bf16 logits tie often, and ``topk`` may pick another
    of the tied classes (a fine-tune under bf16 autocast once recorded a top-1 1-2 of 384 videos away from its
    per-video results)."""
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        top = logits.argmax(1, keepdim=True) if k_eff == 1 else logits.topk(k_eff, dim=1).indices
        hit = (top == y[:, None]).any(1).float().mean().item() if len(y) else float("nan")
        out[f"top{k}"] = round(100.0 * hit, 3)
    return out


def linear_probe(train_x, train_y, test_x, test_y, num_classes: int, cfg: LinearProbeConfig) -> dict:
    """Fit on train, report test top-1/top-5 and per-video correctness (in test order)."""
    with one_thread():
        return _linear_probe(train_x, train_y, test_x, test_y, num_classes, cfg)


def _linear_probe(train_x, train_y, test_x, test_y, num_classes: int, cfg: LinearProbeConfig) -> dict:
    tr, te = standardise(train_x, test_x)
    layer = fit_linear(tr, train_y, num_classes, cfg)
    with torch.no_grad():
        logits = layer(te)
        metrics = topk_accuracy(logits, test_y)
        metrics["train_top1"] = topk_accuracy(layer(tr), train_y, ks=(1,))["top1"]
        metrics["per_video_correct"] = (logits.argmax(1) == test_y).int().tolist()
    return metrics


def select_weight_decay(
    x: torch.Tensor,
    y: torch.Tensor,
    records: list,
    num_classes: int,
    base: LinearProbeConfig,
    grid: list[float],
    heldout_fraction: float,
) -> tuple[float, dict[str, float], list[str]]:
    """The weight decay of ``grid`` with the best held-out top-1 (the first on ties), the held-out scores,
    and the held-out video ids. Rows of ``x`` are ``records`` (train videos only)."""
    from benchmark.evaluation.selection import heldout_split

    split = heldout_split(records, heldout_fraction, base.seed)
    if not split.heldout:
        raise ValueError("the held-out part of the train split is empty (raise eval.heldout_fraction)")
    held = {r.video_id for r in split.heldout}
    mask = torch.tensor([r.video_id in held for r in records])
    scores = {}
    for wd in grid:
        m = linear_probe(x[~mask], y[~mask], x[mask], y[mask], num_classes, replace(base, weight_decay=wd))
        scores[repr(wd)] = m["top1"]
    best = max(grid, key=lambda wd: (scores[repr(wd)], -grid.index(wd)))
    return best, scores, split.heldout_ids


@register_protocol("linear")
def run_linear(run: RunDir, cfg: ExperimentConfig, *, checkpoint: str = "last.pt", progress_bar: bool = True) -> dict:
    from benchmark.errors import UserError

    feats = frozen_features(run, cfg, checkpoint, progress_bar)
    ev = cfg.eval
    probe = LinearProbeConfig(ev.linear_epochs, ev.linear_lr, ev.linear_weight_decay, cfg.run.seed, ev.linear_optimizer)
    num_classes = len(feats.classes)
    selection: dict = {"selection": "none (fixed recipe, no model selection)"}
    if ev.linear_weight_decays:
        if ev.heldout_fraction <= 0:
            raise UserError(
                "eval.linear_weight_decays needs eval.heldout_fraction > 0 (selection is never done on test)"
            )
        try:
            wd, scores, held_ids = select_weight_decay(
                feats.train.x,
                feats.train.y,
                feats.train_records,
                num_classes,
                probe,
                list(ev.linear_weight_decays),
                ev.heldout_fraction,
            )
        except ValueError as exc:
            raise UserError(f"linear probe weight-decay selection: {exc}") from None
        probe = replace(probe, weight_decay=wd)
        selection = {
            "selection": f"weight decay from {list(ev.linear_weight_decays)} by held-out top-1 on "
            f"{len(held_ids)} train videos (class-stratified, group-disjoint); refit on all train",
            "selected": {"linear_weight_decay": wd},
            "heldout_top1": scores,
            "heldout_videos": len(held_ids),
            "heldout_video_ids": held_ids,
        }
    metrics = linear_probe(feats.train.x, feats.train.y, feats.test.x, feats.test.y, num_classes, probe)
    return {
        **metrics,
        "test_video_ids": feats.test.video_ids,
        "frozen": True,
        **selection,
        "optimizer": probe.optimizer,
        "epochs": probe.epochs,
        "weight_decay": probe.weight_decay,
        **counts(len(feats.train.y), len(feats.test.y), num_classes, cfg),
        **feats.provenance,
    }
