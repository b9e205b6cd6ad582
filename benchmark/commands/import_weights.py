"""vssl import: a released checkpoint -> a run directory every evaluation protocol and `vssl table` read."""

from __future__ import annotations


def register(sub) -> None:
    from benchmark.weights import FORMATS

    p = sub.add_parser(
        "import",
        help="turn a released checkpoint (TCE, VCOP, timm, torchvision) into a run directory to evaluate",
        description="Map a released checkpoint's keys exactly onto one of our backbones and write a run directory "
        "(config, checkpoints/last.pt, provenance: file, sha256, format, paper). Then `vssl evaluate RUN "
        "--protocol linear|knn|finetune` and `vssl table` read it like any run. Keys the format knows as heads are "
        "dropped (listed); any other mismatch is an error, never a partial load.",
    )
    p.add_argument("file", help="the checkpoint (.pth/.pt/.tar, or .safetensors)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="whose checkpoint it is")
    p.add_argument("--out", required=True, help="the run directory to write (must not exist yet)")
    p.add_argument("--backbone", default=None, help="our backbone name (needed for timm/torchvision; inferred else)")
    p.add_argument(
        "--pretrained-on", default=None, help="the set the weights were pre-trained on (kinetics400, ucf101, ...)"
    )
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from benchmark.weights import import_release

    out = import_release(args.file, args.format, args.out, args.backbone, args.pretrained_on)
    print(f"imported {args.file} ({args.format}) into {out}: evaluate it with `vssl evaluate {out} --protocol linear`")
    return 0
