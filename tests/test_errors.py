"""errors.raised_at: a failure is named at the plugin's (or the harness's) line, never inside a library."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from benchmark.errors import raised_at

PLUGIN = """import numpy as np
import torch


def numpy_fails():
    return np.random.default_rng(0).integers(0, 0)  # raised in numpy's compiled .pyx (a relative file name)


def torch_fails():
    return torch.nn.Linear(3, 2)(torch.ones(4))  # raised under torch's own Python (nn.Linear.forward)


def fails_itself():
    return {}["missing"]
"""


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location("my_plugin_for_errors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


@pytest.mark.parametrize("call, line", [("numpy_fails", 6), ("torch_fails", 10), ("fails_itself", 14)])
def test_the_plugin_line_is_named_not_the_library_beneath_it(plugin, call, line):
    path, module = plugin
    with pytest.raises(Exception) as info:
        getattr(module, call)()
    assert raised_at(info.value) == f" at {path}:{line}"


def test_skipped_paths_and_no_frame_of_ours_give_nothing(plugin):
    path, module = plugin
    with pytest.raises(KeyError) as info:
        module.fails_itself()
    assert raised_at(info.value, skip=(str(path),)).startswith(f" at {__file__}:")  # this test's own call
    assert raised_at(info.value, skip=(str(path), __file__)) == ""
    assert sys.modules.get("my_plugin_for_errors") is None
