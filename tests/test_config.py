import subprocess
import sys

import pytest

from benchmark.config import ExperimentConfig, config_hash, load_config, parse_override
from benchmark.errors import UserError


def test_defaults_and_overrides():
    cfg = load_config(
        {"method": {"name": "tce"}}, ["optim.lr=0.01", "method.temperature=0.2", "run.stages=[pretrain, knn]"]
    )
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.optim.lr == 0.01
    assert cfg.method.temperature == 0.2
    assert cfg.run.stages == ["pretrain", "knn"]


def test_a_bare_off_reads_as_the_documented_word_not_a_yaml_boolean(tmp_path):
    assert load_config(None, ["run.wandb=off", "run.compile=off"]).run.wandb == "off"
    (tmp_path / "c.yaml").write_text("run: {wandb: off, compile: off}\n")
    cfg = load_config(tmp_path / "c.yaml", [])
    assert (cfg.run.wandb, cfg.run.compile) == ("off", "off")
    with pytest.raises(UserError, match="should be one of 'off', 'offline', 'online'"):
        load_config(None, ["run.wandb=true"])  # 'on' is not one of its words: still refused


def test_int_widens_to_float():
    assert load_config(None, ["optim.lr=1"]).optim.lr == 1.0


@pytest.mark.parametrize(
    "override, expected",
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr' (did you mean 'optim.lr'?)"),
        ("optimm.lr=0.1", "unknown config key 'optimm' (did you mean 'optim'?)"),
        ("method.temperture=0.1", "unknown config key 'method.temperture' (did you mean 'method.temperature'?)"),
        ("optim.steps=abc", "config key 'optim.steps' = 'abc' should be int"),
        ("optim.name=lamb", "config key 'optim.name' = 'lamb' should be one of 'sgd', 'adam', 'adamw'"),
        ("run.channels_last=3", "config key 'run.channels_last' = 3 should be bool"),
        ("method.name=tcee", "unknown method 'tcee' (did you mean 'tce'?)"),
        ("run.stages=[pretrain, lineer]", "unknown stage 'lineer' in run.stages (did you mean 'linear'?)"),
        ("optim.betas=[0.5]", "optim.betas = [0.5]: two values in [0, 1)"),
        ("optim.betas=[1, 0.999]", "optim.betas = [1.0, 0.999]: two values in [0, 1)"),
        ("run.seed=-1", "run.seed = -1: a seed is an integer in [0, 2^32)"),
        ("run.seed=18446744073709551617", "run.seed = 18446744073709551617: a seed"),
        ("eval.finetune_epochs=0", "eval.finetune_epochs = 0: must be 1 or more"),
        ("run.stages=[pretrain, pretrain]", "run.stages = ['pretrain', 'pretrain']: a stage is named twice"),
        ("run.time_budget_s=-1", "run.time_budget_s = -1.0: seconds, 0 or more"),
    ],
)
def test_bad_input_is_one_clear_line(override, expected):
    with pytest.raises(UserError) as exc:
        load_config(None, [override])
    assert str(exc.value).startswith(expected)
    assert "\n" not in str(exc.value)


def test_adam_betas_reach_the_optimiser_and_default_to_torchs():
    import torch

    from benchmark.train import make_optimizer

    param = [torch.nn.Parameter(torch.zeros(1))]
    for name in ("adam", "adamw"):
        default = make_optimizer(param, load_config(None, [f"optim.name={name}"]).optim)
        assert default.defaults["betas"] == (0.9, 0.999)  # unchanged: torch's own default
        gan = make_optimizer(param, load_config(None, [f"optim.name={name}", "optim.betas=[0.5, 0.999]"]).optim)
        assert gan.defaults["betas"] == (0.5, 0.999)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(UserError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_override_needs_equals():
    with pytest.raises(UserError, match="is not key=value"):
        parse_override("optim.lr")


def test_config_hash_changes_with_values():
    assert config_hash(load_config()) == config_hash(load_config())
    assert config_hash(load_config()) != config_hash(load_config(None, ["optim.lr=0.5"]))


def test_cli_bad_override_exit_2_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "pretrain", "optim.lrr=3"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "did you mean 'optim.lr'" in proc.stderr


def test_cli_missing_config_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "pretrain", "missing.yaml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2 and "config file not found: missing.yaml" in proc.stderr


def test_scientific_notation_override_is_a_number():
    assert load_config(None, ["optim.lr=1e-4"]).optim.lr == 1e-4
    assert parse_override("method.name=tce") == ("method.name", "tce")


def test_a_config_field_without_a_default_is_one_line_naming_it():
    """A plugin's keyword-only field without a default would fail in the dataclass's __init__ with a traceback."""
    import dataclasses

    from benchmark.config import build_dataclass
    from benchmark.errors import UserError

    @dataclasses.dataclass(kw_only=True)
    class NoDefault:
        name: str = "x"
        hidden_dim: int

    with pytest.raises(UserError, match=r"method.hidden_dim of .*NoDefault has no default"):
        build_dataclass(NoDefault, {"name": "x"}, prefix="method")
    assert build_dataclass(NoDefault, {"hidden_dim": 3}, prefix="method").hidden_dim == 3


def test_an_undecorated_plugin_config_is_named_but_classvars_are_not_fields():
    """A Config subclass without @dataclass adds fields nobody can set; one that only adds ClassVars is fine."""
    from dataclasses import dataclass
    from typing import ClassVar

    from benchmark.config import MethodConfig, build_method_config
    from benchmark.errors import UserError
    from benchmark.method import Method
    from benchmark.registry import METHODS

    @dataclass
    class Base(MethodConfig):
        name: str = "cfgtest"
        width: int = 4

    class Undecorated(Base):
        depth: int = 2

    class Presets(Base):
        PRESETS: ClassVar[dict] = {"small": 1}

    for config, ok in ((Undecorated, False), (Presets, True), (Base, True)):
        cls = type("CfgTest", (Method,), {"Config": config})
        METHODS.register("cfgtest")(cls)
        try:
            if ok:
                assert build_method_config({"name": "cfgtest", "width": 8}).width == 8
            else:
                with pytest.raises(UserError, match="its config class Undecorated is not decorated with @dataclass"):
                    build_method_config({"name": "cfgtest"})
        finally:
            METHODS.unregister("cfgtest")
