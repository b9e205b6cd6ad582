"""vssl trajectories: plot a few videos' frame trajectories in 2D (PCA) at chosen checkpoints (TCE Figure 3)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "trajectories",
        help="plot frame trajectories of a few videos in the embedding (PNG)",
        description="Embed every frame of a few pre-training videos with the run's checkpoints and "
        "plot each video as a line in a 2D PCA projection, one panel per checkpoint "
        "(TCE's Figure 3). Keep intermediate checkpoints with run.epoch_checkpoints.",
    )
    p.add_argument("run_dir", help="run directory written by `vssl pretrain` or a sweep")
    p.add_argument(
        "--checkpoints",
        nargs="+",
        default=None,
        metavar="NAME",
        help="checkpoint files under RUN/checkpoints (default: every step_N.pt, then last.pt)",
    )
    p.add_argument("--videos", type=int, default=4, help="videos to plot, evenly spaced through the index (default 4)")
    p.add_argument(
        "--frames", type=int, default=64, help="at most this many evenly spaced frames per video (default 64)"
    )
    p.add_argument(
        "--space",
        choices=("embedding", "backbone"),
        default="embedding",
        help="the method's projection head output (default) or the backbone's pooled features",
    )
    p.add_argument("--out", default=None, help="figure path, .png, .pdf, .svg, ... (default RUN/trajectories.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from pathlib import Path

    from benchmark.errors import UserError

    if args.videos < 1 or args.frames < 2:
        raise UserError("--videos must be >= 1 and --frames >= 2")
    from benchmark.trajectories import TrajectoryConfig, frame_trajectories

    out = Path(args.out) if args.out else Path(args.run_dir) / "trajectories.png"
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()  # matplotlib picks the format from the suffix
    if out.suffix.lower().lstrip(".") not in formats:
        raise UserError(f"--out {out}: name the figure .png, .pdf, .svg (or another of matplotlib's: "
                        f"{', '.join(sorted(formats))})")  # fmt: skip
    cfg = TrajectoryConfig(videos=args.videos, frames=args.frames, space=args.space)
    path = frame_trajectories(args.run_dir, out, args.checkpoints, cfg, progress_bar=not args.no_progress)
    from benchmark.config import build_experiment
    from benchmark.rundir import RunDir
    from benchmark.tracking import Tracker

    tracker = Tracker(Path(args.run_dir), build_experiment(RunDir(Path(args.run_dir)).config()), "trajectories")
    tracker.image("trajectories", path)  # beside the run's curves in TensorBoard
    tracker.close()
    print(f"wrote {path}")
    return 0
