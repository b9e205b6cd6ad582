"""Released weights: a backbone imported from an author's checkpoint (`vssl import`), evaluated like any run.

Not a pre-training objective: the run directory is written by `vssl import` (benchmark/weights.py), its
pretrain entry records where the weights came from (file, sha256, format, paper), and every evaluation
protocol reads its checkpoints/last.pt. Tables label the row "<method> (released weights)" and compare it with
the paper only under the usual protocol rules. Pre-training it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.config import MethodConfig
from benchmark.errors import UserError
from benchmark.method import DataInfo, Method, Pretraining
from benchmark.registry import register_method


@dataclass
class ReleasedConfig(MethodConfig):
    name: str = "released"
    of: str = ""  # the paper's method the weights come from (tce, vcop, ...)
    format: str = ""  # the importer's format


@register_method("released")
class Released(Method):
    """Released weights imported with `vssl import` (evaluated, never pre-trained here)."""

    Config = ReleasedConfig
    sampler = None
    backbone_kind = "either"
    pretraining = Pretraining.NONE

    @classmethod
    def check(cls, cfg: ReleasedConfig, info: DataInfo) -> None:
        raise UserError("method 'released' holds imported weights: create it with `vssl import FILE --format ...`")
