"""Fixtures for the launcher tests.

``slurm``         session-scoped: a real single-node SLURM (with accounting) brought up once by
                  scripts/slurm_up.sh under a temp SLURM_BASE and taken down at the end of the
                  session. Where it cannot start (no root, no apt: a laptop) tests using it skip
                  with the reason; with VSSL_REQUIRE_SLURM=1 (CI) they fail instead.
``tiny_base()``   a TCE config that pre-trains in about a second on the session's tiny synthetic set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class LocalSlurm:
    base: Path
    conf: Path


def _unavailable(reason: str):
    if os.environ.get("VSSL_REQUIRE_SLURM") == "1":
        pytest.fail(f"VSSL_REQUIRE_SLURM=1 but SLURM could not start: {reason}")
    pytest.skip(f"no SLURM here: {reason} (scripts/slurm_up.sh needs root and apt)")


@pytest.fixture(scope="session")
def _slurm_session():
    # A short path: munge's and MariaDB's unix sockets live under it.
    base = Path(tempfile.mkdtemp(prefix="vssl-slurm-", dir="/tmp"))
    # 6 declared cores on a 2-core machine: the test jobs mostly sleep or wait, and should overlap.
    env = {**os.environ, "SLURM_BASE": str(base), "SLURM_CPUS": "6"}
    try:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "slurm_up.sh")], env=env, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        out = None
        reason = f"slurm_up.sh did not finish: {exc}"
    else:
        reason = "; ".join((out.stderr or out.stdout).strip().splitlines()[-3:]) or f"exit {out.returncode}"
    try:
        yield (LocalSlurm(base, base / "etc" / "slurm.conf") if out is not None and out.returncode == 0 else reason)
    finally:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "slurm_down.sh"), "--purge"], env=env, capture_output=True, timeout=120
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def slurm(_slurm_session, monkeypatch) -> LocalSlurm:
    if isinstance(_slurm_session, str):
        _unavailable(_slurm_session)
    monkeypatch.setenv("SLURM_CONF", str(_slurm_session.conf))
    return _slurm_session


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is several times faster than two fighting.
    Module scope: set before module fixtures (a reference run must use the same thread count as its rerun)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_base() -> dict:
    """A TCE config that pre-trains in about a second on the tiny synthetic set."""
    return {
        "data": {"dataset": "synthetic-pool", "resolution": 16},
        "backbone": {"name": "resnet10t"},
        "method": {"name": "tce", "negatives": 1, "embed_dim": 16},
        "optim": {"batch_size": 4, "steps": 6, "lr": 0.01},
        "eval": {"dataset": "synthetic", "frames": 2, "linear_epochs": 5, "batch_size": 8},
        "run": {"device": "cpu", "precision": "fp32", "log_every": 1, "checkpoint_every": 4, "stages": ["pretrain"]},
    }
