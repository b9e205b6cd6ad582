"""Frame trajectories after TCE's Figure 3 (Knights et al., ICPR 2020): is the embedding temporally coherent?

:func:`frame_trajectories` plots every frame of a few videos embedded at chosen checkpoints and projected
to 2D by PCA, one line per video (``vssl trajectories RUN``). Smooth, separated curves are the paper's
picture of a coherent embedding. The per-step scalars live in :mod:`benchmark.smoothness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TrajectoryConfig:
    videos: int = 4  # how many videos of the pre-training set (evenly spaced through its index)
    frames: int = 64  # at most this many evenly spaced frames per video (all when shorter)
    space: Literal["embedding", "backbone"] = "embedding"  # the method's projection (if any) or pooled features
    batch_size: int = 64


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """[M, D] -> [M, 2]: the centred data on its two leading principal axes (SVD)."""
    centred = x - x.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vh[:2].T


@torch.no_grad()
def embed_frames(method, frames: torch.Tensor, space: str, batch_size: int = 64) -> torch.Tensor:
    """frames [T, C, H, W] (normalised floats) -> unit-norm [T, D] in the chosen space."""
    embed = getattr(method, "embed", None) if space == "embedding" else None
    outs = []
    for chunk in frames.split(batch_size):
        z = embed(chunk) if embed is not None else method.backbone(chunk)
        outs.append(F.normalize(z.float(), dim=-1))
    return torch.cat(outs)


def checkpoint_names(run_path: Path) -> list[str]:
    """The run's kept checkpoints in training order: step_N.pt by N, then last.pt."""
    folder = run_path / "checkpoints"
    steps = sorted(folder.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    names = [p.name for p in steps]
    if (folder / "last.pt").exists():
        names.append("last.pt")
    return names


def frame_trajectories(
    run_path: str | Path,
    out: str | Path,
    checkpoints: list[str] | None = None,
    cfg: TrajectoryConfig = TrajectoryConfig(),
    progress_bar: bool = True,
) -> Path:
    """Plot a few pre-training videos' frame trajectories (2D PCA per checkpoint) into a PNG; returns its path."""
    from tqdm.auto import tqdm

    from benchmark import checkpoint
    from benchmark.config import build_experiment
    from benchmark.data.index import build_index
    from benchmark.data.samplers import evenly_spaced
    from benchmark.data.transforms import eval_transform
    from benchmark.data.video import open_video
    from benchmark.errors import UserError
    from benchmark.rundir import RunDir
    from benchmark.train import build_method

    run = RunDir(Path(run_path))
    if not (run.path / "config.yaml").exists():
        raise UserError(f"{run.path} is not a run directory (no config.yaml)")
    if run.config().get("method", {}).get("name") == "released":
        raise UserError(f"{run.path} holds imported weights: trajectories need a run pre-trained here (its method "
                        "and pre-training videos); compare imported weights with `vssl evaluate` instead")  # fmt: skip
    names = checkpoints or checkpoint_names(run.path)
    missing = [n for n in names if not run.checkpoint_path(n).exists()]
    if not names or missing:
        raise UserError(
            f"no checkpoint {', '.join(missing) or '*.pt'} in {run.path / 'checkpoints'}: pre-train first "
            f"(run.epoch_checkpoints keeps intermediate ones)"
        )
    exp = build_experiment(run.config())
    index = build_index(exp.data.dataset, split=exp.data.split, subset="train", storage=exp.data.storage)
    if not index.records:
        raise UserError(f"dataset '{exp.data.dataset}' has no videos to plot")
    count = max(1, min(cfg.videos, len(index.records)))
    picks = [index.records[i] for i in evenly_spaced(len(index.records), count)]
    transform = eval_transform(exp.data.resolution)
    clips = {}
    for record in picks:
        with open_video(record.path, exp.data.decoder) as video:
            idx = evenly_spaced(video.num_frames, min(cfg.frames, video.num_frames))
            clips[Path(record.path).stem] = transform(video.get_frames(idx))

    panels = []
    for name in tqdm(names, desc="trajectories", disable=not progress_bar):
        state = checkpoint.load(run.checkpoint_path(name))
        bank = state["model"].get("bank")
        method = build_method(exp, num_videos=len(bank) if bank is not None else len(index.records))
        method.load_state_dict(state["model"])
        method.eval()
        embedded = {k: embed_frames(method, v, cfg.space, cfg.batch_size) for k, v in clips.items()}
        flat = pca_2d(torch.cat(list(embedded.values())))
        points = dict(zip(embedded, flat.split([len(v) for v in embedded.values()]), strict=True))
        same, diff = _panel_cosines(embedded)
        panels.append(
            (
                f"{name.removesuffix('.pt')} (step {int(state.get('step', 0))})\n"
                f"cos next frame {same:.3f}, other videos {diff:.3f}",
                points,
            )
        )
    return plot_trajectories(panels, Path(out), title=f"{exp.method.name}: frame trajectories ({cfg.space}, PCA)")


def _panel_cosines(embedded: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Mean cosine of consecutive plotted frames of a video, and of frames of different videos: PCA hides the
    absolute spread (a collapsed embedding still fills its panel), these two numbers do not."""
    same = torch.cat([(z[1:] * z[:-1]).sum(1) for z in embedded.values() if len(z) > 1]).mean()
    z = torch.cat(list(embedded.values()))
    video = torch.cat([torch.full((len(v),), i) for i, v in enumerate(embedded.values())])
    other = video[:, None] != video[None, :]
    diff = (z @ z.T)[other].mean() if bool(other.any()) else torch.tensor(float("nan"))
    return float(same), float(diff)


def plot_trajectories(panels: list[tuple[str, dict[str, torch.Tensor]]], out: Path, title: str = "") -> Path:
    """One subplot per checkpoint; per video a line through its frames in time order (circle: first frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    videos = list(panels[0][1]) if panels else []
    colours = dict(zip(videos, sns.color_palette("tab10", max(1, len(videos))), strict=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (label, points) in zip(axes[0], panels, strict=True):
        for video, xy in points.items():
            xy = xy.numpy()
            ax.plot(xy[:, 0], xy[:, 1], "-", lw=1, color=colours[video], alpha=0.8, label=video)
            ax.scatter(xy[:, 0], xy[:, 1], s=8, color=colours[video])
            ax.scatter(xy[:1, 0], xy[:1, 1], s=60, marker="o", facecolors="none", edgecolors=colours[video])
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if videos:
        axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
