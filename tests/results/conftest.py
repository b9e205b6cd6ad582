"""Fixtures: sweep folders of generated run directories (written with the real RunDir API).

Each sweep is generated once per session and copied per test, so a test may
corrupt its copy freely.
"""

import shutil

import pytest

from benchmark.results.fakeruns import FakeRun, table1_specs, write_fake_sweep


@pytest.fixture(scope="session")
def _pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    # random init, TCE, arrow of time, supervised; 3 seeds each; linear + kNN on the synthetic set
    write_fake_sweep(root / "sweep", table1_specs(smooth=True))
    # TCE under four hard-negative settings (field names the plots are told explicitly), a checkpoint evaluated
    specs = [FakeRun(method="random_init", seed=s, accuracy=0.25) for s in (0, 1)]
    for schedule, r in (("none", 0), ("exp", 1), ("exp", 5), ("linear", 0)):
        specs += [
            FakeRun(
                method="tce",
                seed=s,
                accuracy=0.3 + 0.02 * r,
                step_evals=(50,),
                overrides={"method.hn_schedule": schedule, "method.hn_rate": r},
            )
            for s in (0, 1)
        ]
    write_fake_sweep(root / "ablation", specs, name="ablation")
    return root


@pytest.fixture
def table1_sweep(_pristine, tmp_path):
    return shutil.copytree(_pristine / "sweep", tmp_path / "sweep")


@pytest.fixture
def ablation_sweep(_pristine, tmp_path):
    return shutil.copytree(_pristine / "ablation", tmp_path / "ablation")
