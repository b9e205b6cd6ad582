"""vssl prepare: re-encode a dataset for fast random clip access (MPEG-4, short GOP, smaller frames)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="re-encode a dataset to a short side and keyframe interval (resumable)",
        description="Copy SRC to DST with every video re-encoded as MPEG-4 part 2 (no B-frames, a "
        "keyframe every --gop frames, short side --short-side px). Layout, split files and "
        "CSVs are preserved, so the same --format reads DST. Interrupt and rerun to resume: "
        "finished videos are skipped.",
    )
    p.add_argument("src", help="dataset root to read")
    p.add_argument("dst", help="where to write the prepared copy")
    p.add_argument(
        "--short-side", type=int, default=128, help="short side in px, never upscaled; 0 keeps the size (default 128)"
    )
    p.add_argument("--gop", type=int, default=8, help="keyframe interval in frames (default 8)")
    p.add_argument("--qscale", type=int, default=3, help="MPEG-4 quantiser 1 (best) .. 31 (default 3)")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--force", action="store_true", help="re-encode everything, even finished outputs or other settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from pathlib import Path

    from benchmark.data.prepare import PrepareConfig, prepare_dataset
    from benchmark.errors import UserError

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    cfg = PrepareConfig(short_side=args.short_side, gop=args.gop, qscale=args.qscale)
    report = prepare_dataset(
        Path(args.src), Path(args.dst), cfg, workers=args.workers, force=args.force, progress=not args.no_progress
    )
    for rel, reason in report.failed[:20]:
        print(f"failed: {rel}: {reason}")
    if len(report.failed) > 20:
        print(f"... and {len(report.failed) - 20} more failed")
    print(f"{args.dst}: {report.summary()}")
    return 1 if report.failed else 0
