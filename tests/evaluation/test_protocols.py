"""Protocols end to end on the tiny synthetic set: complete metrics entries, held-out selection inside train."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from benchmark.data.index import build_index
from benchmark.errors import UserError
from benchmark.evaluation import evaluate
from benchmark.evaluation.finetune import VideoClassifier

from .conftest import make_run, tiny_config

TABLE_FIELDS = {
    "protocol",
    "dataset",
    "split",
    "frozen",
    "selection",
    "frames_at_test",
    "clips_at_test",
    "crops_at_test",
    "checkpoint",
    "checkpoint_step",
    "train_videos",
    "test_videos",
    "num_classes",
    "top1",
    "test_video_ids",
    "per_video_correct",
    "skipped_videos",
    "wall_s",
    "read_splits",
    "test_reads",
}


def _check_common(entry: dict, test_ids: list[str]) -> None:
    assert TABLE_FIELDS <= set(entry), TABLE_FIELDS - set(entry)
    assert sorted(entry["test_video_ids"]) == sorted(test_ids)
    assert entry["top1"] == round(100.0 * sum(entry["per_video_correct"]) / len(test_ids), 3)
    assert entry["checkpoint"].endswith("last.pt") and entry["checkpoint_step"] == 0 and entry["skipped_videos"] == 0


def test_tsn_consensus_is_the_mean_of_per_frame_logits():
    from benchmark.backbones import build_backbone
    from benchmark.config import BackboneConfig

    torch.manual_seed(0)
    model = VideoClassifier(build_backbone(BackboneConfig()), num_classes=5).eval()
    x = torch.randn(2, 3, 3, 32, 32)  # 2 videos x 3 segments
    with torch.no_grad():
        per_frame = torch.stack(
            [torch.stack([model.head(model.backbone(x[b, s][None]))[0] for s in range(3)]) for b in range(2)]
        )
        assert torch.allclose(model(x), per_frame.mean(1), atol=1e-5)
        assert torch.allclose(model.view_logits(x), per_frame, atol=1e-5)


def test_linear_and_knn_entries(tiny_run, synth_data_home, capsys):
    cfg = tiny_config(tiny_run)
    test_ids = [r.video_id for r in build_index("synthetic", subset="test").records]
    linear = evaluate(tiny_run, cfg, "linear", progress_bar=False)
    knn = evaluate(tiny_run, cfg, "knn", progress_bar=False)
    for entry in (linear, knn):
        _check_common(entry, test_ids)
        assert entry["frozen"] is True and entry["frames_at_test"] == 2 and entry["crops_at_test"] == 1
    assert {"top5", "train_top1"} <= set(linear)
    assert [knn[f"r@{k}"] for k in (1, 2, 5)] == sorted(knn[f"r@{k}"] for k in (1, 2, 5)) and knn["r@5"] == 100.0
    assert knn["k"] == 3 and knn["ks"] == [1, 2, 5]
    metrics = tiny_run.metrics()
    assert {"linear/synthetic/split1", "knn/synthetic/split1"} <= set(metrics)
    assert len(list((tiny_run.path / "cache").glob("features-*.pt"))) == 2  # one pass per split, shared
    capsys.readouterr()
    from benchmark.evaluation.knn import run_knn

    capped = run_knn(tiny_run, tiny_config(tiny_run, "eval.knn_k=1000"), progress_bar=False)  # records nothing
    trained_on = capped["train_videos"]
    assert capped["k"] == trained_on and (
        f"note: eval.knn_k = 1000 is more than the {trained_on} train videos: every one of them votes"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_finetune_writes_a_complete_entry_and_selects_on_train(tiny_run, synth_data_home):
    cfg = tiny_config(tiny_run, "eval.heldout_fraction=0.3")
    train = build_index("synthetic", subset="train").records
    test_ids = [r.video_id for r in build_index("synthetic", subset="test").records]
    entry = evaluate(tiny_run, cfg, "finetune", progress_bar=False)
    _check_common(entry, test_ids)
    assert entry["frozen"] is False and entry["epochs"] == 2 and 1 <= entry["selected_epoch"] <= 2
    assert len(entry["heldout_curve"]) == 2 and entry["heldout_top1"] == max(entry["heldout_curve"])
    assert entry["selected_epoch"] == entry["heldout_curve"].index(entry["heldout_top1"]) + 1
    held = set(entry["heldout_video_ids"])
    assert held and held <= {r.video_id for r in train} and held.isdisjoint(test_ids)
    assert entry["heldout_videos"] + entry["train_videos"] == len(train) and entry["segments"] == 3
    assert len(entry["epoch_wall_s"]) == 2 and all(loss > 0 for loss in entry["train_loss"])
    logged = [s for s in tiny_run.scalars() if s.get("stage") == "finetune/synthetic/split1"]
    assert [s["epoch"] for s in logged] == [1, 2] and all("heldout_top1" in s for s in logged)


@pytest.mark.slow
def test_finetune_3d_with_clips_and_crops(tiny_synth, synth_data_home, tmp_path):
    run = make_run(tmp_path / "r3d", "backbone.inflate=true", "eval.finetune_epochs=1", "eval.heldout_fraction=0")
    cfg = tiny_config(run, "eval.crops=3")
    entry = evaluate(run, cfg, "finetune", progress_bar=False)
    assert entry["clips_at_test"] == 2 and entry["clip_len"] == 4 and entry["crops_at_test"] == 3
    assert entry["frames_at_test"] is None and entry["backbone_kind"] == "3d" and entry["train_clip_len"] == 4
    assert entry["selection"].startswith("none: last epoch") and entry["heldout_video_ids"] == []
    assert len(entry["per_video_correct"]) == 6


def test_bad_test_video_is_skipped_and_recorded(tiny_synth, tmp_path, monkeypatch):
    shutil.copytree(tiny_synth, tmp_path / "synthetic", ignore=shutil.ignore_patterns("pool"))
    monkeypatch.setenv("VSSL_DATA", str(tmp_path))
    bad = build_index("synthetic", subset="test").records[2]
    Path(bad.path).write_bytes(b"")
    run = make_run(tmp_path / "run")
    with pytest.raises(UserError, match="1 of 6 test videos .* failed to decode"):
        evaluate(run, tiny_config(run), "knn", progress_bar=False)
    entry = evaluate(run, tiny_config(run, "data.max_bad_fraction=0.5"), "knn", progress_bar=False)
    assert entry["skipped_videos"] == 1 and entry["skipped"][0]["video_id"] == bad.video_id
    assert entry["skipped"][0]["subset"] == "test" and "empty" in entry["skipped"][0]["reason"]
    assert bad.video_id not in entry["test_video_ids"] and len(entry["per_video_correct"]) == entry["test_videos"] == 5


def test_a_fine_tune_on_many_undecodable_train_videos_stops_as_pre_training_does(tiny_synth, tmp_path, monkeypatch):
    """Fine-tuning once replaced samples of broken train videos without limit (linear and kNN stop): past
    data.max_bad_fraction of its samples it stops, naming the set to check."""
    shutil.copytree(tiny_synth, tmp_path / "synthetic", ignore=shutil.ignore_patterns("pool"))
    monkeypatch.setenv("VSSL_DATA", str(tmp_path))
    train = build_index("synthetic", subset="train").records
    for bad in train[: len(train) // 2]:
        Path(bad.path).write_bytes(b"")
    run = make_run(tmp_path / "run")
    cfg = tiny_config(run, "eval.finetune_epochs=3", "eval.heldout_fraction=0", "data.max_bad_fraction=0.05")
    with pytest.raises(UserError, match=r"\d+ undecodable videos were replaced in \d+ fine-tuning samples "
                                        r"\(> data.max_bad_fraction=0.05\); run `vssl check-data` on "
                                        r"'synthetic'"):  # fmt: skip
        evaluate(run, cfg, "finetune", progress_bar=False)


def test_intermediate_checkpoint_key_and_bad_names(tiny_run, synth_data_home):
    cfg = tiny_config(tiny_run)
    shutil.copy(tiny_run.checkpoint_path(), tiny_run.checkpoint_path("step_0.pt"))
    entry = evaluate(tiny_run, cfg, "knn", progress_bar=False, checkpoint="step_0.pt")
    assert "knn/synthetic/split1@step_0" in tiny_run.metrics() and entry["checkpoint"].endswith("step_0.pt")
    with pytest.raises(UserError, match="unknown protocol 'linaer'.*linear"):
        evaluate(tiny_run, cfg, "linaer")
    with pytest.raises(UserError, match="split 2"):
        evaluate(tiny_run, tiny_config(tiny_run, "eval.split=2"), "knn")  # the tiny set has split 1 only


def test_every_entry_records_the_splits_it_read(tmp_path):
    """Reports count test-split reads from these fields (final and @step_N entries alike)."""
    from benchmark.config import load_config
    from benchmark.registry import PROTOCOLS, register_protocol
    from benchmark.rundir import RunDir

    PROTOCOLS.names()  # the built-in protocols are loaded before the throw-away one is added
    register_protocol("probe")(lambda run, cfg, **kw: {"top1": 50.0})
    run = RunDir(tmp_path / "run").create()
    cfg = load_config({}, ["eval.dataset=synthetic"])
    entry = evaluate(run, cfg, "probe", progress_bar=False)
    assert entry["read_splits"] == ["train", "test"] and entry["test_reads"] == 1
    evaluate(run, cfg, "probe", progress_bar=False, checkpoint="step_5.pt")
    metrics = run.metrics()
    PROTOCOLS.unregister("probe")
    assert [metrics[k]["test_reads"] for k in ("probe/synthetic/split1", "probe/synthetic/split1@step_5")] == [1, 1]


def test_config_overrides_names_only_recipe_fields_the_run_did_not_use(tiny_run, tmp_path, monkeypatch):
    """What `vssl evaluate RUN key=value` changed from config.yaml, as an entry records it (tables keep such an
    entry apart from its row's others): bookkeeping fields (batch size, workers, seed) and fields the run's
    config.yaml predates are not differences."""
    import yaml

    from benchmark.evaluation import config_overrides

    assert config_overrides(tiny_run, tiny_config(tiny_run)) == ""
    assert config_overrides(tiny_run, tiny_config(tiny_run, "eval.batch_size=3", "data.num_workers=0")) == ""
    changed = tiny_config(tiny_run, "eval.linear_epochs=7", "eval.knn_ks=[1, 3]", "eval.batch_size=3")
    assert config_overrides(tiny_run, changed) == "eval.knn_ks=[1, 3], eval.linear_epochs=7"
    # an entry records only what could have made it: the linear probe's epochs did not make a kNN entry
    assert config_overrides(tiny_run, changed, "knn") == "eval.knn_ks=[1, 3]"
    assert config_overrides(tiny_run, changed, "linear") == "eval.linear_epochs=7"
    assert config_overrides(tiny_run, changed, "finetune") == ""
    from benchmark.evaluation import PROTOCOLS

    names = PROTOCOLS.names
    monkeypatch.setattr(PROTOCOLS, "names", lambda: [*names(), "knn_cosine"])  # a plugin reading eval.knn_*
    assert config_overrides(tiny_run, changed, "knn_cosine") == "eval.knn_ks=[1, 3]"
    older = tmp_path / "older"
    shutil.copytree(tiny_run.path, older)
    tree = yaml.safe_load((older / "config.yaml").read_text())
    del tree["eval"]["linear_epochs"]  # written before the field existed
    (older / "config.yaml").write_text(yaml.safe_dump(tree))
    from benchmark.rundir import RunDir

    assert config_overrides(RunDir(older), changed) == "eval.knn_ks=[1, 3]"


def test_a_fine_tune_resume_compares_only_what_made_its_epochs():
    """A sweep cell's config holds TCE's `negatives: auto`, config.yaml the number it resolved to: the same
    fine-tune. A state saved before settings were recorded, or a field one side lacks, resumes too."""
    from benchmark.evaluation.finetune import settings_changes

    now = {"method.negatives": 1, "eval.finetune_lr": 0.01, "checkpoint": "last.pt", "eval.new_field": 3}
    assert settings_changes({"method.negatives": "auto", "eval.finetune_lr": 0.01, "checkpoint": "last.pt"}, now) == []
    assert settings_changes(None, now) == []
    assert settings_changes({"eval.finetune_lr": 0.3, "checkpoint": "step_40.pt"}, now) == [
        "checkpoint 'step_40.pt' -> 'last.pt'",
        "eval.finetune_lr 0.3 -> 0.01",
    ]


def test_a_label_fraction_too_small_to_hold_out_says_so(tiny_run, synth_data_home):
    """It once blamed the classes' groups ('every class has a single group?') for a 1% label fraction."""
    cfg = tiny_config(tiny_run, "eval.label_fraction=0.01", "eval.heldout_fraction=0.5")
    with pytest.raises(UserError, match=r"holds out no train video of 'synthetic' \(eval.label_fraction=0.01 keeps "
                                        r"\d+ of \d+ train videos\); .*, or raise eval.label_fraction"):  # fmt: skip
        evaluate(tiny_run, cfg, "finetune", progress_bar=False)
