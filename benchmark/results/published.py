"""The paper's Table 1 beside our numbers, and the rules for comparing them.

The published rows (benchmark/assets/table1-published.csv, a copy of the TCE
paper's Table 1) are fine-tuned top-1 (%) on UCF101 and HMDB51. For each of
our rows whose method has published rows, the closest one (same backbone and
pre-training set if it exists) is shown as a reference, with every mismatch
named: backbone, pre-training set, protocol. A difference to the published
number is computed only when the protocol matches: same downstream dataset,
same split (the paper marks split-1-only UCF101 numbers; other numbers do not
state a single split), full fine-tuning (not frozen) on all labels. Our
synthetic results never match, so they never get a difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

ASSET = "table1-published.csv"
SOURCE = "TCE paper (Knights et al., ICPR 2020), Table 1: fine-tuned top-1 (%)"

# registry name -> the paper's row name
PAPER_NAMES = {
    "tce": "TCE",
    "shuffle_learn": "Shuffle and Learn",
    "arrow_of_time": "Arrow of time",
    "dpc": "DPC",
    "vcop": "Video Clip Ordering",
    "opn": "OPN",
    "rotnet3d": "3DRotNet",
}
# names shown for our rows (reference rows have no paper row)
DISPLAY_NAMES = {**PAPER_NAMES, "random_init": "random init", "random_init_bn": "random init + BN stats",
                 "supervised": "supervised"}
# our backbone (name, 2D/3D) -> the paper's backbone name; anything else never matches
BACKBONES = {
    ("resnet18", "2D"): "2D ResNet-18",
    ("resnet50", "2D"): "2D ResNet-50",
    ("r3d_18", "3D"): "3D ResNet-18",
}
PRETRAIN_SETS = {"kinetics400": "Kinetics400", "ucf101": "UCF101"}
DOWNSTREAM = {"ucf101": ("ucf101_top1", "UCF101"), "hmdb51": ("hmdb51_top1", "HMDB51")}


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


@lru_cache(maxsize=1)
def load_published() -> pd.DataFrame:
    with resources.files("benchmark").joinpath("assets", ASSET).open() as f:
        df = pd.read_csv(f)
    df["backbone_2d"] = df["backbone_2d"].astype(str).str.lower() == "true"
    df["ucf101_split1_only"] = df["ucf101_split1_only"].astype(str).str.lower() == "true"
    return df


@dataclass(frozen=True)
class Reference:
    """The published row shown beside one of ours, and how it differs."""

    paper_method: str
    backbone: str
    pretrain: str
    params_millions: float
    ucf101_top1: float  # nan where not published
    hmdb51_top1: float
    ucf101_split1_only: bool
    mismatches: tuple[str, ...]  # e.g. ("backbone: ours resnet10t, paper 2D ResNet-18",)

    @property
    def label(self) -> str:
        return f"{self.paper_method}, {self.backbone}, {self.pretrain}"

    def value(self, dataset: str) -> float:
        col = DOWNSTREAM.get(dataset, (None,))[0]
        return getattr(self, col) if col else math.nan


def reference_for(method: str, backbone: str, dims: str, pretrain: str) -> Reference | None:
    """The closest published row for our (method, backbone, 2D/3D, pre-training set), or None."""
    name = PAPER_NAMES.get(method)
    if name is None:
        return None
    rows = load_published()
    rows = rows[rows["method"] == name]
    if rows.empty:
        return None
    want_bb = BACKBONES.get((backbone, dims))
    want_pt = PRETRAIN_SETS.get(pretrain)
    score = (rows["backbone"] == want_bb).astype(int) * 2 + (rows["pretrain_dataset"] == want_pt).astype(int)
    best = rows.loc[score.idxmax()]  # ties: the paper's order
    mismatches = []
    if best["backbone"] != want_bb:
        mismatches.append(f"backbone: ours {dims} {backbone}, paper {best['backbone']}")
    if best["pretrain_dataset"] != want_pt:
        mismatches.append(f"pre-training: ours {pretrain}, paper {best['pretrain_dataset']}")
    return Reference(name, best["backbone"], best["pretrain_dataset"], float(best["params_millions"]),
                     float(best["ucf101_top1"]), float(best["hmdb51_top1"]), bool(best["ucf101_split1_only"]),
                     tuple(mismatches))


def protocol_match(ref: Reference, dataset: str, split: int, protocol: str, frozen: bool | None,
                   label_fraction: float | None) -> tuple[bool, str]:
    """(matches, why not) for our column against the paper's fine-tuned numbers."""
    if dataset not in DOWNSTREAM:
        return False, f"downstream set: ours {dataset}, paper UCF101/HMDB51"
    if math.isnan(ref.value(dataset)):
        return False, f"paper has no {DOWNSTREAM[dataset][1]} number"
    if protocol != "finetune" or frozen:
        return False, f"protocol: ours {protocol}, paper full fine-tuning"
    if label_fraction is not None and label_fraction < 1:
        return False, f"labels: ours {label_fraction:.0%} of train, paper all"
    if dataset == "ucf101" and ref.ucf101_split1_only:
        return (True, "") if split == 1 else (False, f"split: ours {split}, paper split 1")
    return False, f"split: ours split {split}, paper does not state a single split"
