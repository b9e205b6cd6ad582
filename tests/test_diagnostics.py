"""Embedding smoothness (logged every step) and the frame-trajectory plot (`vssl trajectories`)."""

from __future__ import annotations

import doctest

import pytest
import torch

import benchmark.diagnostics as diagnostics
from benchmark.cli import main
from benchmark.diagnostics import checkpoint_names, embedding_smoothness, pca_2d


def test_docstring_examples_run():
    result = doctest.testmod(diagnostics)
    assert result.attempted > 0 and result.failed == 0


def test_smoothness_same_video_pairs_against_different_video_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    p = torch.tensor([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    video = torch.tensor([0, 1, 0])  # rows 0 and 2 are the same video: not a "different videos" pair
    out = embedding_smoothness(a, p, video)
    assert out["smooth_same"] == pytest.approx((0.6 + 1 + 1) / 3)
    z, v = torch.cat([a, p]), torch.cat([video, video])
    pairs = [(i, j) for i in range(6) for j in range(6) if v[i] != v[j]]
    assert out["smooth_diff"] == pytest.approx(sum(float(z[i] @ z[j]) for i, j in pairs) / len(pairs))


def test_smoothness_normalises_and_skips_diff_for_one_video():
    out = embedding_smoothness(torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([4]))
    assert out == {"smooth_same": 0.0}


def test_pca_keeps_the_geometry_of_planar_data():
    g = torch.Generator().manual_seed(0)
    plane = torch.randn(30, 2, generator=g)
    basis = torch.linalg.qr(torch.randn(16, 2, generator=g)).Q  # an orthonormal 2-frame in 16-d
    xy = pca_2d(plane @ basis.T + 5.0)

    def dist(x):
        return (x[:, None] - x[None]).norm(dim=-1)

    assert torch.allclose(dist(xy), dist(plane), atol=1e-4)


def test_panel_cosines_next_frame_and_other_videos():
    from benchmark.diagnostics import _panel_cosines

    e = {"a": torch.tensor([[1.0, 0.0], [0.6, 0.8]]), "b": torch.tensor([[0.0, 1.0], [0.0, 1.0]])}
    same, diff = _panel_cosines(e)
    assert same == pytest.approx((0.6 + 1.0) / 2)
    assert diff == pytest.approx((0.0 + 0.0 + 0.8 + 0.8) / 4)


def test_checkpoint_order(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("step_100.pt", "last.pt", "step_20.pt"):
        (folder / name).write_bytes(b"")
    assert checkpoint_names(tmp_path) == ["step_20.pt", "step_100.pt", "last.pt"]


@pytest.mark.slow
def test_trajectories_command_writes_a_png_per_checkpoint_panel(tmp_path, synth_data_home, capsys):
    from benchmark.config import build_experiment
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    tree = {
        "data": {"dataset": "synthetic-pool", "resolution": 32},
        "backbone": {"name": "resnet10t"},
        "method": {"name": "tce", "negatives": 4, "embed_dim": 16},
        "optim": {"batch_size": 4, "steps": 2},
        "run": {"device": "cpu", "precision": "fp32", "epoch_checkpoints": [1], "stages": ["pretrain"]},
    }
    run = tmp_path / "run"
    pretrain(RunDir(run), build_experiment(tree), tree, progress_bar=False)
    out = tmp_path / "traj.png"
    assert main(["trajectories", str(run), "--videos", "3", "--frames", "5", "--out", str(out), "--no-progress"]) == 0
    import matplotlib.image

    image = matplotlib.image.imread(out)
    assert image.shape[1] > 1.8 * image.shape[0]  # two panels side by side (step_1, last)
    assert main(["trajectories", str(run), "--checkpoints", "step_9.pt"]) == 2
    assert "step_9.pt" in capsys.readouterr().err
