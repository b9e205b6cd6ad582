"""Checkpoint files: written atomically with the previous one kept, read without running code, and recovered.

Writing (:func:`save`): the state goes to a temp file in the same folder (fsync), the current file becomes
``<name>.prev.pt``, then the temp file takes its name. A kill at any moment leaves a readable file behind:
the new one, or the previous one.

Reading (:func:`load`): ``torch.load(weights_only=True)``, so a checkpoint is data, never code. Our
checkpoints hold tensors, numbers, strings and containers only (RNG states are stored as such, see
:func:`rng_state`); checkpoints written before that kept numpy's RNG state as an array, and the few numpy
globals needed to rebuild an array are allowed explicitly. A file whose pickle asks for anything else (a
function, a class of some package: what a malicious or foreign pickle does) is refused with one line naming
the file and what it asked for; its code never runs.

Recovering (:func:`load_latest`): a garbage or truncated ``last.pt`` (a disk error, a copy gone wrong) falls
back, with a warning naming both files, to ``last.prev.pt`` or else to the newest valid ``step_N.pt``; never
silently to step 0.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.errors import UserError

log = logging.getLogger(__name__)
PREVIOUS_SUFFIX = ".prev.pt"
KILL_HOOK = "VSSL_TEST_KILL_IN_CHECKPOINT"  # test hook: SIGKILL this process inside the N-th checkpoint write


class CorruptCheckpoint(UserError):
    """The file exists but does not load (truncated, garbage, wrong format)."""


def _numpy_globals() -> list:
    """What unpickling a numpy array needs (no code beyond numpy's own array constructor)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


# --------------------------------------------------------------------------- RNG state as plain data
def rng_state() -> dict:
    """Python, numpy and torch RNG states as tensors, numbers and tuples (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}  # fmt: skip
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        keys = numpy_state["keys"].numpy().astype(np.uint32)
        np.random.set_state((numpy_state["name"], keys, numpy_state["pos"], numpy_state["has_gauss"],
                             numpy_state["cached_gaussian"]))  # fmt: skip
    else:  # written by an earlier version: numpy's own tuple
        np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])


# --------------------------------------------------------------------------- writing
_writes = 0


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``state``, keeping the file it replaces as ``<name>.prev.pt``."""
    global _writes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    except (OSError, RuntimeError) as exc:  # a full disk: torch says "enforce fail at inline_container.cc"
        tmp.unlink(missing_ok=True)  # the checkpoint it replaces stays; no half-written file is left
        raise write_error(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _writes += 1
    if os.environ.get(KILL_HOOK) == str(_writes):  # a kill between writing the new file and renaming it
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if path.exists():
        os.replace(path, previous_of(path))
    os.replace(tmp, path)


def write_error(exc: OSError | RuntimeError, path: Path) -> OSError:
    """``exc`` as an OSError naming ``path`` (the CLI prints it in one line). torch.save reports a full disk as a
    RuntimeError naming no file ("enforce fail at inline_container.cc"): the disk's free space tells which."""
    import errno
    import shutil

    if isinstance(exc, OSError):
        return exc if exc.filename else OSError(exc.errno, exc.strerror or str(exc), str(path))
    try:
        full = shutil.disk_usage(Path(path).parent).free < 64 * 2**20
    except OSError:
        full = False
    why = "no space left on the device" if full else (str(exc).splitlines() or [type(exc).__name__])[0]
    return OSError(errno.ENOSPC if full else errno.EIO, f"could not write ({why})", str(path))


def previous_of(path: Path) -> Path:
    return Path(path).with_name(Path(path).stem + PREVIOUS_SUFFIX)


# --------------------------------------------------------------------------- reading
def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint's state, loaded as data (weights_only). CorruptCheckpoint when it does not load; a one-line
    UserError when its pickle asks for code (a disallowed global): such a file is refused, never run."""
    path = Path(path)
    unsafe = _unsafe_globals(path)
    if unsafe:
        raise UserError(
            f"refusing to load {path}: its pickle would import {', '.join(unsafe)} (a checkpoint is data; "
            "loading it would run code). Use a checkpoint written by vssl, or convert the weights to a plain state dict"
        )
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        wanted = _disallowed_global(str(exc))
        if wanted is not None:
            raise UserError(
                f"refusing to load {path}: its pickle would import {wanted} (a checkpoint is data; loading it "
                "would run code). Use a checkpoint written by vssl, or convert the weights to a plain state dict"
            ) from None
        raise CorruptCheckpoint(
            f"{path} is not a readable checkpoint (truncated, or not written by torch.save)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError):
        raise CorruptCheckpoint(
            f"{path} is not a readable checkpoint (truncated, or not written by torch.save)"
        ) from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(f"{path}: not a checkpoint (a {type(state).__name__}, not a mapping of states)")
    return state


_ALLOWED = {"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct", "numpy.ndarray",
            "numpy.dtype", "numpy.dtypes.UInt32DType"}  # fmt: skip


def _unsafe_globals(path: Path) -> list[str]:
    """Globals the file's pickle would import beyond torch's safe set and our numpy array ones, found by reading
    its opcodes (nothing is executed). [] when there are none or the file is not a readable pickle at all."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except ValueError:  # not written by torch.save: a plain pickle, or garbage
        found = _pickle_globals(path)
    except Exception:  # noqa: BLE001 (unreadable: torch.load below says how)
        return []
    return sorted(g for g in found if g not in _ALLOWED)


def _pickle_globals(path: Path) -> list[str]:
    import pickletools

    names, strings = [], []
    try:
        for op, arg, _ in pickletools.genops(path.read_bytes()):
            if op.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                names.append(".".join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 (not a pickle: garbage, which torch.load reports as such)
        return []
    return names


def _disallowed_global(message: str) -> str | None:
    """The global a weights_only load refused ('posix.system', 'builtins.eval', ...), from torch's message
    (worded differently across torch versions; all name it after 'GLOBAL')."""
    m = re.search(r"GLOBAL ([\w.]+)", message)
    if m:
        return m.group(1)
    return "a disallowed object" if "allowed global" in message or "is blocked" in message else None


def load_latest(
    folder: Path, name: str = "last.pt", map_location: str | torch.device = "cpu", steps: bool = True
) -> dict | None:
    """The state to resume from: ``name``, else (with a warning naming both) its previous copy or (``steps``) the
    newest valid step_N.pt. None when there is no checkpoint at all; a one-line UserError when none loads."""
    folder = Path(folder)
    primary = folder / name
    candidates = [primary, previous_of(primary)]
    if steps:
        kept = folder.glob("step_*.pt")
        candidates += sorted(kept, key=lambda p: int(re.sub(r"\D", "", p.stem) or 0), reverse=True)
    present = [p for p in candidates if p.exists()]
    if not present:
        return None
    problems = []
    for p in present:
        try:
            state = load(p, map_location)
        except CorruptCheckpoint as exc:
            problems.append(str(exc))
            continue
        if p != primary:
            why = problems[0] if problems else f"{primary}: missing"
            log.warning("resuming from %s: %s does not load (%s)", p, primary, why)
            print(f"warning: resuming from {p}, because {primary} does not load ({why})", flush=True)
        return state
    raise UserError(f"no checkpoint in {folder} loads ({'; '.join(problems)}); move them away to start this stage over")
