"""Self-supervised losses as pure functions (one loss per file), lightly-style: tensors in, a scalar out.

- :mod:`benchmark.losses.info_nce`: softmax InfoNCE over (positive, K negatives) and the shared logits;
- :mod:`benchmark.losses.nce`: the CMC/TCE-release binary NCE with a constant normaliser Z;
- :mod:`benchmark.losses.rotation`: the rotation-prediction auxiliary task (quarter turns);
- :mod:`benchmark.losses.classification`: cross-entropy with its accuracy (every classification pretext).

Every module has runnable docstring examples (tests/losses/ runs them).
"""

from benchmark.losses.classification import cross_entropy_accuracy
from benchmark.losses.info_nce import contrastive_logits, info_nce, info_nce_from_logits
from benchmark.losses.nce import binary_nce, estimate_normaliser
from benchmark.losses.rotation import rotate_quarter_turns, rotation_loss

__all__ = [
    "cross_entropy_accuracy",
    "contrastive_logits",
    "info_nce",
    "info_nce_from_logits",
    "binary_nce",
    "estimate_normaliser",
    "rotate_quarter_turns",
    "rotation_loss",
]
