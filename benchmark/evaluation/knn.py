"""kNN retrieval and kNN classification on frozen, cached features (no training at all).

Retrieval as in VCOP (Xu et al., CVPR 2019) and CoCLR (Han et al., NeurIPS
2020): every test video queries the train split; features (the mean over
frames/clips) have the gallery mean subtracted and are L2-normalised, so
similarity is cosine. Retrieval accuracy at k ("r@k") is the percentage of
queries for which ANY of the k nearest train videos has the query's class.

kNN classification ("top1", with ``per_video_correct`` so tables and paired
tests treat it like the other protocols): the k = ``eval.knn_k`` nearest
neighbours vote, one vote each ("majority", ties broken by the summed
similarity of the tied classes) or weighted by exp(similarity / 0.07)
("weighted", Wu et al., CVPR 2018).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from benchmark.config import ExperimentConfig
from benchmark.evaluation import counts, frozen_features
from benchmark.registry import register_protocol
from benchmark.rundir import RunDir

WEIGHTED_VOTE_TEMPERATURE = 0.07


def centre_and_normalise(gallery: torch.Tensor, *queries: torch.Tensor) -> list[torch.Tensor]:
    """Subtract the gallery mean from every set, then L2-normalise rows."""
    mean = gallery.mean(0, keepdim=True)
    return [F.normalize(t - mean, dim=1) for t in (gallery, *queries)]


def nearest_neighbours(
    gallery: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, gallery indices) of the k nearest (highest cosine) gallery rows of every query, best first.
    Inputs are already centred and normalised. Queries go in chunks to bound memory."""
    k = min(k, len(gallery))
    sims, idx = [], []
    for start in range(0, len(queries), chunk):
        s = queries[start : start + chunk] @ gallery.T
        top = s.topk(k, dim=1)
        sims.append(top.values)
        idx.append(top.indices)
    if not sims:
        return torch.empty(0, k), torch.empty(0, k, dtype=torch.long)
    return torch.cat(sims), torch.cat(idx)


def retrieval_accuracy(neighbour_labels: torch.Tensor, query_labels: torch.Tensor, ks) -> dict[str, float]:
    """{"r@k": percent of queries with the query's class among their k nearest}; k is capped at the gallery size."""
    hits = (neighbour_labels == query_labels[:, None]).cumsum(1) > 0  # [Q, K]: a hit within the first j+1
    out = {}
    for k in ks:
        j = min(k, hits.shape[1]) - 1
        out[f"r@{k}"] = round(100.0 * hits[:, j].float().mean().item(), 3) if len(query_labels) else float("nan")
    return out


def knn_vote(
    neighbour_sims: torch.Tensor, neighbour_labels: torch.Tensor, num_classes: int, k: int, vote: str = "majority"
) -> torch.Tensor:
    """Predicted class per query from its k nearest neighbours (columns are sorted best first)."""
    sims, labels = neighbour_sims[:, :k], neighbour_labels[:, :k]
    if vote == "weighted":
        weights = (sims / WEIGHTED_VOTE_TEMPERATURE).exp()
        return torch.zeros(len(labels), num_classes).scatter_add_(1, labels, weights).argmax(1)
    if vote != "majority":
        raise ValueError(f"unknown vote {vote!r}")
    votes = torch.zeros(len(labels), num_classes).scatter_add_(1, labels, torch.ones_like(sims))
    summed = torch.zeros(len(labels), num_classes).scatter_add_(1, labels, sims)
    # most votes first; among tied classes the larger summed similarity (|summed| <= k, so 2k+1 per vote dominates)
    return (votes * (2 * k + 1) + summed).argmax(1)


def knn_evaluate(train_x, train_y, test_x, test_y, num_classes: int, ks, k: int, vote: str = "majority") -> dict:
    """Retrieval r@k for every k in ``ks`` and kNN classification with ``k`` neighbours."""
    from benchmark.device import one_thread

    with one_thread():
        gallery, queries = centre_and_normalise(train_x.float(), test_x.float())
        sims, idx = nearest_neighbours(gallery, queries, max([*ks, k]))
    labels = train_y[idx]
    predicted = knn_vote(sims, labels, num_classes, min(k, labels.shape[1]), vote)
    correct = (predicted == test_y).int()
    return {
        **retrieval_accuracy(labels, test_y, ks),
        "top1": round(100.0 * correct.float().mean().item(), 3) if len(test_y) else float("nan"),
        "per_video_correct": correct.tolist(),
        "k": min(k, len(train_y)),
        "vote": vote,
    }


@register_protocol("knn")
def run_knn(run: RunDir, cfg: ExperimentConfig, *, checkpoint: str = "last.pt", progress_bar: bool = True) -> dict:
    feats = frozen_features(run, cfg, checkpoint, progress_bar)
    ev = cfg.eval
    if ev.knn_k > len(feats.train.y):  # the entry's "k" records it too, but nobody reads an entry for that
        print(f"note: eval.knn_k = {ev.knn_k} is more than the {len(feats.train.y)} train videos: every one of them "
              "votes (k is recorded as their number)", file=sys.stderr, flush=True)  # fmt: skip
    metrics = knn_evaluate(
        feats.train.x,
        feats.train.y,
        feats.test.x,
        feats.test.y,
        len(feats.classes),
        list(ev.knn_ks),
        ev.knn_k,
        ev.knn_vote,
    )
    return {
        **metrics,
        "test_video_ids": feats.test.video_ids,
        "ks": list(ev.knn_ks),
        "frozen": True,
        "selection": "none (no training, no model selection)",
        "similarity": "cosine after subtracting the gallery (train) mean",
        **counts(len(feats.train.y), len(feats.test.y), len(feats.classes), cfg),
        **feats.provenance,
    }
