"""Every runnable example in a docstring (``>>>``) of the harness and the in-tree methods runs and prints what it
says: the examples are documentation users copy, and some (the losses') pin the numbers they show."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for package in ("benchmark", "methods")
    for p in (ROOT / package).rglob("*.py")
    if ">>> " in p.read_text(encoding="utf-8")
)


def test_the_examples_are_found():
    assert {"benchmark.losses.classification", "benchmark.losses.info_nce", "benchmark.mining"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
