"""The stage-spec and metrics-key grammar (benchmark.keys): one parser, used by every layer."""

from __future__ import annotations

import pytest

from benchmark.errors import UserError
from benchmark.keys import MetricsKey, Stage, checkpoint_name, checkpoint_step, required_keys


def test_stage_keys_use_the_config_defaults_only_where_the_spec_names_none():
    assert str(Stage.parse("pretrain").key()) == "pretrain"
    assert str(Stage.parse("linear").key("ucf101", 2)) == "linear/ucf101/split2"
    assert str(Stage.parse("finetune:hmdb51").key("ucf101", 1)) == "finetune/hmdb51/split1"
    assert str(Stage.parse("knn:ucf101:3").key("synthetic", 1)) == "knn/ucf101/split3"
    assert str(Stage.parse("knn::2").key("synthetic", 1)) == "knn/synthetic/split2"


@pytest.mark.parametrize("text", ["linear", "finetune:hmdb51", "knn:ucf101:3", "pretrain"])
def test_stage_round_trips(text):
    assert str(Stage.parse(text)) == text


@pytest.mark.parametrize("text", ["pretrain:ucf101", "linear:a:b", "knn:a:1:2", "linear:", ""])
def test_malformed_stages_are_one_line_errors(text):
    with pytest.raises(UserError, match="should look like"):
        Stage.parse(text)


@pytest.mark.parametrize("text", ["pretrain", "linear/synthetic/split1", "knn/ucf101/split3@step_200"])
def test_metrics_keys_round_trip(text):
    assert str(MetricsKey.parse(text)) == text


def test_metrics_key_checkpoints():
    key = MetricsKey.parse("linear/synthetic/split1@step_200")
    assert (key.step, key.checkpoint, str(key.final)) == (200, "step_200.pt", "linear/synthetic/split1")
    assert str(key.final.at("last.pt")) == "linear/synthetic/split1"
    assert MetricsKey.parse("not a key") is None and MetricsKey.parse("linear/x/splitA") is None
    assert (
        checkpoint_step("last.pt") is None and checkpoint_step("step_7.pt") == 7 and checkpoint_name(7) == "step_7.pt"
    )
    with pytest.raises(UserError, match="should be last.pt or step_N.pt"):
        checkpoint_step("best.pt")


def test_required_keys_add_evaluated_checkpoints():
    assert required_keys(["pretrain", "linear"], "synthetic", 1, [50]) == [
        "pretrain",
        "linear/synthetic/split1",
        "linear/synthetic/split1@step_50",
    ]
