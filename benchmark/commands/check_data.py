"""vssl check-data: decode every video of a dataset and list the bad ones (exit 1 if any)."""

from __future__ import annotations

FORMAT_CHOICES = ("ucf101", "hmdb51", "kinetics", "folder")


def register(sub) -> None:
    p = sub.add_parser(
        "check-data",
        help="find missing, corrupt and odd videos in a dataset (exit 1 if any is bad)",
        description="Open every video any split lists and decode its first and last frame (--full: every "
        "frame, and check that seeking returns the same frames). Prints a table of bad files "
        "with the reason, warnings (seek-unsafe, variable frame rate, very short), a summary, "
        "and exits 1 if a video is bad or listed but missing.",
    )
    p.add_argument("root", help="dataset root folder (or a dataset name from the paths file)")
    p.add_argument(
        "--format",
        default=None,
        choices=FORMAT_CHOICES,
        help="dataset format (default: the paths file's, for a dataset name; else folder)",
    )
    p.add_argument(
        "--split-dir",
        default=None,
        help="folder of split files (default: where the format keeps them: ROOT/ucfTrainTestlist, "
        "ROOT/testTrainMulti_7030_splits, ROOT/annotations, ... or beside ROOT)",
    )
    p.add_argument("--full", action="store_true", help="decode every frame (slow) and verify seeks")
    p.add_argument("--decoder", default="auto", help="auto | pyav | torchcodec (default auto)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--min-frames", type=int, default=8, help="warn about videos shorter than this (default 8)")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="listed-but-missing files do not fail the check (Kinetics copies always lack some)",
    )
    p.add_argument("--csv", default=None, metavar="FILE", help="also write every finding to FILE")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)


def location(root: str, fmt: str | None):
    """A path, or a dataset name from the paths file."""
    from pathlib import Path

    from benchmark.errors import UserError
    from benchmark.paths import DatasetLocation, resolve_dataset

    path = Path(root)
    if path.is_dir():
        return DatasetLocation(path.name, path, fmt or "folder")
    if not path.exists() and "/" not in root:
        loc = resolve_dataset(root)
        return DatasetLocation(loc.name, loc.root, fmt or loc.format, loc.split_dir)  # its split_dir too
    raise UserError(f"dataset root is not a directory: {root}")


def handle(args) -> int:
    from pathlib import Path

    from benchmark.data.check import CheckOptions, check_dataset, render, write_csv
    from benchmark.errors import UserError

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.min_frames < 1:
        raise UserError(f"--min-frames {args.min_frames}: must be at least 1")
    if args.csv and (Path(args.csv).is_dir() or not Path(args.csv).resolve().parent.is_dir()):
        raise UserError(f"--csv {args.csv}: needs a file in an existing folder")  # before the check, not after it
    loc = location(args.root, args.format)
    options = CheckOptions(decoder=args.decoder, full=args.full, min_frames=args.min_frames)
    report = check_dataset(loc, options, split_dir=args.split_dir, workers=args.workers, progress=not args.no_progress)
    print(render(report, Path(loc.root)))
    if args.csv:
        write_csv(report, Path(args.csv))
        print(f"findings written to {args.csv}")
    failed = len(report.bad) + (0 if args.allow_missing else len(report.missing))
    return 1 if failed else 0
