"""CMC (video): the second encoder (built, checkpointed, loaded), what the positive of each view is (the OTHER
view's memory of the same video), the bank update, the static config checks, and a tiny over-fitting run.
The flow itself is tested against known motions in tests/data/test_flow.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from benchmark.config import load_config
from benchmark.errors import UserError
from benchmark.method import Progress
from tests.methods.overfit import fell_clearly, overfit_losses, tiny_method


def first_conv(module: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize(("overrides", "channels"), [((), 2), (("method.flow_stack=3",), 6),
                                                     (("method.flow_encoding=uvm",), 3), (("method.view2=frame",), 3)])  # fmt: skip
def test_the_second_encoder_is_the_same_architecture_for_its_input(overrides, channels):
    method, batch = tiny_method("cmc", overrides)
    rgb, other = method.backbone, method.view2_encoder
    assert type(rgb.net) is type(other.net) and rgb.num_features == other.num_features
    assert first_conv(rgb).in_channels == 3 and first_conv(other).in_channels == channels
    assert batch["view2"].shape[1] == channels
    assert not {id(p) for p in rgb.parameters()} & {id(p) for p in other.parameters()}  # its own weights
    # a checkpoint's model state carries it; the "backbone" entry (what evaluation reads) is the RGB encoder
    keys = method.state_dict().keys()
    assert any(k.startswith("view2_encoder.") for k in keys) and set(rgb.state_dict()) == {
        k[len("backbone.") :] for k in keys if k.startswith("backbone.")
    }


def test_the_second_encoder_loads_from_a_checkpoint():
    a, _ = tiny_method("cmc")
    b, _ = tiny_method("cmc", ("run.seed=1",))
    assert not torch.equal(first_conv(a.view2_encoder).weight, first_conv(b.view2_encoder).weight)
    b.load_state_dict(a.state_dict())
    assert torch.equal(first_conv(a.view2_encoder).weight, first_conv(b.view2_encoder).weight)


def embeddings(method, batch):
    method.eval()
    with torch.no_grad():
        return method.embed(batch["frame"], batch["view2"])


def test_each_view_is_scored_against_the_other_views_bank():
    """With the FLOW bank holding each video's RGB embedding (and the RGB bank its flow embedding), every anchor's
    positive (column 0) scores 1 / T and beats the negatives; the same memories in the anchor's OWN view's bank
    do not make it win."""
    method, batch = tiny_method("cmc")
    z1, z2 = embeddings(method, batch)
    index = batch["index"]
    with torch.no_grad():
        method.bank_view2[index], method.bank_rgb[index] = z1, z2
        rgb, view2 = method.cross_view_logits(z1, z2, index)
    t = method.cfg.temperature
    assert torch.allclose(rgb[:, 0], torch.full((8,), 1 / t)) and torch.allclose(view2[:, 0], torch.full((8,), 1 / t))
    assert (rgb[:, 0:1] >= rgb[:, 1:] - 1e-5).all() and (view2[:, 0:1] >= view2[:, 1:] - 1e-5).all()
    with torch.no_grad():  # swapped: each bank holds its own view's memories
        method.bank_rgb[index], method.bank_view2[index] = z1, z2
        rgb, _ = method.cross_view_logits(z1, z2, index)
    assert not torch.allclose(rgb[:, 0], torch.full((8,), 1 / t))


def test_live_positives_are_the_other_views_fresh_embedding_and_negatives_exclude_the_video():
    method, batch = tiny_method("cmc", ("method.positive=live", "method.batch_negatives=true"))
    z1, z2 = embeddings(method, batch)
    torch.manual_seed(0)
    rgb, view2 = method.cross_view_logits(z1, z2, batch["index"])
    k = method.num_negatives
    assert rgb.shape == (8, 1 + k + 8) and torch.allclose(rgb[:, 0], (z1 * z2).sum(1) / method.cfg.temperature)
    assert torch.isinf(rgb[:, 1 + k :].diagonal()).all()  # the batch's own video is never a negative
    assert torch.allclose(view2[:, 1 + k :], rgb[:, 1 + k :].T)


def test_banks_move_halfway_to_the_new_embeddings_after_the_step():
    method, batch = tiny_method("cmc")
    method.train()
    index = batch["index"]
    old_rgb, old_view2 = method.bank_rgb[index].clone(), method.bank_view2[index].clone()
    untouched = method.bank_rgb[8:].clone()
    calls = []
    embed = method.embed
    method.embed = lambda *a: calls.append(embed(*a)) or calls[-1]
    method.training_step(batch, Progress(0, 10))
    z1, z2 = (z.detach() for z in calls[0])
    assert torch.allclose(method.bank_rgb[index], F.normalize(0.5 * old_rgb + 0.5 * z1, dim=1), atol=1e-6)
    assert torch.allclose(method.bank_view2[index], F.normalize(0.5 * old_view2 + 0.5 * z2, dim=1), atol=1e-6)
    assert torch.equal(method.bank_rgb[8:], untouched)


def test_nce_estimates_each_views_normaliser_once():
    method, batch = tiny_method("cmc", ("method.loss=nce",))
    method.train()
    method.training_step(batch, Progress(0, 10))
    z = method.nce_normaliser.clone()
    assert (z > 0).all()
    out = method.training_step(batch, Progress(1, 10))
    assert torch.equal(method.nce_normaliser, z) and torch.isfinite(out.loss)
    assert {"prob_rgb", "prob_view2"} <= set(out.scalars)


def test_chance_levels():
    method, _ = tiny_method("cmc")  # 16 videos: K = auto = 15
    assert method.num_negatives == 15
    assert method.chance(8).loss == pytest.approx(2 * torch.log(torch.tensor(16.0)).item())
    assert method.chance(8).accuracy == 1 / 8
    nce, _ = tiny_method("cmc", ("method.loss=nce",))
    assert nce.chance(8).loss is None


@pytest.mark.parametrize(("override", "field"), [("method.view2=depth", "method.view2"),
                                                 ("method.flow_encoding=hsv", "method.flow_encoding"),
                                                 ("method.flow_algorithm=tvl1", "method.flow_algorithm"),
                                                 ("method.flow_stack=0", "method.flow_stack"),
                                                 ("method.bank_momentum=1.0", "method.bank_momentum"),
                                                 ("method.crop=random", "method.crop")])  # fmt: skip
def test_bad_values_fail_at_load_naming_the_field(override, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_config(None, ["method.name=cmc", override])


def test_independent_crops_need_the_frame_view():
    with pytest.raises(UserError, match="method.crop = independent needs method.view2 = frame"):
        load_config(None, ["method.name=cmc", "method.crop=independent"])  # the default view2 is flow
    cfg = load_config(None, ["method.name=cmc", "method.crop=independent", "method.view2=frame"])
    assert cfg.method.crop == "independent"


def test_uvm_needs_a_single_flow_field():
    with pytest.raises(UserError, match="flow_encoding"):
        load_config(None, ["method.name=cmc", "method.flow_encoding=uvm", "method.flow_stack=2"])


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    method, batch = tiny_method("cmc", ("method.positive=live", "method.batch_negatives=true"))
    losses = overfit_losses(method, batch, steps=15, lr=1e-3)
    assert fell_clearly(losses, 0.7), losses


@pytest.mark.parametrize(("view2", "overrides"), [("flow", ()), ("flow", ("method.flow_stack=2",)),
                                                  ("flow", ("method.flow_encoding=uvm",)), ("difference", ())])  # fmt: skip
def test_the_motion_concat_encoder_reads_the_motion_computed_as_in_training(view2, overrides):
    """Flow / difference views: the RGB encoder reads each view's frame t, the second encoder the motion that
    ``motion_view`` (the training sampler's own function) computes from the ORIGINAL uint8 frames, so the
    de-normalisation inside the encoder loses nothing."""
    from benchmark.data.flow import default_bound, motion_offsets, motion_view
    from benchmark.evaluation.features import normalise_hwc
    from methods.cmc import CMC, MotionViewConcat, flow_config

    method, _ = tiny_method("cmc", (f"method.view2={view2}", "method.eval_features=concat", *overrides))
    cfg = method.cfg
    encoder = CMC.eval_encoder(cfg, method.backbone, method.state_dict())
    assert isinstance(encoder, MotionViewConcat)
    offsets = motion_offsets(view2, cfg.flow_stack, cfg.flow_stride)
    assert encoder.frame_offsets == offsets and len(offsets) == (cfg.flow_stack + 1 if view2 == "flow" else 2)
    # a bright square moving 2 px right per frame on noise: [videos 2, views 3, K, H, W, C] uint8
    r, k = 32, len(offsets)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 60, (2, 3, k, r, r, 3), dtype=torch.uint8, generator=g)
    for j in range(k):
        frames[:, :, j, 10:20, 6 + 2 * j : 16 + 2 * j] = 220
    x = normalise_hwc(frames)  # [2, 3, K, 3, r, r], as the evaluation loader hands views to the encoder
    method.eval()
    encoder.eval()
    with torch.no_grad():
        got = encoder(x)
        original = frames.movedim(-1, -3).reshape(-1, k, 3, r, r)
        motion = torch.stack(
            [motion_view(f, view2, default_bound(r), cfg.flow_encoding, flow_config(cfg)) for f in original]
        )
        rgb = method.backbone(x[:, :, 0])
        second = method.view2_encoder(motion).reshape(2, 3, -1)
    d = method.backbone.num_features
    assert got.shape == (2, 3, encoder.num_features) and encoder.num_features == 2 * d
    assert torch.allclose(got[..., :d], rgb, atol=1e-5) and torch.allclose(got[..., d:], second, atol=1e-5)
    if view2 == "flow":  # the square's motion is there: u ~ +2 px inside it
        assert motion[:, 0, 12:18, 10:16].mean() > 0.5 * 2 / default_bound(r)


def test_the_concatenated_encoder_is_both_encoders_side_by_side():
    from methods.cmc import CMC

    method, batch = tiny_method("cmc", ("method.view2=frame", "method.eval_features=concat"))
    encoder = CMC.eval_encoder(method.cfg, method.backbone, method.state_dict())
    method.eval()
    encoder.eval()
    with torch.no_grad():
        got = encoder(batch["frame"])
        rgb, second = method.backbone(batch["frame"]), method.view2_encoder(batch["frame"])
    d = method.backbone.num_features
    assert encoder.num_features == 2 * d and got.shape == (len(batch["frame"]), 2 * d)
    assert torch.allclose(got[:, :d], rgb) and torch.allclose(got[:, d:], second)
    assert not torch.allclose(rgb, second)  # two encoders, not one twice
    # the default reads the RGB encoder alone, as every method does
    plain = dataclasses.replace(method.cfg, eval_features="rgb")
    assert CMC.eval_encoder(plain, method.backbone, method.state_dict()) is method.backbone
    with pytest.raises(UserError, match="no second encoder"):
        CMC.eval_encoder(method.cfg, method.backbone, {})


@pytest.mark.slow
@pytest.mark.parametrize("view2", ["frame", "flow"])
def test_frozen_features_of_a_concat_run_are_twice_as_wide(view2, synth_data_home, tmp_path):
    from benchmark.evaluation import frozen_features
    from tests.evaluation.conftest import make_run, tiny_config

    run = make_run(
        tmp_path / "cmc",
        "method.name=cmc",
        f"method.view2={view2}",
        "method.eval_features=concat",
        "data.dataset=synthetic-pool",
        "backbone.name=test_resnet",
        "optim.steps=2",
        "optim.batch_size=4",
    )
    concat = frozen_features(run, tiny_config(run), progress_bar=False)
    rgb = frozen_features(run, tiny_config(run, "method.eval_features=rgb"), progress_bar=False)
    d = rgb.train.x.shape[1]
    assert concat.train.x.shape[1] == 2 * d and concat.train.video_ids == rgb.train.video_ids
    assert torch.allclose(concat.train.x[:, :d], rgb.train.x, atol=1e-5)
    # the flow view decodes each test frame with the next one (flow_stack 1): twice the frames, said in provenance
    assert concat.provenance["frames_seen"] == (2 if view2 == "flow" else 1) * rgb.provenance["frames_seen"]
