"""The contract every registered method honours (in-tree and plugins), timm-style:
parametrised over the whole registry with a tiny backbone and a tiny batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.config import load_config
from benchmark.data.loader import collate
from benchmark.data.samplers import build_sampler
from benchmark.method import DataInfo, Pretraining, Progress, StepOutput
from benchmark.registry import METHODS
from benchmark.train import build_method, log_values

RES = 32


class FakeVideo:
    """A random uint8 video in memory: samplers need only num_frames and get_frames."""

    def __init__(self, seed: int, num_frames: int = 48, size: int = 40):
        g = torch.Generator().manual_seed(seed)
        self.frames = torch.randint(0, 256, (num_frames, 3, size, size), dtype=torch.uint8, generator=g)
        self.num_frames, self.fps, self.height, self.width = num_frames, 25.0, size, size

    def get_frames(self, indices):
        return self.frames[list(indices)]


def tiny_backbone(method_cls) -> str:
    return "r3d_18" if method_cls.backbone_kind == "3d" else "resnet10t"


def tiny_batch(method_cls, cfg, info, batch_size: int = 4) -> dict:
    sampler = build_sampler(method_cls.sampler, RES, train=True, **method_cls.sampler_options(cfg.method, info))
    samples = []
    for i in range(batch_size):
        s = sampler(FakeVideo(i), np.random.default_rng(i))
        s["index"] = torch.tensor(i)
        s["label"] = torch.tensor(i % 3)
        s["bad"] = []
        samples.append(s)
    batch = collate(samples)
    batch.pop("bad")
    return batch


TRAINABLE = [e.name for e in METHODS.entries() if e.obj.pretraining is Pretraining.WEIGHTS]
SMALL = {  # fewer frames per sample for the 3D methods: the contract, not the recipe, is under test here
    "dpc": ["method.num_blocks=4", "method.block_len=3"],
    "vcop": ["method.clip_len=4", "method.gap=2"],
    "rotnet3d": ["method.clip_len=4", "method.rotations=one"],
    "videogan": ["method.clip_len=4"],
    "cubic_puzzles": ["method.piece_len=3", "method.tgap=1"],
    "skip_clip": ["method.clip_len=3", "method.gap=1", "method.num_targets=2"],
}


@pytest.mark.parametrize("name", TRAINABLE)
def test_one_step_finite_loss_and_backbone_gradients(name):
    method_cls = METHODS.get(name)
    cfg = load_config(
        None,
        [
            f"method.name={name}",
            f"backbone.name={tiny_backbone(method_cls)}",
            f"data.resolution={RES}",
            "backbone.zero_init_last=false",
        ],
    )
    method = build_method(cfg, num_videos=16, num_classes=3 if method_cls.needs_labels else 0)
    method.train()
    batch = tiny_batch(method_cls, cfg, method.info)
    out = method.training_step(batch, Progress(step=0, total_steps=10))
    assert isinstance(out, StepOutput)
    assert out.loss.dim() == 0 and math.isfinite(out.loss.item())
    # scalars: numbers or 0-d tensors (the loop turns them into numbers on logging steps only)
    assert all(isinstance(v, float) or (torch.is_tensor(v) and v.dim() == 0) for v in out.scalars.values())
    logged = log_values(out.scalars)
    assert "loss" in logged and all(math.isfinite(v) for v in logged.values()), out.scalars
    out.loss.backward()
    grads = [p.grad for p in method.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{name}: no gradient reached the backbone"


IN_TREE_TRAINABLE = [n for n in TRAINABLE if METHODS.get(n).__module__.startswith("methods.")]
assert IN_TREE_TRAINABLE, "no in-tree method found: the methods package did not register"


@pytest.mark.parametrize("name", IN_TREE_TRAINABLE)
def test_every_in_tree_objective_takes_its_augmentation_from_its_config(name):
    """Augmentation strength was the synthetic calibration's first knob (issue 12): every in-tree objective exposes
    at least its random resized crop as ``method.crop_scale_min`` and hands it to its sampler as ``aug``; a config
    with AugmentFields hands over all seven fields, each to its own slot. (Plugins may choose; docs/adding-a-method.md
    shows AugmentFields.)"""
    from benchmark.data.transforms import AugmentConfig, AugmentFields

    method_cls = METHODS.get(name)
    info = DataInfo(num_videos=16, num_classes=3 if method_cls.needs_labels else 0, resolution=RES)
    default = load_config(None, [f"method.name={name}"]).method
    milder = load_config(None, [f"method.name={name}", "method.crop_scale_min=0.9"]).method
    assert method_cls.sampler_options(milder, info)["aug"].crop_scale[0] == 0.9
    assert method_cls.sampler_options(default, info)["aug"].crop_scale[0] == default.crop_scale_min != 0.9
    if isinstance(default, AugmentFields):
        every = ["crop_scale_min=0.7", "crop_scale_max=0.9", "flip=false", "jitter=0.1", "hue=0.05", "jitter_p=0.3",
                 "gray_p=0.2"]  # fmt: skip
        cfg = load_config(None, [f"method.name={name}", *(f"method.{o}" for o in every)]).method
        aug = method_cls.sampler_options(cfg, info)["aug"]
        assert aug == AugmentConfig((0.7, 0.9), flip=False, jitter=0.1, hue=0.05, jitter_p=0.3, gray_p=0.2)
        build_sampler(method_cls.sampler, RES, train=True, **method_cls.sampler_options(cfg, info))  # it takes them


BUILDABLE = [e.name for e in METHODS.entries() if e.name != "released"]  # imported, never built: test_weights.py


@pytest.mark.parametrize("name", BUILDABLE)
def test_state_dict_roundtrip(name):
    """Checkpoints carry everything (memory banks are buffers), so a fresh build loads them exactly."""
    method_cls = METHODS.get(name)
    cfg = load_config(
        None, [f"method.name={name}", f"backbone.name={tiny_backbone(method_cls)}", f"data.resolution={RES}"]
    )
    a = build_method(cfg, num_videos=16, num_classes=3 if method_cls.needs_labels else 0)
    cfg_b = load_config(
        None,
        [f"method.name={name}", f"backbone.name={tiny_backbone(method_cls)}", f"data.resolution={RES}", "run.seed=1"],
    )
    b = build_method(cfg_b, num_videos=16, num_classes=3 if method_cls.needs_labels else 0)
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


def test_random_init_saves_exactly_the_seeded_initialisation(tmp_path):
    """The reference row's checkpoint holds the weights a pre-training run of the same seed starts from."""
    from benchmark.checkpoint import load
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    overrides = ["backbone.name=resnet10t", f"data.resolution={RES}", "run.seed=3", "optim.steps=0"]
    entry = pretrain(RunDir(tmp_path / "ri"), load_config(None, ["method.name=random_init", *overrides]), {})
    assert entry["trained"] is False and entry["steps"] == 0
    saved = load(tmp_path / "ri" / "checkpoints" / "last.pt")["backbone"]
    fresh = build_method(load_config(None, ["method.name=tce", *overrides]), num_videos=16).backbone.state_dict()
    assert sorted(saved) == sorted(fresh) and all(torch.equal(saved[k], fresh[k]) for k in fresh)


def test_bn_statistics_row_changes_running_statistics_and_no_weight():
    cfg = load_config(None, ["method.name=random_init_bn", "backbone.name=resnet10t", f"data.resolution={RES}"])
    method = build_method(cfg, num_videos=16)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    optimizer = torch.optim.AdamW(method.parameters(), lr=0.1, weight_decay=0.5)  # decay would show if it stepped
    method.train()
    out = method.training_step(
        tiny_batch(METHODS.get("random_init_bn"), cfg, method.info), Progress(step=0, total_steps=1)
    )
    out.loss.backward()
    optimizer.step()
    after = method.state_dict()
    params = {k for k, _ in method.named_parameters()}
    assert params and all(torch.equal(before[k], after[k]) for k in params)
    moved = [k for k in after if k.endswith("running_mean") and not torch.equal(before[k], after[k])]
    assert moved, "no BatchNorm running mean moved"


@pytest.mark.parametrize("name", TRAINABLE)
def test_pretext_eval_leaves_the_method_untouched_and_chance_is_stated(name):
    """The held-out pretext check runs pretext_eval under no_grad in eval mode; the method's state (weights,
    BatchNorm statistics, memory banks, normalisers) must come out bit-identical, and its chance level is known."""
    method_cls = METHODS.get(name)
    cfg = load_config(None, [f"method.name={name}", f"backbone.name={tiny_backbone(method_cls)}",
                             f"data.resolution={RES}", *SMALL.get(name, [])])  # fmt: skip
    method = build_method(cfg, num_videos=16, num_classes=3 if method_cls.needs_labels else 0)
    batch = tiny_batch(method_cls, cfg, method.info)
    method.training_step(batch, Progress(step=0, total_steps=10))  # a first step: maps, normalisers are known
    before = {k: v.clone() for k, v in method.state_dict().items()}
    method.eval()
    with torch.no_grad():
        out = method.pretext_eval(batch, Progress(step=0, total_steps=10))
    after = method.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert torch.is_tensor(out["loss"]) and ("accuracy" in out or {"sse", "sst"} <= set(out))
    chance = method.chance(len(batch["index"]))
    assert chance.measure in ("accuracy", "r2") and (chance.accuracy is None or 0 < chance.accuracy <= 1)


def test_pretext_verdict_needs_chance_plus_margin_and_step0_plus_margin():
    from benchmark.method import Chance, pretext_verdict

    chance = Chance(math.log(4), 0.25)
    m = 3 * math.sqrt(0.25 * 0.75 / 256)  # 0.081

    def score(v):
        return {"value": v, "samples": 256}

    assert pretext_verdict(score(0.25), score(0.25 + m + 0.01), chance)["learned"] is True
    assert pretext_verdict(score(0.25), score(0.25 + m - 0.01), chance)["learned"] is False  # within noise of chance
    assert pretext_verdict(score(0.40), score(0.45), chance)["learned"] is False  # no better than before training
    assert pretext_verdict(score(0.25), score(0.5), chance)["margin"] == round(m, 5)
    # a step-0 score BELOW chance: the end must still clear chance + m, with m from chance (not from step 0)
    coin = Chance(math.log(2), 0.5)  # m = 3 * sqrt(0.25 / 256) = 0.094; from a step-0 score of 0.1 it would be 0.056
    assert pretext_verdict(score(0.10), score(0.58), coin)["learned"] is False  # > step 0 + m, < chance + m
    assert pretext_verdict(score(0.10), score(0.60), coin)["learned"] is True
    assert pretext_verdict(score(0.0), score(0.12), Chance(None, None, "r2"))["learned"] is True  # the bar is 0.1
    assert pretext_verdict(score(0.0), score(0.09), Chance(None, None, "r2"))["learned"] is False
    assert pretext_verdict(score(0.0), score(0.2), Chance(None, None, "r2"))["learned"] is True
    assert pretext_verdict(score(0.0), score(0.05), Chance(None, None, "r2"))["learned"] is False
    # no chance level stated (a plugin's Chance(None, None)): the margin comes from the step-0 score, never 0
    unknown = Chance(None, None)
    assert pretext_verdict(score(0.266), score(0.273), unknown)["learned"] is False  # once True at a margin of 0
    assert pretext_verdict(score(0.0), score(0.0), unknown)["learned"] is False
    assert pretext_verdict(score(1.0), score(1.0), unknown)["learned"] is False
    assert pretext_verdict(score(0.266), score(0.45), unknown)["learned"] is True


@pytest.mark.parametrize("name", METHODS.names())
def test_smoke_overrides_are_method_fields_that_load(name):
    """--smoke's per-method changes (benchmark/launch/local.smoke_overrides) name method fields, and the config
    with them applied still loads."""
    cfg = load_config(None, [f"method.name={name}"])
    overrides = METHODS.get(name).smoke_overrides(cfg.method)
    assert isinstance(overrides, dict) and all(k.startswith("method.") for k in overrides)
    load_config(None, [f"method.name={name}", *(f"{k}={v}" for k, v in overrides.items())])


# Each method's chance level, derived by hand (not from its code): the verdict's margin is read against it, so a
# wrong one makes a row "learned" that guessed. Batch 64; num_videos 600 (TCE's K is given explicitly).
LN = math.log
CHANCE_BY_HAND = [
    ("supervised", [], (LN(12), 1 / 12)),  # 12 classes, uniform
    ("arrow_of_time", [], (LN(2), 0.5)),
    ("opn", [], (LN(12), 1 / 12)),  # 4!/2 = 12 orders of 4 frames (an order and its reverse are one class)
    ("rotnet3d", [], (LN(4), 1 / 4)),
    ("vcop", ["method.num_clips=3"], (LN(6), 1 / 6)),  # 3! orders
    ("vcop", ["method.num_clips=4"], (LN(24), 1 / 24)),
    ("cubic_puzzles", [], (LN(24), 1 / 24)),  # 4! orders of 4 pieces
    # skewed labels: the majority class's accuracy and the labels' entropy (the best constant guess)
    ("shuffle_learn", ["method.positive_fraction=0.25"], (-(0.25 * LN(0.25) + 0.75 * LN(0.75)), 0.75)),
    ("shuffle_learn", ["method.positive_fraction=0.5"], (LN(2), 0.5)),
    ("skip_clip", ["method.margin=0.1"], (0.1, 0.5)),  # equal scores: every pair costs the margin
    ("videogan", ["method.gan_loss=bce"], (3 * LN(2), 0.5)),  # D's two terms + G's, logits 0
    ("videogan", ["method.gan_loss=hinge"], (2.0, 0.5)),
    # InfoNCE over the positive + K bank negatives (+ the batch's 63 other videos); retrieval among 64 videos
    ("tce", ["method.negatives=16"], (LN(17), 1 / 64)),
    ("tce", ["method.negatives=16", "method.batch_negatives=true"], (LN(17 + 63), 1 / 64)),
    ("tce", ["method.negatives=16", "method.loss=nce"], (None, 1 / 64)),
    ("cmc", ["method.negatives=16"], (2 * LN(17), 1 / 64)),  # one InfoNCE per view
]


@pytest.mark.parametrize("name,overrides,expected", CHANCE_BY_HAND, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_chance_levels_match_their_derivation(name, overrides, expected):
    method_cls = METHODS.get(name)
    cfg = load_config(None, [f"method.name={name}", f"backbone.name={tiny_backbone(method_cls)}",
                             f"data.resolution={RES}", *overrides])  # fmt: skip
    method = build_method(cfg, num_videos=600, num_classes=12 if method_cls.needs_labels else 0)
    chance = method.chance(64)
    loss, accuracy = expected
    assert chance.measure == "accuracy" and chance.accuracy == pytest.approx(accuracy)
    assert chance.loss == (None if loss is None else pytest.approx(loss))
