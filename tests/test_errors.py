"""errors.raised_at: a failure is named at the plugin's (or the harness's) line, never inside a library."""

from __future__ import annotations

import importlib.util

import pytest

from benchmark.errors import failure_line, one_line, raised_at

PLUGIN = """import numpy as np
import torch
import yaml


def numpy_fails():
    return np.random.default_rng(0).integers(0, 0)  # raised in numpy's compiled .pyx (a relative file name)


def torch_fails():
    return torch.nn.Linear(3, 2)(torch.ones(4))  # raised under torch's own Python (nn.Linear.forward)


def fails_itself():
    return {}["missing"]


def yaml_fails():
    return yaml.safe_dump({"a": object()})  # raised in PyYAML (an installed library the list never named)
"""


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location("my_plugin_for_errors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


@pytest.mark.parametrize(
    "call, line", [("numpy_fails", 7), ("torch_fails", 11), ("fails_itself", 15), ("yaml_fails", 19)]
)
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


def test_a_failure_in_a_dataloader_worker_is_named_at_the_workers_line(plugin):
    """torch re-raises a worker's exception in the main process with the worker's traceback as text: the line is
    the message's own last line and the plugin's frame in that text, not the harness's `for batch in loader`."""
    from torch._utils import ExceptionWrapper

    path, module = plugin
    try:
        module.fails_itself()
    except KeyError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(KeyError) as info:
        wrapped.reraise()
    assert "\n" in str(info.value)  # what the FAILED line printed before: torch's whole text
    assert failure_line(info.value) == f"KeyError: 'missing' at {path}:15"
    assert one_line(info.value) == "'missing'"
    assert failure_line(ValueError("plain")) == "ValueError: plain"
