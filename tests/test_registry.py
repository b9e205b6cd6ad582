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
