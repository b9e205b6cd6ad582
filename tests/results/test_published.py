import math

import pytest

from benchmark.results.published import (
    PAPER_NAMES,
    backbone_id,
    load_published,
    protocol_match,
    reference_for,
    views_text,
)


def test_packaged_copy_holds_every_published_row():
    df = load_published()
    assert len(df) == 16
    assert set(PAPER_NAMES.values()) <= set(df["method"])
    tce = df[(df["method"] == "TCE") & (df["backbone"] == "2D ResNet-50")].iloc[0]
    assert (tce["ucf101_top1"], tce["hmdb51_top1"]) == (71.2, 36.6)


def test_every_published_row_names_its_exact_backbone_views_and_splits_with_sources():
    df = load_published()
    for col in ("backbone_id", "backbone_id_source", "test_views_source", "splits_source"):
        assert (df[col] != "").all() and df[col].notna().all(), col
    ids = {(r.method, r.backbone, r.pretrain_dataset): r.backbone_id for r in df.itertuples()}
    assert ids[("3DRotNet", "3D ResNet-18", "Kinetics400")] == "r3d_18"  # R3D-18, not DPC's 2d3d network
    assert ids[("DPC", "3D ResNet-18", "Kinetics400")] == "r2d3d_18"
    assert ids[("DPC", "3D ResNet-34", "Kinetics400")] == "r2d3d_34"
    assert ids[("Video Clip Ordering", "R3D", "UCF101")] == "r3d_10"
    assert {ids[("Shuffle and Learn", "AlexNet", "UCF101")], ids[("OPN", "VGG-M-2048", "UCF101")]} == {
        "alexnet",
        "vgg_m_2048",
    }
    tce = df[df["method"] == "TCE"]
    assert set(tce["test_views"]) == {"frames=19,crops=1"}
    # the paper's split-1 marks and the splits field agree
    assert ((df["ucf101_splits"] == "1") == df["ucf101_split1_only"]).all()


def test_exact_row_has_no_mismatch():
    ref = reference_for("tce", "resnet18", "2D", "kinetics400")
    assert ref.label == "TCE, 2D ResNet-18, Kinetics400" and ref.mismatches == ()
    assert ref.ucf101_top1 == 68.8 and ref.ucf101_split1_only
    assert reference_for("tce", "resnet18", "2D", "ucf101").ucf101_top1 == 68.2


def test_mismatches_are_named():
    ref = reference_for("vcop", "r3d_18", "3D", "synthetic-pool")
    assert ref.paper_method == "Video Clip Ordering"
    assert ref.mismatches == (
        "backbone: ours r3d_18 (3D), paper R3D (r3d_10)",
        "pre-training: ours synthetic-pool, paper UCF101",
    )
    assert (
        reference_for("dpc", "r3d_18", "3D", "kinetics400")
        .mismatches[0]
        .startswith("backbone: ours r3d_18 (3D), paper 3D ResNet-18 (r2d3d_18)")
    )
    assert reference_for("vcop", "resnet10t (inflated)", "3D", "ucf101").mismatches[0].endswith("paper R3D (r3d_10)")
    assert math.isnan(reference_for("arrow_of_time", "resnet18", "2D", "ucf101").hmdb51_top1)
    assert reference_for("random_init", "resnet18", "2D", "none") is None


TCE_VIEWS = "frames=19,crops=1"


@pytest.mark.parametrize(
    "dataset,split,protocol,frozen,labels,views,ok,why",
    [
        ("ucf101", 1, "finetune", False, 1.0, TCE_VIEWS, True, ""),
        ("ucf101", 2, "finetune", False, 1.0, TCE_VIEWS, False, "split"),
        ("ucf101", 1, "linear", True, 1.0, TCE_VIEWS, False, "protocol"),
        ("ucf101", 1, "finetune", False, 0.1, TCE_VIEWS, False, "labels"),
        ("ucf101", 1, "finetune", False, 1.0, "frames=8,crops=1", False, "test views: ours frames=8,crops=1"),
        ("ucf101", 1, "finetune", False, 1.0, None, False, "test views: ours not recorded"),
        ("synthetic", 1, "finetune", False, 1.0, TCE_VIEWS, False, "downstream set"),
        ("hmdb51", 1, "finetune", False, 1.0, TCE_VIEWS, False, "split"),  # the paper states no single HMDB51 split
    ],
)
def test_difference_only_when_protocol_matches(dataset, split, protocol, frozen, labels, views, ok, why):
    ref = reference_for("tce", "resnet18", "2D", "kinetics400")
    matched, reason = protocol_match(ref, dataset, split, protocol, frozen, labels, views)
    assert matched is ok and reason.startswith(why)


@pytest.mark.parametrize(
    "method,backbone,dims,pretrain",
    [
        ("tce", "resnet10t", "2D", "kinetics400"),  # another backbone
        ("tce", "resnet18", "2D", "synthetic-pool"),  # another pre-training set
        ("rotnet3d", "resnet18 (inflated)", "3D", "kinetics400"),  # an inflated 2D network is not R3D-18
        ("shuffle_learn", "alexnet", "2D", "ucf101"),  # the paper states no test views for it
        ("dpc", "r2d3d_18", "3D", "kinetics400"),  # dense test windows: never our views
    ],
)
def test_a_difference_needs_every_field_to_match(method, backbone, dims, pretrain):
    ref = reference_for(method, backbone, dims, pretrain)
    for views in (TCE_VIEWS, "clips=10,clip_len=16,stride=1,crops=1", "clips=4,clip_len=8,stride=1,crops=1"):
        assert not protocol_match(ref, "ucf101", 1, "finetune", False, 1.0, views)[0]


def test_the_exact_3d_row_matches_with_its_views():
    ref = reference_for("vcop", "r3d_10", "3D", "ucf101")
    assert ref.mismatches == ()
    views = views_text(clips=10, clip_len=16, clip_stride=1, crops=1)
    assert protocol_match(ref, "ucf101", 1, "finetune", False, 1.0, views) == (True, "")
    assert not protocol_match(
        ref, "ucf101", 1, "finetune", False, 1.0, views_text(clips=10, clip_len=16, clip_stride=2, crops=1)
    )[0]
    assert backbone_id("resnet10t (inflated)") == "resnet10t_inflated" and backbone_id("r3d_18") == "r3d_18"
