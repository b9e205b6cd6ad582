import math

import pytest

from benchmark.results.published import PAPER_NAMES, load_published, protocol_match, reference_for


def test_packaged_copy_holds_every_published_row():
    df = load_published()
    assert len(df) == 16
    assert set(PAPER_NAMES.values()) <= set(df["method"])
    tce = df[(df["method"] == "TCE") & (df["backbone"] == "2D ResNet-50")].iloc[0]
    assert (tce["ucf101_top1"], tce["hmdb51_top1"]) == (71.2, 36.6)


def test_exact_row_has_no_mismatch():
    ref = reference_for("tce", "resnet18", "2D", "kinetics400")
    assert ref.label == "TCE, 2D ResNet-18, Kinetics400" and ref.mismatches == ()
    assert ref.ucf101_top1 == 68.8 and ref.ucf101_split1_only
    assert reference_for("tce", "resnet18", "2D", "ucf101").ucf101_top1 == 68.2


def test_mismatches_are_named():
    ref = reference_for("vcop", "r3d_18", "3D", "synthetic-pool")
    assert ref.paper_method == "Video Clip Ordering"
    assert ref.mismatches == ("backbone: ours 3D r3d_18, paper R3D", "pre-training: ours synthetic-pool, paper UCF101")
    assert math.isnan(reference_for("arrow_of_time", "resnet18", "2D", "ucf101").hmdb51_top1)
    assert reference_for("random_init", "resnet18", "2D", "none") is None


@pytest.mark.parametrize("dataset,split,protocol,frozen,labels,ok,why", [
    ("ucf101", 1, "finetune", False, 1.0, True, ""),
    ("ucf101", 2, "finetune", False, 1.0, False, "split"),
    ("ucf101", 1, "linear", True, 1.0, False, "protocol"),
    ("ucf101", 1, "finetune", False, 0.1, False, "labels"),
    ("synthetic", 1, "finetune", False, 1.0, False, "downstream set"),
    ("hmdb51", 1, "finetune", False, 1.0, False, "split"),  # the paper states no single HMDB51 split
])
def test_difference_only_when_protocol_matches(dataset, split, protocol, frozen, labels, ok, why):
    ref = reference_for("tce", "resnet18", "2D", "kinetics400")
    matched, reason = protocol_match(ref, dataset, split, protocol, frozen, labels)
    assert matched is ok and reason.startswith(why)
