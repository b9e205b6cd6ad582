import sys

import pytest

from benchmark.config import MethodConfig
from benchmark.errors import UserError
from benchmark.method import Method, Pretraining
from benchmark.registry import METHODS, SAMPLERS, Registry, method_table


def test_in_tree_methods_registered():
    names = METHODS.names()
    assert "tce" in names and "random_init" in names


def test_in_tree_samplers_registered():
    assert {"frame_pair", "clip", "frames", "clips", "segments"} <= set(SAMPLERS.names())


def test_duplicate_name_names_both_sources():
    reg = Registry("method")

    @reg.register("x")
    class A:  # noqa: N801
        pass

    with pytest.raises(UserError) as exc:

        @reg.register("x")
        class B:  # noqa: N801
            pass

    msg = str(exc.value)
    assert "duplicate method name 'x'" in msg and "A" in msg and "B" in msg


def test_every_method_declares_the_contract():
    for entry in METHODS.entries():
        cls = entry.obj
        assert issubclass(cls, Method), entry.name
        assert issubclass(cls.Config, MethodConfig), entry.name
        assert cls.Config().name == entry.name, f"{entry.name}: Config.name default must equal the registry name"
        assert cls.backbone_kind in ("2d", "3d", "either")
        assert isinstance(cls.pretraining, Pretraining), entry.name
        if cls.pretraining is not Pretraining.NONE:
            assert cls.sampler in SAMPLERS, f"{entry.name}: sampler {cls.sampler} not registered"


def test_method_table_rows():
    rows = {r["name"]: r for r in method_table()}
    assert rows["tce"]["backbone"] == "2d" and rows["tce"]["sampler"] == "frame_pair"
    assert rows["tce"]["source"].startswith("methods.tce:")


def test_unknown_method_suggests():
    with pytest.raises(UserError, match="did you mean 'tce'"):
        METHODS.get("tcee")


def test_an_import_error_is_placed_in_a_plugin_installed_under_the_stdlib_folder(monkeypatch):
    """conda, pyenv and docker's python images keep site-packages inside the standard library's folder: the
    plugin's own line is named there too, not dropped with the standard library's frames."""
    import os
    import sysconfig

    from benchmark import errors
    from benchmark.registry import _where

    # installed with a vssl.methods entry point (as every plugin the registry imports is); other installed
    # packages are libraries, named at the plugin's call into them
    monkeypatch.setattr(errors, "_our_packages", lambda: frozenset({"benchmark", "methods", "mk_plugin"}))

    plugin = os.path.join(sysconfig.get_paths()["stdlib"], "site-packages", "mk_plugin.py")
    stdlib = os.path.join(sysconfig.get_paths()["stdlib"], "dataclasses_like.py")
    namespace: dict = {}
    exec(compile("def inner():\n    raise TypeError('no default')\n", stdlib, "exec"), namespace)
    exec(compile("def boom(inner):\n    x = 1\n    inner()\n", plugin, "exec"), namespace)
    try:
        namespace["boom"](namespace["inner"])
    except TypeError as exc:
        assert _where(exc) == f" at {plugin}:3"  # the plugin's line, not the standard library's beneath it


def test_an_unknown_name_says_how_a_plugin_becomes_known():
    """A plugin installed into another environment (or without its entry point) reads as a typo: the line says
    where names come from and which Python looked."""
    with pytest.raises(UserError) as exc:
        METHODS.get("vicreg_clips")
    msg = str(exc.value)
    assert msg.startswith("unknown method 'vicreg_clips'") and "known: arrow_of_time, " in msg
    assert f"with a 'vssl.methods' entry point, is installed in this Python: {sys.executable})" in msg
