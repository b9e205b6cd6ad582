"""vssl methods: list registered methods and where they come from."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "methods",
        help="list registered SSL methods (in-tree and plugins)",
        description="List every registered method: the backbone kind it needs, its sampler, its origin.",
    )
    p.add_argument(
        "--samplers",
        action="store_true",
        help="list registered samplers instead: what one sample holds (key [shape] dtype, at 32 px from a "
        "64-frame video with default options), their options and defaults, and their origin",
    )
    p.set_defaults(handler=handle)


def handle(args) -> int:
    import textwrap

    from tabulate import tabulate

    from benchmark.registry import method_table

    if args.samplers:
        from benchmark.data.samplers import describe_samplers

        rows = [[r["name"], r["sample"], r["options"], r["source"]] for r in describe_samplers()]
        print(tabulate(rows, headers=["sampler", "one sample (at 32 px)", "options (defaults)", "source"]))
        print("\nThe loader adds 'index' (the video's position) and, for labelled pre-training, 'label'. "
              "Frames are float32, ImageNet-normalised, [..., C, H, W].")  # fmt: skip
        return 0
    rows = [
        [r["name"], r["backbone"], r["sampler"], r["source"], textwrap.shorten(r["summary"], 70, placeholder=" ...")]
        for r in method_table()
    ]
    print(tabulate(rows, headers=["method", "backbone", "sampler", "source", "summary"]))
    return 0
