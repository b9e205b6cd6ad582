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


# The entry-point group through which plugin packages register (benchmark.registry loads it).
ENTRY_POINT_GROUP = "vssl.methods"
# The line torch puts between an exception raised in a DataLoader worker and that worker's traceback (as text).
WORKER_TRACEBACK = "\nOriginal Traceback"


def one_line(exc: BaseException) -> str:
    """The error's own line: an exception raised in a DataLoader worker comes back wrapped as "Caught UserError in
    DataLoader worker process 0.\nOriginal Traceback ... UserError: <the line>"."""
    text = str(exc)
    if WORKER_TRACEBACK in text:
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def failure_line(exc: BaseException) -> str:
    """'Type: message at FILE:LINE' for a fault (not bad input): the message's own line and the line that failed,
    also when it was raised in a DataLoader worker (whose traceback torch hands back as text)."""
    import re

    text = str(exc)
    if WORKER_TRACEBACK not in text:
        return f"{type(exc).__name__}: {text}{raised_at(exc)}"
    frames = re.findall(r'File "([^"]+)", line (\d+)', text.split(WORKER_TRACEBACK, 1)[1])
    ours = [f"{name}:{line}" for name, line in frames if _ours(name)]
    return text.strip().splitlines()[-1] + (f" at {ours[-1]}" if ours else "")


def raised_at(exc: BaseException, skip: tuple[str, ...] = ()) -> str:
    """' at FILE:LINE' of the innermost frame of the traceback that is the harness's or a plugin's, outside the
    paths in ``skip`` (so a plugin's failing line, or the harness line that called into a library), or ''."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _ours(f.filename, skip)]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _ours(name: str, skip: tuple[str, ...] = ()) -> bool:
    """A file of the harness, of a plugin or of the user's own code: not Python's standard library, not an
    installed library (torch, numpy, yaml, ...) and not a compiled module's relative name (numpy's .pyx). An
    installed package counts as ours when it is the harness or a plugin package (even where site-packages lies
    under the standard library's folder: conda, pyenv, docker images)."""
    import os
    import sysconfig
    from pathlib import Path

    if not os.path.isabs(name) or name.startswith(skip):
        return False
    parts = Path(name).parts
    where = next((i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages")), None)
    if where is not None:
        return where + 1 < len(parts) and Path(parts[where + 1]).stem in _our_packages()
    return not name.startswith(sysconfig.get_paths()["stdlib"] + os.sep)


def _our_packages() -> frozenset[str]:
    """Top-level names of the harness and of every installed plugin package (read on the error path only)."""
    from importlib import metadata

    plugins = {ep.value.split(":", 1)[0].split(".", 1)[0] for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return frozenset({"benchmark", "methods", *plugins})
