"""The frame-trajectory plot (`vssl trajectories`)."""

from __future__ import annotations

import pytest
import torch

from benchmark.cli import main
from benchmark.trajectories import checkpoint_names, pca_2d


def test_pca_keeps_the_geometry_of_planar_data():
    g = torch.Generator().manual_seed(0)
    plane = torch.randn(30, 2, generator=g)
    basis = torch.linalg.qr(torch.randn(16, 2, generator=g)).Q  # an orthonormal 2-frame in 16-d
    xy = pca_2d(plane @ basis.T + 5.0)

    def dist(x):
        return (x[:, None] - x[None]).norm(dim=-1)

    assert torch.allclose(dist(xy), dist(plane), atol=1e-4)


def test_panel_cosines_next_frame_and_other_videos():
    from benchmark.trajectories import _panel_cosines

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
        "method": {"name": "tce", "negatives": 1, "embed_dim": 16},
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
