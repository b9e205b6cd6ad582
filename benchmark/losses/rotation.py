"""Rotation prediction (Gidaris et al., ICLR 2018) as the TCE release's auxiliary task: a frame is turned
by 0, 90, 180 or 270 degrees and a small head predicts which (4-way cross-entropy).

>>> import torch
>>> x = torch.arange(4.0).view(1, 1, 2, 2)                    # one 2x2 "frame": [[0, 1], [2, 3]]
>>> rotate_quarter_turns(x, torch.tensor([1]))[0, 0]          # one quarter turn, counter-clockwise
tensor([[1., 3.],
        [0., 2.]])
>>> rotation_loss(torch.tensor([[0.0, 9.0, 0.0, 0.0]]), torch.tensor([1])).item() < 1e-3
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotate_quarter_turns(frames: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """frames [B, C, H, W] (H == W), turns [B] in 0..3 -> each frame rotated by turns[b] * 90 degrees."""
    if frames.shape[-1] != frames.shape[-2]:
        raise ValueError(f"rotation needs square frames, got {tuple(frames.shape[-2:])}")
    # all four turns, then one gather: no data-dependent shapes, so no host synchronisation on a GPU
    every = torch.stack([torch.rot90(frames, k, dims=(-2, -1)) for k in range(4)])  # [4, B, C, H, W]
    return every[turns.to(frames.device), torch.arange(len(frames), device=frames.device)]


def rotation_loss(logits: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """4-way cross-entropy of [B, 4] logits against the applied quarter turns [B]."""
    return F.cross_entropy(logits, turns)
