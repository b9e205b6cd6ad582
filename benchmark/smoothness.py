"""Embedding smoothness after TCE's Figure 3 (Knights et al., ICPR 2020), cheap enough to log every step.

``smooth_same`` is the mean cosine similarity of the embeddings of two frames d apart in the same video
(anchor and positive), ``smooth_diff`` the mean cosine similarity of frames of different videos. A
temporally coherent embedding has ``smooth_same`` high and ``smooth_diff`` low; both near 1 is a collapse.
The plot of whole-video trajectories lives in :mod:`benchmark.trajectories` (a layer above the methods).

>>> import torch
>>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> {k: float(v) for k, v in embedding_smoothness(a, p, torch.tensor([0, 1])).items()}
{'smooth_same': 1.0, 'smooth_diff': 0.0}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def embedding_smoothness(
    anchor: torch.Tensor, positive: torch.Tensor, video_index: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Mean cosine of (anchor_i, positive_i), and of every pair of batch frames from different videos, as 0-d
    tensors (no host sync; the training log turns them into numbers).

    ``smooth_diff`` is NaN (left out of the log) when the batch holds a single video.
    """
    a = F.normalize(anchor.detach().float(), dim=1)
    p = F.normalize(positive.detach().float(), dim=1)
    z = torch.cat([a, p])
    video = torch.cat([video_index, video_index]).to(z.device)
    other = video[:, None] != video[None, :]
    cos = z @ z.T
    return {"smooth_same": (a * p).sum(1).mean(), "smooth_diff": torch.where(other, cos, 0.0).sum() / other.sum()}
