"""User-facing errors: the CLI prints their message as one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user (config, paths, sweep files, CLI). One line, exit status 2."""

    exit_code = 2


def nearest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or '' when nothing is close.

    A candidate whose last dotted part starts with the name's last part wins
    ('gpus' -> 'gpus_per_node'); otherwise difflib's closest match.
    """
    candidates = [str(c) for c in candidates]
    leaf = name.rsplit(".", 1)[-1].lower()
    prefixed = [c for c in candidates if len(leaf) >= 3 and c.rsplit(".", 1)[-1].lower().startswith(leaf)]
    match = prefixed[:1] or difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
