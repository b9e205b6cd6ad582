"""The paper's Table 1 beside our numbers, and the rules for comparing them.

The published rows (benchmark/assets/table1-published.csv, a copy of the TCE
paper's Table 1) are fine-tuned top-1 (%) on UCF101 and HMDB51. Beside the
paper's columns the copy records, each with its source column, what the
comparison rule needs: ``backbone_id`` (the exact architecture: the R3D-18
of 3DRotNet is not DPC's 2d3d-18), ``test_views`` (frames or clips x crops
per test video) and ``ucf101_splits`` / ``hmdb51_splits`` (the split(s) the
number is on; empty: not stated).

For each of our rows whose method has published rows, the closest one (same
backbone and pre-training set if it exists) is shown as a reference, with
every mismatch named. A difference to the published number is computed only
when everything matches: backbone id, pre-training set, downstream set and
split, protocol (full fine-tuning on all labels) and test views. A field the
paper does not state counts as a mismatch, so rows on backbones the harness
cannot build (AlexNet, C3D, CaffeNet, VGG-M) and numbers of unstated splits
never get a difference. Our synthetic results never match either.
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
    "cmc": "CMC",
    "motion_stats": "Motion & Appearance",
    "videogan": "VideoGAN",
    "cubic_puzzles": "3DCubicPuzzles",
    "skip_clip": "Skip-Clip",
}
# names shown for our rows (reference rows have no paper row)
DISPLAY_NAMES = {
    **PAPER_NAMES,
    "random_init": "random init",
    "random_init_bn": "random init + BN stats",
    "supervised": "supervised",
}
PRETRAIN_SETS = {"kinetics400": "Kinetics400", "ucf101": "UCF101"}
DOWNSTREAM = {"ucf101": ("ucf101_top1", "UCF101"), "hmdb51": ("hmdb51_top1", "HMDB51")}
INFLATED = " (inflated)"  # how table rows mark a 2D backbone inflated to 3D


RELEASED = "released:"  # row method of imported weights: 'released:tce' (vssl import)


def display_name(method: str) -> str:
    if method.startswith(RELEASED):
        return f"{display_name(method[len(RELEASED) :])} (released weights)"
    if ":" in method:  # a baseline variant, e.g. tce:mining_schedule=none (results.table.parse_baseline)
        name, _, fields = method.partition(":")
        return f"{display_name(name)} ({fields.replace(':', ', ')})"
    return DISPLAY_NAMES.get(method, method)


def backbone_id(backbone: str) -> str:
    """Our row's backbone -> the id compared with the paper's ``backbone_id``.

    timm's and torchvision's ResNets have the paper's architectures under the same names (resnet18,
    resnet50, r3d_18); an inflated 2D network is its own architecture and never equals a paper's 3D one.
    """
    if backbone.endswith(INFLATED):
        return backbone[: -len(INFLATED)] + "_inflated"
    return backbone


def views_text(frames=None, clips=None, clip_len=None, clip_stride=None, crops=None) -> str | None:
    """Test views per video in the form the published table uses: 'frames=19,crops=1' (2D) or
    'clips=10,clip_len=16,stride=1,crops=1' (3D); None when a needed field is unknown."""

    def num(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)

    frames, clips, clip_len, clip_stride, crops = map(num, (frames, clips, clip_len, clip_stride, crops))
    if crops is None:
        return None
    if frames:
        return f"frames={frames},crops={crops}"
    if clips and clip_len and clip_stride:
        return f"clips={clips},clip_len={clip_len},stride={clip_stride},crops={crops}"
    return None


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()


@lru_cache(maxsize=1)
def load_published() -> pd.DataFrame:
    with resources.files("benchmark").joinpath("assets", ASSET).open() as f:
        df = pd.read_csv(f, dtype={"ucf101_splits": str, "hmdb51_splits": str})
    df["backbone_2d"] = df["backbone_2d"].astype(str).str.lower() == "true"
    df["ucf101_split1_only"] = df["ucf101_split1_only"].astype(str).str.lower() == "true"
    for col in ("backbone_id", "test_views", "ucf101_splits", "hmdb51_splits"):
        df[col] = df[col].map(_text)
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
    mismatches: tuple[str, ...]  # e.g. ("backbone: ours resnet10t (2D), paper 2D ResNet-18 (resnet18)",)
    backbone_id: str = ""
    test_views: str = ""  # "" where the paper does not state them
    ucf101_splits: str = ""  # "1", "1;2;3" (mean of three), "" not stated
    hmdb51_splits: str = ""

    @property
    def label(self) -> str:
        return f"{self.paper_method}, {self.backbone}, {self.pretrain}"

    def value(self, dataset: str) -> float:
        col = DOWNSTREAM.get(dataset, (None,))[0]
        return getattr(self, col) if col else math.nan

    def splits(self, dataset: str) -> tuple[int, ...]:
        """The split(s) the paper's number for ``dataset`` is on; () when not stated."""
        text = getattr(self, f"{dataset}_splits", "") if dataset in DOWNSTREAM else ""
        return tuple(int(x) for x in text.replace(",", ";").split(";") if x.strip())


def reference_for(method: str, backbone: str, dims: str, pretrain: str) -> Reference | None:
    """The closest published row for our (method, backbone, 2D/3D, pre-training set), or None."""
    name = PAPER_NAMES.get(method.removeprefix(RELEASED))
    if name is None:
        return None
    rows = load_published()
    rows = rows[rows["method"] == name]
    if rows.empty:
        return None
    want_id = backbone_id(backbone)
    want_pt = PRETRAIN_SETS.get(pretrain)
    score = (rows["backbone_id"] == want_id).astype(int) * 2 + (rows["pretrain_dataset"] == want_pt).astype(int)
    best = rows.loc[score.idxmax()]  # ties: the paper's order
    mismatches = []
    if best["backbone_id"] != want_id:
        mismatches.append(f"backbone: ours {backbone} ({dims}), paper {best['backbone']} ({best['backbone_id']})")
    if best["pretrain_dataset"] != want_pt:
        mismatches.append(f"pre-training: ours {pretrain}, paper {best['pretrain_dataset']}")
    return Reference(
        name,
        best["backbone"],
        best["pretrain_dataset"],
        float(best["params_millions"]),
        float(best["ucf101_top1"]),
        float(best["hmdb51_top1"]),
        bool(best["ucf101_split1_only"]),
        tuple(mismatches),
        best["backbone_id"],
        best["test_views"],
        best["ucf101_splits"],
        best["hmdb51_splits"],
    )


def protocol_match(
    ref: Reference,
    dataset: str,
    split: int,
    protocol: str,
    frozen: bool | None,
    label_fraction: float | None,
    test_views: str | None = None,
) -> tuple[bool, str]:
    """(comparable, why not) for one of our columns against the paper's number.

    Comparable only when everything matches: backbone id and pre-training set (``ref.mismatches``), downstream
    set and split, full fine-tuning on all labels, and test views. Unknown (a field the paper does not state,
    or one our entry did not record) never matches. ``why`` names every difference, '; '-separated.
    """
    why = list(ref.mismatches)
    if dataset not in DOWNSTREAM:
        return False, "; ".join(why + [f"downstream set: ours {dataset}, paper UCF101/HMDB51"])
    if math.isnan(ref.value(dataset)):
        return False, "; ".join(why + [f"paper has no {DOWNSTREAM[dataset][1]} number"])
    if protocol != "finetune" or frozen:
        why.append(f"protocol: ours {protocol}, paper full fine-tuning")
    if label_fraction is not None and label_fraction < 1:
        why.append(f"labels: ours {label_fraction:.0%} of train, paper all")
    splits = ref.splits(dataset)
    if not splits:
        why.append(f"split: ours split {split}, paper does not state which {DOWNSTREAM[dataset][1]} split(s)")
    elif splits != (split,):
        why.append(f"split: ours split {split}, paper split(s) {', '.join(map(str, splits))}")
    if not ref.test_views:
        why.append("test views: paper does not state them")
    elif test_views is None:
        why.append(f"test views: ours not recorded, paper {ref.test_views}")
    elif test_views != ref.test_views:
        why.append(f"test views: ours {test_views}, paper {ref.test_views}")
    return not why, "; ".join(why)
