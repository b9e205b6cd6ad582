"""Cross-entropy with its accuracy: the loss of every classification pretext (order, direction, rotation).

Returns the loss and the scalars to log as 0-d tensors (no host synchronisation: the training loop turns
them into numbers on logging steps only).

>>> import torch
>>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
>>> loss, scalars = cross_entropy_accuracy(logits, torch.tensor([0, 1, 1]))
>>> sorted(scalars), round(float(scalars["accuracy"]), 3), round(float(loss), 4)
(['accuracy', 'loss'], 0.667, 0.5224)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy_accuracy(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(mean cross-entropy, {"loss", "accuracy"}) of logits [B, C] (computed in fp32) against labels [B]."""
    logits = logits.float()
    loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    with torch.no_grad():
        accuracy = (logits.argmax(1) == target).float().mean()
    return loss, {"loss": loss.detach(), "accuracy": accuracy}
