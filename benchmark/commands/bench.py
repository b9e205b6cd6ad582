"""vssl bench NAME: performance benchmarks (one module per NAME in benchmark/perf/)."""

from __future__ import annotations

import importlib
import pkgutil


def register(sub) -> None:
    import benchmark.perf as perf

    p = sub.add_parser(
        "bench",
        help="performance benchmarks: data, tce, methods, collect, status",
        description="Print performance figures measured in one run (ratios, not absolute timings).",
    )
    inner = p.add_subparsers(dest="bench", metavar="NAME")
    for info in sorted(pkgutil.iter_modules(perf.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmark.perf.{info.name}")
        doc = (module.__doc__ or info.name).strip().splitlines()[0]
        q = inner.add_parser(info.name, help=doc, description=module.__doc__)
        q.add_argument(
            "--record", action="store_true", help="also write the figures to results/perf/<name>.json and .md"
        )
        module.add_arguments(q)
        q.set_defaults(handler=module.run)
    p.set_defaults(handler=lambda args: p.print_help() or 2)
