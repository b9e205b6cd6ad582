"""vssl import: a released checkpoint -> a run directory every evaluation protocol and `vssl table` read."""

from __future__ import annotations


def register(sub) -> None:
    from benchmark.weights import FORMATS

    p = sub.add_parser(
        "import",
        help="turn a released checkpoint (TCE, VCOP, DPC, timm, torchvision) into a run directory to evaluate",
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
        "--pretrained-on",
        default=None,
        help="the set the weights were pre-trained on: kinetics400 or ucf101 put the paper's numbers beside the row; "
        "another name is recorded as given (a known name written another way, Kinetics400, is refused)",
    )
    p.set_defaults(handler=handle)


def check_pretrained_on(name: str) -> str | None:
    """Refuse a known dataset written another way (Kinetics400, ucf-101: it would silently match no published row);
    return a note when the name is another set (kinetics600, howto100m: recorded as given), else None."""
    import re

    from benchmark.errors import UserError
    from benchmark.paths import site_datasets
    from benchmark.results.published import PRETRAIN_SETS

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--pretrained-on {name!r}: a dataset name (letters, digits, '.', '_', '-'), e.g. kinetics400")
    known = sorted(set(PRETRAIN_SETS) | set(site_datasets()))
    folded = {re.sub(r"[^a-z0-9]", "", k.lower()): k for k in known}
    same = folded.get(re.sub(r"[^a-z0-9]", "", name.lower()))
    if same is not None and same != name:
        raise UserError(f"--pretrained-on '{name}': write it '{same}', the name tables match published rows by")
    if name in PRETRAIN_SETS:
        return None
    return (f"note: no published Table-1 row was pre-trained on '{name}' (theirs: {', '.join(PRETRAIN_SETS)}), "
            "so tables show no paper number beside this run")  # fmt: skip


def handle(args) -> int:
    from benchmark.weights import import_release

    note = check_pretrained_on(args.pretrained_on) if args.pretrained_on is not None else None
    out = import_release(args.file, args.format, args.out, args.backbone, args.pretrained_on)
    print(f"imported {args.file} ({args.format}) into {out}: evaluate it with `vssl evaluate {out} --protocol linear`")
    if note:
        print(note)
    return 0
