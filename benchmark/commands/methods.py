"""vssl methods: list registered methods and where they come from."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "methods",
        help="list registered SSL methods (in-tree and plugins)",
        description="List every registered method: the backbone kind it needs, its sampler, its origin.",
    )
    p.add_argument("--samplers", action="store_true", help="list registered samplers instead")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from tabulate import tabulate

    from benchmark.registry import SAMPLERS, method_table

    if args.samplers:
        rows = [[e.name, e.source] for e in SAMPLERS.entries()]
        print(tabulate(rows, headers=["sampler", "source"]))
        return 0
    rows = [[r["name"], r["backbone"], r["sampler"], r["source"], r["summary"][:70]] for r in method_table()]
    print(tabulate(rows, headers=["method", "backbone", "sampler", "source", "summary"]))
    return 0
