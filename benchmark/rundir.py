"""The run directory: the unit every stage reads and writes (docs/run-directory.md).

    RUN/
      config.yaml        fully resolved ExperimentConfig
      overrides.yaml     only what this run set explicitly
      env.json           git commit + dirty flag, package versions, host, device, seed,
                         sweep name + cell id, config hash, start/end times
      scalars.jsonl      one JSON line per logged step: {"step", "epoch", "stage", name: value, ...}
      checkpoints/last.pt        everything needed to resume exactly
      checkpoints/step_N.pt      optional, for evaluation over training
      metrics.json       {metrics key: {...}}, written atomically (benchmark.keys); keys:
                         "pretrain", "<protocol>/<dataset>/split<N>" (e.g. "linear/synthetic/split1")

A run is *complete* when every stage its config asks for has an entry in
metrics.json, *corrupt* when metrics.json (or config.yaml) does not parse.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from benchmark.errors import UserError
from benchmark.keys import LAST, evaluated_steps, required_keys

CONFIG = "config.yaml"
OVERRIDES = "overrides.yaml"
ENV = "env.json"
SCALARS = "scalars.jsonl"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"

Status = Literal["complete", "incomplete", "corrupt", "empty"]


def missing_keys(metrics: dict, required: list[str]) -> list[str]:
    """The required metrics keys a run has not written yet: the one completeness rule (runs and sweep cells)."""
    return [k for k in required if k not in metrics]


def _file_mode() -> int:
    """What open() would give a new file under the process's umask (read once, at import: umask is process-wide)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, rename: readers never see half a file. The file gets the
    umask's usual mode (mkstemp's temp files are 0600: collaborators could not read runs or reports)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk raises from write() without a file name: name the file being written
        Path(tmp).unlink(missing_ok=True)
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def update_lock(folder: Path) -> Iterator[None]:
    """Holds ``folder``'s update lock (waiting for it): read-modify-write updates of its JSON files (metrics.json,
    env.json, sweep.json) run one at a time across processes, so two `vssl evaluate` of one run, or a sweep cell
    and an evaluate, or two sweep processes, each keep the other's entries. Each write stays atomic as well."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(folder) / UPDATE_LOCK, os.O_CREAT | os.O_RDWR, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


UPDATE_LOCK = ".update.lock"
# what a run directory holds (tb/: TensorBoard, cache/: evaluation features, error.txt: a failed cell's traceback)
RUN_ENTRIES = {CONFIG, OVERRIDES, ENV, SCALARS, METRICS, CHECKPOINTS, ".lock", UPDATE_LOCK, "tb", "cache", "error.txt"}


def check_run_target(path: Path, option: str = "--out") -> None:
    """A run is written into a new folder, an empty one or a run directory (to resume it): never into a folder
    holding anything else (a sweep folder, a dataset, notes), whose files it would mix with its own and whose
    readers (``vssl table`` on a sweep) it would confuse."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file: a run directory is a folder (choose a new one)")
    if not path.is_dir() or (path / CONFIG).exists():  # new, or a run directory whatever its tools added to it
        return  # (wandb/, trajectories.png, report/)
    foreign = sorted(p.name for p in path.iterdir() if p.name not in RUN_ENTRIES and not p.name.startswith("."))
    if foreign:
        raise UserError(
            f"{option} {path} already holds other things ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}), "
            "not a run directory: choose a new or empty folder"
        )


class CorruptRun(UserError):
    """A run folder's file exists but does not parse (truncated JSON, broken YAML): one line naming the file."""


def config_text(path: Path) -> str:
    """A run's config.yaml as text; CorruptRun when it is not UTF-8 or empty (a run writes its config first and
    whole, so an empty one is not a run's). FileNotFoundError passes through. The one reading of that file that
    RunDir, the results collector and ``vssl status`` share (the last two skip the YAML parse for speed)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptRun(f"{path} is not UTF-8 text (byte offset {exc.start})") from None
    if not text.strip():
        raise CorruptRun(f"{path} is empty")
    return text


# What a sweep folder holds besides its cells' run directories (benchmark.launch): never an --out of another command
SWEEP_ENTRIES = {"sweep.json", "jobs.json", "cells", "slurm", UPDATE_LOCK}


def harness_owned(path: str | Path) -> str:
    """'' or why ``path`` is a file a run directory or sweep folder keeps for itself (metrics.json, config.yaml,
    sweep.json, ...): a command's --out must not replace it (`vssl table --out RUN/metrics.json`)."""
    path = Path(path)
    parent = path.parent
    if path.name in RUN_ENTRIES and (parent / CONFIG).is_file():
        return f"{path} is the run directory {parent}'s own {path.name}"
    if path.name in SWEEP_ENTRIES and (parent / "sweep.json").is_file():
        return f"{path} is the sweep folder {parent}'s own {path.name}"
    return ""


# Figures that tables, reports and plots compute with: a number (or null) wherever an entry has them
NUMBER_FIELDS = frozenset(
    "top1 top5 train_top1 wall_s params_millions final_loss steps value margin checkpoint_step epochs "
    "data_wait_fraction samples_per_s r@1 r@5 r@10 r@20 r@50".split()
)


def metrics_problem(metrics: dict) -> str:
    """'' for a well-formed metrics.json object, else what is wrong with it: an entry that is not an object, or a
    figure that is not a number (a hand edit). Shared by RunDir.metrics and the results collector, so that
    `vssl status` and `vssl table` call the same runs corrupt."""
    for key, entry in metrics.items():
        if not isinstance(entry, dict):
            return f"entry '{key}' is {entry!r:.40}, not an object of its figures"
        stack = [(key, entry)]
        while stack:
            prefix, tree = stack.pop()
            for name, value in tree.items():
                if isinstance(value, dict):
                    stack.append((f"{prefix}.{name}", value))
                elif name in NUMBER_FIELDS and value is not None and not _is_number(value):
                    return f"'{prefix}.{name}' is {value!r:.40}, not a number"
    return ""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # ---------------------------------------------------------------- writing
    def create(self) -> RunDir:
        (self.path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, resolved: dict, explicit: dict) -> None:
        atomic_write_text(self.path / CONFIG, yaml.safe_dump(resolved, sort_keys=False))
        atomic_write_text(self.path / OVERRIDES, yaml.safe_dump(explicit, sort_keys=False))

    def update_env(self, **fields: Any) -> dict:
        with update_lock(self.path):
            env = self.env()
            env.update(fields)
            atomic_write_text(self.path / ENV, json.dumps(env, indent=2, sort_keys=True, default=str))
        return env

    def log_scalars(self, records: Iterable[dict]) -> None:
        with open(self.path / SCALARS, "a") as f:
            for rec in records:
                f.write(json.dumps(rec, default=float) + "\n")
            f.flush()

    def truncate_scalars(self, stage: str, after_step: int) -> None:
        """On resume: drop lines of ``stage`` logged after the checkpoint, so curves have no duplicates."""
        path = self.path / SCALARS
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if rec.get("stage") == stage and rec.get("step", 0) > after_step:
                continue
            kept.append(line)
        atomic_write_text(path, "".join(k + "\n" for k in kept))

    def add_metrics(self, key: str, entry: dict) -> None:
        with update_lock(self.path):
            metrics = self.metrics()
            metrics[key] = entry
            atomic_write_text(self.path / METRICS, json.dumps(metrics, indent=2, sort_keys=True, default=float))

    # ---------------------------------------------------------------- reading
    def stamp_end(self) -> None:
        """env.json's end_time: now (pre-training stamps it at its end, a sweep cell again after its evaluations)."""
        self.update_env(end_time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def config(self) -> dict:
        try:
            tree = yaml.safe_load(config_text(self.path / CONFIG)) or {}
            if not isinstance(tree, dict):
                raise CorruptRun(
                    f"{self.path / CONFIG}: expected a mapping of config sections, got {type(tree).__name__}"
                )
            odd = next((k for k, v in tree.items() if not isinstance(v, dict)), None)
            if odd is not None:  # a hand edit such as `method: tce`
                raise CorruptRun(f"{self.path / CONFIG}: section '{odd}' is {tree[odd]!r}, not a mapping of its keys")
            return tree
        except FileNotFoundError:
            return {}
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptRun(f"{self.path / CONFIG} is not valid YAML ({first})") from None

    def overrides(self) -> dict:
        path = self.path / OVERRIDES
        return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}

    def env(self) -> dict:
        path = self.path / ENV
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptRun(f"{path}: does not parse ({exc})") from None

    def metrics(self) -> dict:
        path = self.path / METRICS
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptRun(f"{path}: does not parse ({exc})") from None
        if not isinstance(data, dict):
            raise CorruptRun(f"{path}: expected an object of stage entries")
        problem = metrics_problem(data)
        if problem:
            raise CorruptRun(f"{path}: {problem}")
        return data

    def finished_pretraining(self) -> bool:
        """Whether pre-training has ended. Its metrics entry is written once, at the stage's end, while last.pt exists
        from the first checkpoint on: only a finished run's last.pt holds the weights its config describes."""
        return "pretrain" in self.metrics()

    def scalars(self) -> list[dict]:
        path = self.path / SCALARS
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def checkpoint_path(self, name: str = LAST) -> Path:
        return self.path / CHECKPOINTS / name

    # ---------------------------------------------------------------- status
    def required_stages(self) -> list[str]:
        cfg = self.config()
        run, ev = cfg.get("run", {}), cfg.get("eval", {})
        steps = evaluated_steps(run, cfg.get("optim", {}))
        return required_keys(run.get("stages", []), ev.get("dataset"), ev.get("split"), steps)

    def status(self) -> tuple[Status, str]:
        """('complete'|'incomplete'|'corrupt'|'empty', reason)."""
        if not (self.path / CONFIG).exists():
            return "empty", "no config.yaml"
        try:
            required = self.required_stages()
            metrics = self.metrics()
        except CorruptRun as exc:
            return "corrupt", str(exc)
        missing = missing_keys(metrics, required)
        if missing:
            return "incomplete", "missing stages: " + ", ".join(missing)
        return "complete", ""

    def is_complete(self) -> bool:
        return self.status()[0] == "complete"


# --------------------------------------------------------------------------- provenance
def git_state(cwd: Path | None = None, exclude: Path | Sequence[Path] | None = None) -> dict:
    """The commit of the code and whether tracked files differ from it (``exclude``: folders whose changes do not
    count, e.g. the report folder being written and the other committed results)."""
    cwd = cwd or Path(__file__).resolve().parent
    folders = [] if exclude is None else [exclude] if isinstance(exclude, (str, Path)) else list(exclude)
    spec = ["--", ":/", *(f":(exclude){Path(f).resolve()}" for f in folders)] if folders else []
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            # --no-optional-locks: a read-only query; a killed `git status` would otherwise leave .git/index.lock
            # behind and block the user's next commit
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no", *spec],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return {"git_commit": commit or None, "git_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def package_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("vssl-bench", "torch", "torchvision", "timm", "av", "torchcodec", "numpy", "submitit"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _cpu() -> dict:
    from benchmark.device import cpu_features  # torch: only when a run is written

    return cpu_features()


def base_env(
    seed: int, device: str, sweep: str | None = None, cell_id: str | None = None, config_hash: str | None = None
) -> dict:
    return {
        **git_state(),
        "packages": package_versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        **_cpu(),
        "device": device,
        "seed": seed,
        "sweep": sweep,
        "cell_id": cell_id,
        "config_hash": config_hash,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "start_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
