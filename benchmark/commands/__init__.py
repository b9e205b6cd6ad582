"""One module per ``vssl`` subcommand; each exposes ``register(subparsers)``
and sets ``handler`` on its parser. Keep module imports light (no torch)."""

from __future__ import annotations

import argparse


def overrides_anywhere(parser: argparse.ArgumentParser, dest: str = "overrides") -> None:
    """Accept key=value overrides after options too (`vssl pretrain cfg.yaml --out RUN optim.steps=5`): argparse
    fills a '*' positional from the first run of positionals only and calls whatever follows an option unrecognised;
    those key=value words join ``dest``."""
    plain = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extras = plain(args, namespace)
        late = [a for a in extras if "=" in a and not a.startswith("-")]
        setattr(ns, dest, [*(getattr(ns, dest, None) or []), *late])
        return ns, [a for a in extras if a not in late]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]  # the subparsers action calls this
