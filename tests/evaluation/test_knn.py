"""kNN retrieval and classification: exact on a hand-made gallery, monotone in k."""

from __future__ import annotations

import math

import torch

from benchmark.evaluation.knn import (
    centre_and_normalise,
    knn_evaluate,
    knn_vote,
    nearest_neighbours,
    retrieval_accuracy,
)


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# A gallery symmetric about the origin (mean 0, so centring changes nothing): class 0 near 0 deg,
# class 1 near 90 deg, class 2 near 180 deg, class 3 near 270 deg.
GALLERY = torch.tensor([unit(a) for a in (0, 10, 90, 100, 180, 190, 270, 280)])
GALLERY_Y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
# Query 0 at 3 deg (class 0): nearest 0 deg, then 10 deg (class 0). Query 1 at 45 deg, labelled 1: nearest 10 deg
# (class 0), then 90 deg (class 1). Query 2 at 237 deg, labelled 0: ranks 270, 280, 190, 180, then 0 deg (rank 5).
QUERIES = torch.tensor([unit(3), unit(45), unit(237)]) * 3.0  # scale must not matter (cosine)
QUERY_Y = torch.tensor([0, 1, 0])


def test_centring_uses_gallery_mean():
    g, q = centre_and_normalise(GALLERY + 5.0, QUERIES + 5.0)
    assert torch.allclose(g, torch.nn.functional.normalize(GALLERY, dim=1), atol=1e-6)
    assert torch.allclose(q.norm(dim=1), torch.ones(len(q)))


def test_hand_made_gallery_exact():
    g, q = centre_and_normalise(GALLERY, QUERIES)
    sims, idx = nearest_neighbours(g, q, k=8)
    assert idx[0, :2].tolist() == [0, 1] and idx[1, :2].tolist() == [1, 2]
    assert idx[2].tolist() == [6, 7, 5, 4, 0, 1, 3, 2]
    r = retrieval_accuracy(GALLERY_Y[idx], QUERY_Y, ks=[1, 2, 4, 5])
    assert r == {"r@1": round(100 / 3, 3), "r@2": round(200 / 3, 3), "r@4": round(200 / 3, 3), "r@5": 100.0}
    m = knn_evaluate(GALLERY, GALLERY_Y, QUERIES, QUERY_Y, num_classes=4, ks=[1, 2, 50], k=1)
    assert m["per_video_correct"] == [1, 0, 0] and m["top1"] == round(100 / 3, 3)
    assert m["r@50"] == 100.0 and m["k"] == 1  # k beyond the gallery: the whole gallery


def test_majority_vote_and_tie_break():
    sims = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.9, 0.8, 0.3, 0.2]])
    labels = torch.tensor([[1, 2, 2, 3], [1, 1, 2, 2]])
    assert knn_vote(sims, labels, num_classes=4, k=3).tolist() == [2, 1]  # q0: two votes for 2
    assert knn_vote(sims, labels, num_classes=4, k=4).tolist() == [2, 1]  # q1: 2-2 tie, class 1 is closer
    weighted = knn_vote(torch.tensor([[0.99, 0.5, 0.5]]), torch.tensor([[0, 1, 1]]), 2, 3, "weighted")
    assert weighted.tolist() == [0]  # exp(0.99/0.07) outweighs 2 * exp(0.5/0.07)


def test_retrieval_monotone_in_k():
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(300, 16, generator=g), torch.randn(100, 16, generator=g)
    train_y, test_y = torch.randint(0, 10, (300,), generator=g), torch.randint(0, 10, (100,), generator=g)
    ks = [1, 5, 10, 20, 50]
    m = knn_evaluate(train_x, train_y, test_x, test_y, 10, ks, k=10)
    values = [m[f"r@{k}"] for k in ks]
    assert values == sorted(values) and values[0] < values[-1]
    nearest = nearest_neighbours(*centre_and_normalise(train_x, test_x), 1)[1][:, 0]
    assert m["r@1"] == round(100.0 * (train_y[nearest] == test_y).float().mean().item(), 3)


def test_top1_votes_with_knn_k_not_the_largest_retrieval_k():
    """eval.knn_k neighbours vote, not max(eval.knn_ks): here the nearest and the 8 nearest disagree."""
    # Mean 0 (the two halves mirror each other): class 0 at 0 deg, class 1 at +-10 and +-20 deg, class 2 around
    # 180 deg. A query at 1 deg: its nearest is class 0, its 8 nearest are four 1s, three 2s and one 0.
    angles = (0, 10, -10, 20, -20, 180, 170, 190, 160, 200)
    gallery = torch.tensor([unit(a) for a in angles])
    gallery_y = torch.tensor([0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    m = knn_evaluate(gallery, gallery_y, torch.tensor([unit(1)]), torch.tensor([0]), num_classes=3, ks=[1, 8], k=1)
    assert m["per_video_correct"] == [1] and m["top1"] == 100.0 and m["k"] == 1
    m8 = knn_evaluate(gallery, gallery_y, torch.tensor([unit(1)]), torch.tensor([0]), num_classes=3, ks=[1], k=8)
    assert m8["per_video_correct"] == [0]  # the same query with k = 8: the majority (class 1) wins


def test_majority_vote_uses_exactly_k_neighbours():
    """The (k+1)-th neighbour must not vote: with it, class 1 would have two votes to one."""
    sims, labels = torch.tensor([[0.9, 0.8, 0.7]]), torch.tensor([[0, 1, 1]])
    assert knn_vote(sims, labels, num_classes=2, k=2).tolist() == [0]  # 1-1 tie, class 0 is closer
    assert knn_vote(sims, labels, num_classes=2, k=3).tolist() == [1]
    assert knn_vote(sims, labels, num_classes=2, k=2, vote="weighted").tolist() == [0]


def test_majority_tie_goes_to_the_closer_class_even_with_the_higher_index():
    """A plain argmax over votes would pick the lowest tied class index (1); the 2s are nearer."""
    sims, labels = torch.tensor([[0.9, 0.8, 0.3, 0.2]]), torch.tensor([[2, 2, 1, 1]])
    assert knn_vote(sims, labels, num_classes=3, k=4).tolist() == [2]


def test_more_votes_beat_a_larger_summed_similarity():
    """Summed similarity only breaks ties: class 0 (one vote, 0.9) loses to class 1 (two votes, summing -0.5)."""
    sims, labels = torch.tensor([[0.9, 0.0, -0.5]]), torch.tensor([[0, 1, 1]])
    assert knn_vote(sims, labels, num_classes=2, k=3).tolist() == [1]


def test_weighted_vote_temperature_is_0_07():
    """One neighbour at s0 beats two at s1 iff exp((s0 - s1) / T) > 2, i.e. s0 - s1 > T ln 2 (0.0485 at T = 0.07).

    A gap of 0.06 wins at 0.07 but not at 0.1 (needs 0.069); a gap of 0.04 loses at 0.07 but wins at 0.05."""
    sims = torch.tensor([[0.90, 0.84, 0.84], [0.90, 0.86, 0.86]])
    labels = torch.tensor([[0, 1, 1], [0, 1, 1]])
    assert knn_vote(sims, labels, num_classes=2, k=3, vote="weighted").tolist() == [0, 1]
