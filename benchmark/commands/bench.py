"""vssl bench NAME: performance benchmarks (one module per NAME in benchmark/perf/)."""

from __future__ import annotations

import importlib
import pkgutil


def count_type(minimum: int):
    """An argparse type for an integer option of at least ``minimum``."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be {minimum} or more")
        return value

    return parse


def zero_means_something(action) -> bool:
    """0 is a documented value of this option: its default ('0: auto') or its help says what 0 does."""
    import re

    return action.default == 0 or bool(re.search(r"\b0( skips|:)", action.help or ""))


def register(sub) -> None:
    import benchmark.perf as perf

    names = [m.name for m in sorted(pkgutil.iter_modules(perf.__path__), key=lambda m: m.name)]
    names = [n for n in names if not n.startswith("_")]
    p = sub.add_parser(
        "bench",
        help=f"performance benchmarks: {', '.join(names)}",
        description="Print performance figures measured in one run (ratios, not absolute timings).",
    )
    inner = p.add_subparsers(dest="bench", metavar="NAME")
    for name in names:
        module = importlib.import_module(f"benchmark.perf.{name}")
        doc = module.__doc__ or name
        # argparse %-formats a choice's help ("< 15%)"), not a description without %(prog)
        q = inner.add_parser(name, help=doc.strip().splitlines()[0].replace("%", "%%"), description=doc)
        if not getattr(module, "ALWAYS_WRITES", False):  # gpu writes every stage as it ends: --out, no --record
            q.add_argument(
                "--record", action="store_true", help="also write the figures to results/perf/<name>.json and .md"
            )
        module.add_arguments(q)
        for action in q._actions:  # counts and sizes: below 1 they divide by zero or reshape to nothing
            if action.type is int:
                action.type = count_type(0 if zero_means_something(action) else 1)
        q.set_defaults(handler=module.run)
    p.set_defaults(handler=lambda args: p.print_help() or 2)
