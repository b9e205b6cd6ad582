"""Reference row: no pre-training. The backbone is evaluated exactly as it was
initialised (the same initialisation every pre-training run starts from, as
recorded in the run's env.json), the lower bound every SSL row is read against.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.config import MethodConfig
from benchmark.method import Method, Pretraining
from benchmark.registry import register_method


@dataclass
class RandomInitConfig(MethodConfig):
    name: str = "random_init"


@register_method("random_init")
class RandomInit(Method):
    """No pre-training: the backbone's initialisation, evaluated as is (lower bound)."""

    Config = RandomInitConfig
    sampler = None
    backbone_kind = "either"
    pretraining = Pretraining.NONE
