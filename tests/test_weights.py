"""vssl import / export: released key names land exactly where they should (bit for bit), plain exports load in
timm and torchvision, and bad files are one line with nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch

from benchmark.checkpoint import load
from benchmark.cli import main


def checkpoint_backbone(run: Path) -> dict[str, torch.Tensor]:
    return load(run / "checkpoints" / "last.pt")["backbone"]


def seeded(seed: int, state: dict) -> dict:
    """The same keys and shapes with distinct random values, so a misplaced tensor cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone() for k, v in state.items()}


def test_a_timm_checkpoint_with_its_classifier_imports_without_it(tmp_path):
    """An ImageNet timm checkpoint still carries fc.*: dropped and listed, the backbone imported."""
    torch.save(timm.create_model("resnet18", num_classes=1000).state_dict(), tmp_path / "w.pt")
    assert main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet18", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    prov = json.loads((tmp_path / "run" / "metrics.json").read_text())["pretrain"]["released_weights"]
    assert sorted(prov["dropped_head_keys"]) == ["fc.bias", "fc.weight"]


def test_a_tce_release_of_resnet50_is_recognised_by_its_bottleneck_keys(tmp_path):
    body = timm.create_model("resnet50", num_classes=0).state_dict()
    torch.save({"state_dict": {f"module.backbone.{k}": v for k, v in body.items()}}, tmp_path / "tce50.pth")
    assert main(["import", str(tmp_path / "tce50.pth"), "--format", "tce", "--out", str(tmp_path / "run")]) == 0
    assert "resnet50" in (tmp_path / "run" / "config.yaml").read_text()


def test_tce_release_keys_land_on_the_timm_resnet18(tmp_path, capsys):
    ref = seeded(1, timm.create_model("resnet18", num_classes=0).state_dict())
    release = {"state_dict": {**{f"module.backbone.{k}": v for k, v in ref.items()},
                              "module.fc_contrastive.weight": torch.randn(128, 512),
                              "module.fc_rotation_1.weight": torch.randn(200, 512)},
               "epoch": 50, "optimizer": {}}  # fmt: skip
    torch.save(release, tmp_path / "tce.pth")
    assert main(["import", str(tmp_path / "tce.pth"), "--format", "tce", "--out", str(tmp_path / "run"),
                 "--pretrained-on", "kinetics400"]) == 0  # fmt: skip
    got = checkpoint_backbone(tmp_path / "run")
    assert sorted(got) == sorted(f"net.{k}" for k in ref)
    assert all(torch.equal(got[f"net.{k}"], v) for k, v in ref.items())
    prov = json.loads((tmp_path / "run" / "metrics.json").read_text())["pretrain"]["released_weights"]
    assert prov["format"] == "tce" and len(prov["sha256"]) == 64 and "fc_contrastive.weight" in " ".join(
        prov["dropped_head_keys"])  # fmt: skip
    assert "Temporally Coherent Embeddings" in prov["paper"]


def test_vcop_r3d_10_release_keys_land_on_r3d_10(tmp_path):
    from benchmark.backbones import build_backbone
    from benchmark.config import BackboneConfig

    ours = seeded(2, build_backbone(BackboneConfig(name="r3d_10")).state_dict())
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    release = {"base_network.conv1.temporal_spatial_conv.weight": ours["net.stem.0.weight"],
               **{f"base_network.bn1.{p}": ours[f"net.stem.1.{p}"] for p in bn},
               "fc7.weight": torch.randn(512, 1024), "fc8.weight": torch.randn(6, 1536)}  # fmt: skip
    for k in range(1, 5):
        own = f"base_network.conv{k + 1}.block1"
        release[f"{own}.conv1.temporal_spatial_conv.weight"] = ours[f"net.layer{k}.0.conv1.0.weight"]
        release[f"{own}.conv2.temporal_spatial_conv.weight"] = ours[f"net.layer{k}.0.conv2.0.weight"]
        release.update({f"{own}.bn1.{p}": ours[f"net.layer{k}.0.conv1.1.{p}"] for p in bn})
        release.update({f"{own}.bn2.{p}": ours[f"net.layer{k}.0.conv2.1.{p}"] for p in bn})
        if k > 1:
            release[f"{own}.downsampleconv.temporal_spatial_conv.weight"] = ours[f"net.layer{k}.0.downsample.0.weight"]
            release.update({f"{own}.downsamplebn.{p}": ours[f"net.layer{k}.0.downsample.1.{p}"] for p in bn})
    torch.save(release, tmp_path / "vcop.pt")
    assert main(["import", str(tmp_path / "vcop.pt"), "--format", "vcop", "--out", str(tmp_path / "run")]) == 0
    got = checkpoint_backbone(tmp_path / "run")
    assert sorted(got) == sorted(ours) and all(torch.equal(got[k], v) for k, v in ours.items())


def test_dpc_release_without_bn_statistics_lands_on_r2d3d_18(tmp_path, capsys):
    """DPC's Kinetics releases: DataParallel keys, DPC's own block names, no BN running statistics, GRU heads."""
    from benchmark.backbones import build_backbone
    from benchmark.config import BackboneConfig

    fresh = build_backbone(BackboneConfig(name="r2d3d_18")).state_dict()
    ours = seeded(3, fresh)
    theirs = {"net.stem.0.": "conv1.", "net.stem.1.": "bn1.", ".conv1.0.": ".conv1.", ".conv1.1.": ".bn1.",
              ".conv2.0.": ".conv2.", ".conv2.1.": ".bn2.", "net.": ""}  # fmt: skip
    release = {}
    for key, value in ours.items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # trained with track_running_stats=False
        for a, b in theirs.items():
            key = key.replace(a, b)
        release[f"module.backbone.{key}"] = value
    release["module.agg.ConvGRUCell_00.reset_gate.weight"] = torch.randn(256, 512, 1, 1)
    release["module.network_pred.0.weight"] = torch.randn(256, 256, 1, 1)
    torch.save({"epoch": 3, "net": "resnet18", "state_dict": release}, tmp_path / "dpc.pth.tar")
    assert main(["import", str(tmp_path / "dpc.pth.tar"), "--format", "dpc", "--out", str(tmp_path / "run")]) == 0
    assert "no BatchNorm running statistics" in capsys.readouterr().out
    got = checkpoint_backbone(tmp_path / "run")
    assert sorted(got) == sorted(ours)
    for k, v in ours.items():
        stats = k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        assert torch.equal(got[k], fresh[k] if stats else v), k
    prov = json.loads((tmp_path / "run" / "metrics.json").read_text())["pretrain"]["released_weights"]
    assert "absent from the release" in prov["bn_statistics"] and "agg.ConvGRUCell_00.reset_gate.weight" in " ".join(
        prov["dropped_head_keys"])  # fmt: skip
    cfg = (tmp_path / "run" / "config.yaml").read_text()
    assert "r2d3d_18" in cfg and "of: dpc" in cfg


class RunsCode:
    """A pickle that would call os.system when loaded (weights-only loading must refuse it)."""

    def __reduce__(self):
        import os

        return (os.system, ("true",))


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    "case, args, message",
    [
        ("text", ["--format", "tce"], "is not a readable checkpoint"),
        ("truncated", ["--format", "tce"], "is not a readable checkpoint"),
        ("timm18", ["--format", "tce"], "not a TCE release checkpoint"),
        ("tce18", ["--format", "tce", "--backbone", "r3d_18"], "cannot map it onto 'r3d_18'"),
        ("timm18", ["--format", "timm", "--backbone", "resnet50"], "does not match backbone 'resnet50'"),
        (
            "narrow18",
            ["--format", "timm", "--backbone", "resnet18"],
            "shapes differ for net.conv1.weight (backbone 'resnet18')",
        ),
        ("timm18", ["--format", "nope"], "invalid choice"),
        ("evil", ["--format", "tce"], "its pickle would import posix.system"),  # refused, and says why
        ("timm18", ["--format", "torchvision", "--backbone", "resnet18"], "is not a torchvision video model"),
        (
            "timm18",
            ["--format", "timm", "--backbone", "resnet18", "--pretrained-on", "UCF-101"],
            "write it 'ucf101'",
        ),
        (
            "timm18",
            ["--format", "timm", "--backbone", "resnet18", "--pretrained-on", "Kinetics400"],
            "write it 'kinetics400'",
        ),
        ("timm18", ["--format", "timm", "--backbone", "resnet18", "--pretrained-on", "k400/../x"], "a dataset name"),
    ],
)
def test_bad_files_are_one_line_and_write_no_run_directory(case, args, message, tmp_path, capsys):
    files = tmp_path / "files"
    files.mkdir()
    timm18 = timm.create_model("resnet18", num_classes=0).state_dict()
    torch.save(timm18, files / "timm18")
    narrow = {**timm18, "conv1.weight": timm18["conv1.weight"][:, :1]}  # the right keys, one of another shape
    torch.save(narrow, files / "narrow18")
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in timm18.items()}}, files / "tce18")
    (files / "text").write_text("not a checkpoint\n")
    (files / "truncated").write_bytes((files / "timm18").read_bytes()[:4096])
    torch.save({"state_dict": RunsCode()}, files / "evil")
    before = tree(tmp_path)
    try:
        code = main(["import", str(files / case), *args, "--out", str(tmp_path / "run")])
    except SystemExit as exit_:  # argparse's own errors (a format that does not exist)
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "Traceback" not in err, err
    assert tree(tmp_path) == before


def test_a_pretraining_set_without_published_rows_is_recorded_with_a_note(tmp_path, capsys):
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), tmp_path / "w.pt")
    assert main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet18", "--out",
                 str(tmp_path / "r"), "--pretrained-on", "howto100m"]) == 0  # fmt: skip
    assert "no published Table-1 row was pre-trained on 'howto100m'" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet18", "--out",
                 str(tmp_path / "k600"), "--pretrained-on", "kinetics600"]) == 0  # another set, not a typo  # fmt: skip
    assert "dataset: howto100m" in (tmp_path / "r" / "config.yaml").read_text()


def test_an_imported_run_is_evaluated_and_labelled_released_weights(synth_data_home, tmp_path):
    from benchmark.results.collect import collect
    from benchmark.results.table import build_table, display_frame

    torch.save(timm.create_model("resnet10t", num_classes=0).state_dict(), tmp_path / "w.pt")
    run = tmp_path / "runs" / "tce-released"
    assert main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet10t", "--out",
                 str(run)]) == 0  # fmt: skip
    assert main(["evaluate", str(run), "--protocol", "knn", "--no-progress", "eval.frames=2", "eval.knn_k=1",
                 "eval.knn_ks=[1]", "data.resolution=32"]) == 0  # fmt: skip
    # the unlabelled pool has no test split: train = test videos, so no protocol may score on it
    assert main(["evaluate", str(run), "--protocol", "knn", "--dataset", "synthetic-pool", "--no-progress"]) == 2
    shown = display_frame(build_table(collect(tmp_path / "runs")))  # complete: the README's three commands work
    assert "(released weights)" in shown["method"].iloc[0]
    assert main(["table", str(run)]) == 0
    assert main(["trajectories", str(run), "--space", "backbone", "--no-progress"]) == 2  # no method, no videos
    assert main(["pretrain", "method.name=released"]) == 2  # released weights are imported, never pre-trained


def test_a_2d_export_loads_in_timm_and_strictly(tmp_path):
    ref = seeded(3, timm.create_model("resnet18", num_classes=0).state_dict())
    torch.save(ref, tmp_path / "w.pt")
    main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet18", "--out", str(tmp_path / "r")])
    # a pre-trained run keeps its previous checkpoint beside last.pt: the export must read last.pt
    checkpoints = tmp_path / "r" / "checkpoints"
    stale = torch.load(checkpoints / "last.pt", weights_only=True)
    stale["backbone"] = {k: torch.zeros_like(v) for k, v in stale["backbone"].items()}
    torch.save(stale, checkpoints / "last.prev.pt")
    assert main(["export", str(tmp_path / "r"), "--format", "timm", "--out", str(tmp_path / "e.safetensors")]) == 0
    model = timm.create_model("resnet18", pretrained=True, num_classes=0,
                              pretrained_cfg_overlay=dict(file=str(tmp_path / "e.safetensors")))  # fmt: skip
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.items())
    fresh = timm.create_model("resnet18", num_classes=0)
    from safetensors.torch import load_file

    fresh.load_state_dict(load_file(str(tmp_path / "e.safetensors")), strict=True)
    sidecar = json.loads((tmp_path / "e.json").read_text())
    assert sidecar["backbone"] == "resnet18" and sidecar["released_weights"]["format"] == "timm"
    assert sidecar["released_weights"]["sha256"] == hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    assert sidecar["pretrain_steps"] == 0


def test_an_export_is_readable_by_others_under_the_umask(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), tmp_path / "w.pt")
    main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet18", "--out", str(tmp_path / "r")])
    assert main(["export", str(tmp_path / "r"), "--format", "timm", "--out", str(tmp_path / "e.safetensors")]) == 0
    assert stat.S_IMODE((tmp_path / "e.safetensors").stat().st_mode) == 0o666 & ~mask  # safetensors alone: 0600


def test_an_unfinished_pre_training_is_not_exported(tmp_path, capsys):
    """last.pt of an interrupted run is not the model its config describes: one line, nothing written."""
    torch.save(timm.create_model("resnet10t", num_classes=0).state_dict(), tmp_path / "w.pt")
    main(
        ["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet10t", "--out", str(tmp_path / "r")]
    )
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    metrics.pop("pretrain")  # as an interrupted pre-training leaves it
    (tmp_path / "r" / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(["export", str(tmp_path / "r"), "--format", "timm", "--out", str(tmp_path / "e.safetensors")]) == 2
    assert "has not finished pre-training" in capsys.readouterr().err
    assert not (tmp_path / "e.safetensors").exists()


def test_a_run_config_without_a_backbone_is_one_line(tmp_path, capsys):
    """A hand-edited config.yaml that lost its backbone section once ended in KeyError: 'backbone'."""
    run = _imported_run(tmp_path)
    (run / "config.yaml").write_text("optim: {steps: 0}\n")
    capsys.readouterr()
    assert main(["export", str(run), "--format", "timm", "--out", str(tmp_path / "e.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("config.yaml names no backbone (backbone.name): it is not a whole run config"), err
    assert "\n" not in err and not (tmp_path / "e.safetensors").exists()


def test_nan_weights_are_refused_at_evaluation_not_scored_at_chance(tmp_path, synth_data_home, capsys):
    state = timm.create_model("resnet10t", num_classes=0).state_dict()
    state["conv1.0.weight"].fill_(float("nan"))
    torch.save(state, tmp_path / "w.pt")
    run = tmp_path / "r"
    assert main(["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet10t", "--out",
                 str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "knn", "--no-progress", "eval.frames=2", "eval.knn_k=1",
                 "eval.knn_ks=[1]", "data.resolution=32"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.endswith("gives NaN or inf features for 6 of 6 videos: its weights cannot be evaluated"), err
    assert "knn/synthetic/split1" not in json.loads((run / "metrics.json").read_text())


def _imported_run(tmp_path: Path) -> Path:
    torch.save(timm.create_model("resnet10t", num_classes=0).state_dict(), tmp_path / "w.pt")
    main(
        ["import", str(tmp_path / "w.pt"), "--format", "timm", "--backbone", "resnet10t", "--out", str(tmp_path / "r")]
    )
    return tmp_path / "r"


def test_an_export_never_replaces_files_it_did_not_write(tmp_path, capsys):
    """FILE.json beside --out FILE.safetensors: `--out RUN/metrics.safetensors` would replace the run's metrics."""
    from safetensors.torch import save_file

    run = _imported_run(tmp_path)
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text('{"name": "s"}\n')
    (tmp_path / "other.safetensors").write_bytes(b"not safetensors")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "theirs.safetensors"))  # someone else's weights, no sidecar
    (tmp_path / "notes.json").write_text("{}\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for out, replaced in [(run / "metrics.safetensors", run / "metrics.json"),
                          (tmp_path / "sweep" / "sweep.safetensors", tmp_path / "sweep" / "sweep.json"),
                          (tmp_path / "other.safetensors", tmp_path / "other.safetensors"),
                          (tmp_path / "theirs.safetensors", tmp_path / "theirs.safetensors"),
                          (tmp_path / "notes.safetensors", tmp_path / "notes.json")]:  # fmt: skip
        capsys.readouterr()
        assert main(["export", str(run), "--format", "timm", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"would replace {replaced}, which is not a `vssl export` output" in err and "\n" not in err, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_previous_export_is_replaced_with_a_note(tmp_path, capsys):
    run = _imported_run(tmp_path)
    out = tmp_path / "e.safetensors"
    assert main(["export", str(run), "--format", "timm", "--out", str(out)]) == 0
    assert "replacing" not in capsys.readouterr().err
    (tmp_path / "e.json").unlink()  # the weights alone are recognised by their own metadata
    assert main(["export", str(run), "--format", "vssl", "--out", str(out)]) == 0
    assert f"note: replacing the previous export {out}\n" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "timm", "--out", str(out)]) == 0
    assert f"note: replacing the previous export {out} and {tmp_path / 'e.json'}\n" in capsys.readouterr().err
    assert json.loads((tmp_path / "e.json").read_text())["format"] == "timm"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".e.json.")]  # no temp file left behind


@pytest.mark.slow
def test_a_3d_export_loads_strictly_into_torchvision_and_inflated_ones_are_factory_only(tmp_path, capsys):
    import torchvision
    from safetensors.torch import load_file

    ref = seeded(4, {k: v for k, v in torchvision.models.video.r3d_18(weights=None).state_dict().items()
                     if not k.startswith("fc.")})  # fmt: skip
    torch.save(ref, tmp_path / "w.pt")
    main(["import", str(tmp_path / "w.pt"), "--format", "torchvision", "--backbone", "r3d_18", "--out",
          str(tmp_path / "r")])  # fmt: skip
    assert (
        main(["export", str(tmp_path / "r"), "--format", "torchvision", "--out", str(tmp_path / "e.safetensors")]) == 0
    )
    model = torchvision.models.video.r3d_18(weights=None)
    model.fc = torch.nn.Identity()
    model.load_state_dict(load_file(str(tmp_path / "e.safetensors")), strict=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.items())
    assert main(["export", str(tmp_path / "r"), "--format", "timm", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "use --format torchvision" in capsys.readouterr().err


def test_released_is_never_pretrained():
    from benchmark.config import load_config
    from benchmark.errors import UserError
    from benchmark.train import build_method

    cfg = load_config(None, ["method.name=released", "backbone.name=resnet10t", "data.resolution=32"])
    with pytest.raises(UserError, match="create it with `vssl import FILE"):
        build_method(cfg, num_videos=16, num_classes=0)
