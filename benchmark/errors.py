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


# Libraries the harness runs on: a failure inside them is named at the harness's or the plugin's line that called in.
LIBRARIES = frozenset({"torch", "torchvision", "timm", "numpy", "pandas", "cv2", "av", "PIL", "torchcodec", "submitit"})


def raised_at(exc: BaseException, skip: tuple[str, ...] = ()) -> str:
    """' at FILE:LINE' of the innermost frame of the traceback outside Python's standard library, the libraries
    above and the paths in ``skip`` (so a plugin's failing line, or the harness line that called a library), or ''.

    A plugin installed under site-packages counts as outside even where site-packages lies under the standard
    library's folder (conda, pyenv, docker images).
    """
    import os
    import sysconfig
    import traceback
    from pathlib import Path

    stdlib = sysconfig.get_paths()["stdlib"] + os.sep
    installed = ("site-packages", "dist-packages")

    def ours(name: str) -> bool:
        if not os.path.isabs(name) or name.startswith(skip):  # a compiled module's relative name (numpy's .pyx)
            return False
        parts = Path(name).parts
        where = next((i for i, p in enumerate(parts) if p in installed), None)
        if where is not None:  # an installed package: ours unless it is one of the libraries
            return where + 1 < len(parts) and parts[where + 1] not in LIBRARIES
        return not name.startswith(stdlib)

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if ours(f.filename)]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
