"""TCE: config checks, the loss wiring (gradients, bank, NCE normaliser), DDP gathering, over-fitting, resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import methods.tce as tce_module
from benchmark.config import load_config
from benchmark.errors import UserError
from benchmark.method import Progress
from benchmark.train import log_values
from tests.methods.overfit import fell_clearly, overfit_losses, tiny_method


def _unit(*shape, seed=0, grad=False):
    x = F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)
    return x.requires_grad_(grad)


# --------------------------------------------------------------------------- config
def test_zero_offset_only_as_an_explicit_ablation():
    with pytest.raises(UserError, match="allow_zero_offset"):
        load_config(None, ["method.name=tce", "method.offset_min=0"])
    cfg = load_config(
        None, ["method.name=tce", "method.offset_min=0", "method.offset_max=0", "method.allow_zero_offset=true"]
    )
    assert cfg.method.offset_min == 0


@pytest.mark.parametrize(
    "bad",
    [
        "method.offset_max=0",
        "method.max_hard_fraction=1.5",
        "method.bank_momentum=1.0",
        "method.mining_t_low=0.5",
        "method.temperature=0",
        "method.mining_schedule=cosine",
    ],
)
def test_bad_values_are_one_line_user_errors(bad):
    with pytest.raises(UserError) as err:
        load_config(
            None, ["method.name=tce", "method.mining_t_high=0.2", bad] if "t_low" in bad else ["method.name=tce", bad]
        )
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- loss wiring
@pytest.mark.parametrize("loss", ["infonce", "nce"])
def test_gradients_reach_anchor_and_positive_but_never_the_bank(loss):
    method, _ = tiny_method(
        "tce",
        (
            f"method.loss={loss}",
            "method.negatives=3",
            "method.mining_schedule=fixed",
            "method.mining_fixed_threshold=0.5",
        ),
    )
    method.bank.requires_grad_(True)  # even if the bank could take a gradient, none may reach it
    anchor, positive = _unit(4, 128, seed=1, grad=True), _unit(4, 128, seed=2, grad=True)
    loss_value, scalars = method.contrastive_loss(anchor, positive, torch.tensor([0, 1, 2, 3]), Progress(5, 10))
    loss_value.backward()
    assert anchor.grad.abs().sum() > 0 and positive.grad.abs().sum() > 0
    assert method.bank.grad is None
    assert scalars["mining_threshold"] == 0.5


def test_batch_negatives_add_the_other_videos_live_positives():
    # K = 15 = every other slot of the 16-slot bank, so the negatives are a known set (InfoNCE ignores their order)
    method, _ = tiny_method(
        "tce",
        ("method.batch_negatives=true", "method.negatives=15", "method.mining_schedule=none", "method.temperature=0.5"),
    )
    anchor, positive = _unit(4, 128, seed=1), _unit(4, 128, seed=2)
    index = torch.tensor([0, 1, 1, 2])  # rows 1 and 2 are the same video: not each other's negatives
    loss, _ = method.contrastive_loss(anchor, positive, index, Progress(0, 10))
    expected = 0.0
    for i in range(4):
        others = [method.bank[j] for j in range(16) if j != index[i]]
        others += [positive[j] for j in range(4) if index[j] != index[i]]
        logits = torch.stack([anchor[i] @ positive[i]] + [anchor[i] @ v for v in others]) / 0.5
        expected += -torch.log_softmax(logits, 0)[0] / 4
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(UserError, match="batch_negatives"):
        load_config(None, ["method.name=tce", "method.loss=nce", "method.batch_negatives=true"])


def test_update_bank_momentum_keeps_rows_unit_norm_and_overwrite_stores_the_embedding():
    method, _ = tiny_method("tce", ("method.bank_momentum=0.9",))
    before = method.bank.clone()
    idx, z = torch.tensor([2, 5]), _unit(2, 128, seed=3)
    method.update_bank(idx, z)
    assert torch.allclose(method.bank.norm(dim=1), torch.ones(16), atol=1e-6)
    assert torch.allclose(method.bank[idx], F.normalize(0.9 * before[idx] + 0.1 * z, dim=1))
    method.cfg.bank_momentum = 0.0
    method.update_bank(idx, z)
    assert torch.equal(method.bank[idx], z)


def test_update_bank_gathers_every_rank_before_writing(monkeypatch):
    """Under DDP every rank writes the global batch: the gathered rows (here a fake second rank's) land too."""
    method, _ = tiny_method("tce", ("method.bank_momentum=0",))
    other_idx, other_z = torch.tensor([9, 10]), _unit(2, 128, seed=4)
    fake = {torch.long: other_idx, torch.float32: other_z}
    monkeypatch.setattr(tce_module, "all_gather_cat", lambda t: torch.cat([t, fake[t.dtype]]))
    mine = _unit(2, 128, seed=5)
    method.update_bank(torch.tensor([1, 2]), mine)
    assert torch.equal(method.bank[torch.tensor([1, 2])], mine) and torch.equal(method.bank[other_idx], other_z)


def test_negatives_auto_resolve_and_mining_that_cannot_choose_is_refused_at_load():
    from benchmark.method import DataInfo
    from methods.tce import TCE, TCEConfig

    assert TCE.resolve(TCEConfig(), DataInfo(num_videos=16)).negatives == 3  # floor(15 / 4)
    assert TCE.resolve(TCEConfig(), DataInfo(num_videos=240_000)).negatives == 8192  # the release's K
    method, _ = tiny_method("tce")
    assert method.num_negatives == 3 and method.cfg.negatives == 3  # the resolved value is the method's config
    with pytest.raises(UserError, match=r"N - 1 >= 4K .* N = 16 bank slots .* K = 6 negatives"):
        tiny_method("tce", ("method.negatives=6",))
    with pytest.raises(UserError, match=r"K = 4 negatives; set method.negatives <= 3"):  # 15 < 16: the boundary
        tiny_method("tce", ("method.negatives=4",))
    off, _ = tiny_method("tce", ("method.negatives=1024", "method.mining_schedule=none"))
    assert off.num_negatives == 15  # without mining K is only capped at the bank


def test_mining_schedule_none_never_mines_and_a_high_fixed_threshold_does():
    off, batch = tiny_method("tce", ("method.mining_schedule=none", "method.negatives=3"))
    out = off.training_step(batch, Progress(0, 10))
    assert out.scalars["hard_found"] == 0 and "hard_sim" not in log_values(out.scalars)  # NaN: not logged
    on, batch = tiny_method(
        "tce",
        (
            "method.mining_schedule=fixed",
            "method.mining_fixed_threshold=0.99",
            "method.negatives=3",
            "method.max_hard_fraction=0.7",
        ),
    )
    out = on.training_step(batch, Progress(0, 10))
    assert out.scalars["hard_found"] == 2 and "hard_sim" in log_values(out.scalars)  # capped at floor(0.7 * 3)
    for key in ("smooth_same", "smooth_diff", "neg_sim", "mining_threshold"):
        assert key in out.scalars


def test_nce_normaliser_estimated_once_and_carried_by_the_state_dict():
    method, batch = tiny_method("tce", ("method.loss=nce", "method.negatives=3"))
    assert float(method.nce_normaliser) == 0.0
    method.training_step(batch, Progress(0, 10))
    z = float(method.nce_normaliser)
    assert z > 0
    batch2 = {**batch, "anchor": batch["anchor"].flip(0)}
    method.training_step(batch2, Progress(1, 10))
    assert float(method.nce_normaliser) == z  # constant after the first batch
    fresh, _ = tiny_method("tce", ("method.loss=nce", "method.negatives=3", "run.seed=3"))
    fresh.load_state_dict(method.state_dict())
    assert float(fresh.nce_normaliser) == z and torch.equal(fresh.bank, method.bank)


def test_rotation_auxiliary_task_trains_its_head():
    method, batch = tiny_method("tce", ("method.rotation_aux=true", "method.negatives=3", "method.rotation_weight=0.5"))
    out = method.training_step(batch, Progress(0, 10))
    out.loss.backward()
    assert {"loss_rotation", "rotation_acc", "loss_contrastive"} <= set(out.scalars)
    s = out.scalars  # the total is the contrastive loss plus rotation_weight x the rotation loss
    assert out.loss.item() == pytest.approx((s["loss_contrastive"] + 0.5 * s["loss_rotation"]).item(), rel=1e-6)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.rotation_head.parameters())


@pytest.mark.slow
def test_overfits_a_tiny_batch():
    method, batch = tiny_method("tce", ("method.negatives=3", "backbone.zero_init_last=false"))
    losses = overfit_losses(method, batch, steps=30)
    assert fell_clearly(losses), losses


# --------------------------------------------------------------------------- resume
@pytest.mark.slow
def test_resumed_run_continues_with_the_same_bank_and_normaliser(tmp_path, synth_data_home):
    from benchmark.config import build_experiment
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    tree = {
        "data": {"dataset": "synthetic-pool", "resolution": 32},
        "backbone": {"name": "resnet10t"},
        "method": {"name": "tce", "negatives": 1, "embed_dim": 16, "loss": "nce"},
        "optim": {"batch_size": 4, "steps": 4, "lr": 0.01},
        "run": {"device": "cpu", "precision": "fp32", "log_every": 1, "checkpoint_every": 2, "stages": ["pretrain"]},
    }
    cfg = build_experiment(tree)
    pretrain(RunDir(tmp_path / "straight"), cfg, tree, progress_bar=False)
    pretrain(RunDir(tmp_path / "resumed"), cfg, tree, progress_bar=False, stop_at_step=2)
    mid = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert float(mid["nce_normaliser"]) > 0
    pretrain(RunDir(tmp_path / "resumed"), cfg, tree, progress_bar=False)
    a, b = (
        torch.load(tmp_path / r / "checkpoints" / "last.pt", weights_only=False)["model"]
        for r in ("straight", "resumed")
    )
    assert float(a["nce_normaliser"]) == float(b["nce_normaliser"]) == float(mid["nce_normaliser"])
    assert not torch.equal(a["bank"], mid["bank"])  # the bank moved after the interruption ...
    assert torch.allclose(a["bank"], b["bank"], atol=1e-5)  # ... exactly as in the uninterrupted run


def test_pretext_eval_is_in_batch_retrieval_of_anchors_among_other_videos(monkeypatch):
    """Hand-made embeddings: each ANCHOR row retrieves among the positives (not the reverse); a positive of the
    anchor's own video in another row is no candidate, and the chance accuracy averages 1 / candidates per row."""
    method, _ = tiny_method("tce", ("method.negatives=3", "method.temperature=1.0"))
    # anchors = identity, so logits[i, j] = positive[j, i]
    scores = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.5, 0.0], [1.0, 0.0, 0.2]])  # rows right: 1 of 3; columns: 3
    anchor, positive = torch.eye(3), scores.T.contiguous()
    embeds = iter([anchor, positive])
    monkeypatch.setattr(method, "embed", lambda frames: next(embeds))
    batch = {"anchor": torch.zeros(3, 3, 8, 8), "positive": torch.zeros(3, 3, 8, 8), "index": torch.tensor([0, 1, 2])}
    out = method.pretext_eval(batch, Progress(0, 10))
    assert out["accuracy"].item() == pytest.approx(1 / 3)
    assert out["loss"].item() == pytest.approx(F.cross_entropy(scores, torch.arange(3)).item())
    assert out["chance_accuracy"].item() == pytest.approx(1 / 3)
    # rows 0 and 1 from one video: row 0's best column is row 1's positive (its own video): masked, not a hit
    same = torch.tensor([[1.0, 2.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    embeds = iter([torch.eye(4), same.T.contiguous()])
    out = method.pretext_eval({**batch, "index": torch.tensor([0, 0, 1, 2])}, Progress(0, 10))
    assert out["accuracy"].item() == pytest.approx(1.0)  # row 0 without the mask would pick column 1
    assert out["chance_accuracy"].item() == pytest.approx((1 / 3 + 1 / 3 + 1 / 4 + 1 / 4) / 4)


def test_a_step_mines_with_the_anchor_at_this_steps_threshold_and_writes_the_anchor_to_the_bank(monkeypatch):
    """The release's order: mine the bank with the ANCHOR embedding at the schedule's threshold for this step,
    then overwrite the anchors' slots with the anchor embedding (never the positive's)."""
    method, batch = tiny_method("tce", ("method.negatives=3", "method.mining_schedule=linear"))
    seen = {}
    real_loss, real_mine = method.contrastive_loss, tce_module.mine_negatives

    def loss_spy(anchor, positive, index, progress):
        seen["anchor"], seen["positive"] = anchor.detach().clone(), positive.detach().clone()
        return real_loss(anchor, positive, index, progress)

    def mine_spy(anchor, bank, own_index, k, threshold, *args, **kwargs):
        seen["mined_with"], seen["threshold"] = anchor.clone(), threshold
        return real_mine(anchor, bank, own_index, k, threshold, *args, **kwargs)

    monkeypatch.setattr(method, "contrastive_loss", loss_spy)
    monkeypatch.setattr(tce_module, "mine_negatives", mine_spy)
    method.training_step(batch, Progress(6, 10))
    assert not torch.equal(seen["anchor"], seen["positive"])
    assert torch.equal(seen["mined_with"], seen["anchor"])
    assert seen["threshold"] == method.schedule(6, 10) != method.schedule(0, 10)
    index = batch["index"].long()
    assert torch.equal(method.bank[index], seen["anchor"])  # bank_momentum 0: the slot holds the anchor
