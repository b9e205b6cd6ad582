"""vssl synth: write the built-in synthetic action dataset (UCF101 layout)."""

from __future__ import annotations

from benchmark.commands import overrides_anywhere

# benchmark.data.synthetic.SynthConfig's fields and defaults, spelled out so that `vssl --help` imports no
# video stack (tests/data/test_synthetic.py keeps this in step with the dataclass)
SYNTH_FIELDS = (
    "seed [0], classes [12], videos_per_class [80], groups [20], test_groups [8], size [32], frames [32], "
    "fps [25], pool_videos [600], backgrounds [8], gop_size [8], qscale [2]"
)


def register(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="generate the synthetic action dataset (UCF101 layout + unlabelled pool)",
        description="Write a seeded synthetic action dataset as MPEG-4 .avi files in UCF101's exact layout, "
        "plus an unlabelled pre-training pool under OUT/pool. Same seed, same bytes.",
    )
    p.add_argument(
        "out", nargs="?", default=None, help="output folder (default: $VSSL_DATA/synthetic, i.e. data/synthetic)"
    )
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--force", action="store_true", help="regenerate even if OUT holds the same config")
    p.add_argument(
        "set",
        nargs="*",
        metavar="key=value",
        help="SynthConfig fields (defaults in brackets): " + SYNTH_FIELDS,
    )
    p.set_defaults(handler=handle)
    overrides_anywhere(p, dest="set")


def handle(args) -> int:
    from pathlib import Path

    from benchmark.config import build_dataclass, parse_override
    from benchmark.data.synthetic import SynthConfig, generate
    from benchmark.paths import data_home

    if args.out and "=" in args.out and not Path(args.out).exists():  # `vssl synth classes=4`: no folder was given
        args.set, args.out = [args.out, *args.set], None
    from benchmark.errors import UserError

    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: must be at least 1")
    values = dict(parse_override(s) for s in args.set)
    cfg = build_dataclass(SynthConfig, values, prefix="synth")
    out = Path(args.out) if args.out else data_home() / "synthetic"
    summary = generate(out, cfg, workers=args.workers, force=args.force)
    print(
        f"synthetic dataset at {out}: "
        + ", ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, (dict, list)))
    )
    return 0
