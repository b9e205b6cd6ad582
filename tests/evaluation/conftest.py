"""Fixtures for the evaluation tests.

``tiny_run``     session-scoped: a random-init run directory (resnet10t, 32 px, small test sampling) whose
                 evaluations read the session's ``tiny_synth`` set. Tests that evaluate it need
                 ``synth_data_home`` (it points the built-in ``synthetic`` name at ``tiny_synth``); they add
                 entries to its metrics.json and share its feature cache.
``tiny_config``  its resolved config with overrides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.config import load_config
from benchmark.rundir import RunDir

TINY_OVERRIDES = [
    "method.name=random_init",
    "data.dataset=synthetic",
    "data.resolution=32",
    "eval.dataset=synthetic",
    "eval.frames=2",
    "eval.clips=2",
    "eval.clip_len=4",
    "eval.batch_size=32",
    "eval.linear_epochs=20",
    "eval.knn_ks=[1,2,5]",
    "eval.knn_k=3",
    "eval.finetune_epochs=2",
    "eval.finetune_batch_size=4",
    "run.stages=[pretrain,linear,knn,finetune]",
]


def make_run(path: Path, *overrides: str) -> RunDir:
    from benchmark.train import pretrain

    cfg = load_config({}, [*TINY_OVERRIDES, *overrides])
    run = RunDir(path)
    pretrain(run, cfg, {}, progress_bar=False)
    return run


@pytest.fixture(scope="session")
def tiny_run(tiny_synth, tmp_path_factory) -> RunDir:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSSL_DATA", str(tiny_synth.parent))
        return make_run(tmp_path_factory.mktemp("eval_run") / "random_init")


def tiny_config(run: RunDir, *overrides: str):
    from benchmark.config import build_experiment, merge_overrides

    return build_experiment(merge_overrides(run.config(), list(overrides)))
