"""Shared pytest fixtures (data layer).

``tiny_synth``       session-scoped: a tiny synthetic dataset (UCF101 layout + pool) written once per test
                     session; returns its root (``<tmp>/vssl_data/synthetic``). Treat it as read-only.
``tiny_synth_config`` the SynthConfig it was generated with.
``synth_data_home``  sets ``$VSSL_DATA`` to the folder holding ``tiny_synth`` so the built-in dataset names
                     ``synthetic`` / ``synthetic-pool`` resolve to it; returns that folder.

`make test` runs the suite in two pytest-xdist workers (``-n 2 --dist loadgroup``, one torch thread each: tiny
models on a 2-core machine). ``pytest_collection_modifyitems`` keeps each test file on one worker (its module
fixtures are built once) and every test that uses the real SLURM on the same worker: two SLURM instances on one
host collide.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.synthetic import SynthConfig, generate

TINY_SYNTH = SynthConfig(classes=3, videos_per_class=4, groups=4, test_groups=2, size=32, frames=16, pool_videos=6)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = "slurm" if "slurm" in getattr(item, "fixturenames", ()) else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def tiny_synth_config() -> SynthConfig:
    return TINY_SYNTH


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vssl_data") / "synthetic"
    generate(root, TINY_SYNTH, workers=1, progress=False)
    return root


@pytest.fixture
def synth_data_home(tiny_synth: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VSSL_DATA", str(tiny_synth.parent))
    return tiny_synth.parent


@pytest.fixture(autouse=True)
def small_pretext_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The held-out pretext check reads run.pretext_samples (default 256) samples at step 0 and at the end of every
    pre-training: in tests that run tiny pre-trainings for other reasons it dominated their time. A run left at
    the default is measured on 16 samples here; tests of the check itself (golden, tracking) set their own value
    and keep it, and tests/methods/test_learning.py overrides this fixture to check at the default."""
    import dataclasses

    from benchmark import train
    from benchmark.config import RunConfig

    default = RunConfig().pretext_samples
    real = train.pretext_score

    def pretext_score(method, built, cfg, ctx, method_cls):
        if cfg.run.pretext_samples == default:
            cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, pretext_samples=16))
        return real(method, built, cfg, ctx, method_cls)

    monkeypatch.setattr(train, "pretext_score", pretext_score)
