"""scripts/slurm_up.sh where SLURM cannot be had, and what the test fixture then does (skip, or fail on CI)."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import REPO, _unavailable


def test_slurm_up_without_apt_says_why_and_exits_3(tmp_path):
    base = tmp_path / "b"
    out = subprocess.run(
        ["/bin/bash", str(REPO / "scripts" / "slurm_up.sh")],
        env={"PATH": "/nonexistent", "SLURM_BASE": str(base)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3  # "cannot run here", told apart from a real failure
    assert "SLURM is not installed" in out.stderr and "apt-get" in out.stderr
    assert not base.exists()


def test_slurm_up_refuses_a_base_too_long_for_unix_sockets(tmp_path):
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "slurm_up.sh")],
        env={"PATH": "/usr/bin:/bin", "SLURM_BASE": "/tmp/" + "x" * 90},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3 and "too long for unix sockets" in out.stderr


def test_no_slurm_skips_on_a_laptop_and_fails_on_ci(monkeypatch):
    monkeypatch.delenv("VSSL_REQUIRE_SLURM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no SLURM here: because"):
        _unavailable("because")
    monkeypatch.setenv("VSSL_REQUIRE_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="VSSL_REQUIRE_SLURM=1 but SLURM could not start: because"):
        _unavailable("because")
