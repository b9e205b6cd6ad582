"""Data-layer fixtures: index caches go to a per-test folder, never to ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def index_cache_dir(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("vssl_cache")
    monkeypatch.setenv("VSSL_CACHE", str(path))
    return path
