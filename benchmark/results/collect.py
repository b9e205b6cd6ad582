"""Read every run directory of a sweep into one pandas DataFrame.

One row per run: ``run`` (folder name), ``status``, every config field
flattened (``cfg.method.name``), provenance from env.json (``env.sweep``,
``env.git_commit``, ``env.packages.torch``...) and every scalar metric field
(``linear/synthetic/split1.top1``, ``pretrain.wall_s``). Lists such as
``per_video_correct`` stay out of the frame; they are kept per (run, metric
key) in :attr:`Collection.per_video` for the paired test.

Runs whose files do not parse (corrupt) or that have no config (empty) are
listed in :attr:`Collection.skipped` and never read; incomplete runs are
listed and skipped too unless asked for. Runs of different sweeps are refused
unless ``allow_mixed``: a table pooling two sweeps would silently compare
different experiments.

Evaluation keys are ``<protocol>/<dataset>/split<N>``; an evaluation of an
intermediate checkpoint adds a suffix (``linear/synthetic/split1@step_200``)
and its entry's ``checkpoint_step`` says where in pre-training it was taken.
Tables read the suffix-free keys; the over-training plots read the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.config import flatten
from benchmark.errors import UserError
from benchmark.keys import MetricsKey, Stage
from benchmark.rundir import CONFIG, ENV, METRICS, CorruptRun, config_text, metrics_problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster on 1,000 configs
ENV_FIELDS = (
    "sweep",
    "cell_id",
    "git_commit",
    "git_dirty",
    "host",
    "platform",
    "python",
    "cpu_count",
    "cpu_model",
    "cpu_flags",
    "cpu_capability",
    "device",
    "autocast",
    "seed",
    "config_hash",
    "config_hash_previous",
    "slurm_job_id",
    "start_time",
    "end_time",
)


def parse_eval_key(key: str) -> MetricsKey | None:
    """'linear/synthetic/split1' -> its MetricsKey; None for 'pretrain' and other non-evaluation keys."""
    parsed = MetricsKey.parse(key)
    return parsed if parsed is not None and parsed.is_evaluation else None


@dataclass
class Collection:
    source: Path
    runs: pd.DataFrame  # one row per run read
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (run, "status: reason")
    per_video: dict[tuple[str, str], tuple[list, list]] = field(default_factory=dict)  # (run, key) -> (ids, correct)
    paths: dict[str, Path] = field(default_factory=dict)  # run -> its directory
    manifest: dict = field(default_factory=dict)  # sweep.json, when the folder is a sweep
    # cells submitted to SLURM (jobs.json) that have no run folder: queued, cancelled or failed before they began,
    # or moved away (not sweep.json's: it keeps cells a sweep file has since dropped, which never run again)
    unstarted: list[str] = field(default_factory=list)

    def unstarted_note(self) -> str:
        """One sentence for a table or report that would otherwise not show that cells are missing ('' if none)."""
        if not self.unstarted:
            return ""
        n, many = len(self.unstarted), len(self.unstarted) > 1
        return (f"{n} cell{'s' if many else ''} submitted to SLURM {'have' if many else 'has'} no run folder (queued, "
                f"cancelled or failed before starting, or moved away: `vssl status {self.source}` says which), so "
                f"no row counts {'them' if many else 'it'}")  # fmt: skip

    @property
    def sweeps(self) -> list[str]:
        if "env.sweep" not in self.runs:
            return []
        return sorted({str(s) for s in self.runs["env.sweep"].dropna()})

    def cell_entries(self) -> dict[str, dict | None]:
        """run -> its cell entry in sweep.json (label, overrides, ...), None when not a cell of the manifest."""
        cells = self.manifest.get("cells")
        cells = cells if isinstance(cells, dict) else {}
        return {run: cells.get(cid) for run, cid in self.cell_ids().items()}

    def cell_ids(self) -> dict[str, str]:
        """run -> its sweep cell id (env.json's cell_id, else the folder name)."""
        ids = self.runs.get("env.cell_id", pd.Series(None, index=self.runs.index))
        return {
            run: str(cid) if isinstance(cid, str) and cid else run.rsplit("/", 1)[-1]
            for run, cid in zip(self.runs["run"], ids, strict=True)
        }

    def axes(self) -> set[str] | None:
        """Config fields (``cfg.*``) a cell of the sweep sets itself (grid/zip values), from sweep.json: what may
        legitimately differ between the rows of a table. None when some run is not a cell of the manifest."""
        axes: set[str] = set()
        for entry in self.cell_entries().values():
            if not isinstance(entry, dict) or not isinstance(entry.get("overrides"), dict):
                return None
            axes |= {f"cfg.{k}" for k in flatten(entry["overrides"])}
        return axes

    def eval_keys(self) -> list[str]:
        """Metric keys of evaluations present in the frame (final and intermediate checkpoints)."""
        keys = {c.rsplit(".", 1)[0] for c in self.runs.columns if not c.startswith(("cfg.", "env.")) and "." in c}
        return sorted(k for k in keys if parse_eval_key(k))


def run_dirs(sweep_dir: Path) -> list[Path]:
    """Run directories under a sweep folder (cells/<id>/), a single run, or a folder of sweeps."""
    sweep_dir = Path(sweep_dir)
    if (sweep_dir / CONFIG).exists():
        return [sweep_dir]
    cells = sweep_dir / "cells"
    if cells.is_dir():
        return sorted(p for p in cells.iterdir() if p.is_dir())
    found: list[Path] = []
    for child in sorted(p for p in sweep_dir.iterdir() if p.is_dir()) if sweep_dir.is_dir() else []:
        if (child / "cells").is_dir():
            found += sorted(p for p in (child / "cells").iterdir() if p.is_dir())
        elif (child / CONFIG).exists():
            found.append(child)
    return found


class _Corrupt(Exception):
    pass


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Corrupt(f"{path.name} does not parse ({exc})") from None


def read_run(path: Path) -> tuple[str, str, dict, dict, dict]:
    """(status, reason, config, env, metrics), reading each file once.

    The status rule is RunDir.status()'s (docs/run-directory.md); this reader
    exists because a collector reads 1,000 runs and RunDir parses config.yaml twice.
    """
    cfg_path = path / CONFIG
    if not cfg_path.exists():
        return "empty", "no config.yaml", {}, {}, {}
    try:
        try:
            text = config_text(cfg_path)
        except CorruptRun as exc:
            raise _Corrupt(f"config.yaml {str(exc).removeprefix(str(cfg_path)).strip()}") from None
        try:
            cfg = yaml.load(text, Loader=_Loader) or {}
        except yaml.YAMLError as exc:
            raise _Corrupt(f"config.yaml does not parse ({str(exc).splitlines()[0]})") from None
        if not isinstance(cfg, dict):
            raise _Corrupt("config.yaml is not a mapping")
        metrics = _read_json(path / METRICS) or {}
        if not isinstance(metrics, dict):
            raise _Corrupt("metrics.json is not an object of stage entries")
        problem = metrics_problem(metrics)
        if problem:
            raise _Corrupt(f"metrics.json: {problem}")
        env = _read_json(path / ENV) or {}
        if not isinstance(env, dict):
            raise _Corrupt("env.json is not an object")
    except _Corrupt as exc:
        return "corrupt", str(exc), {}, {}, {}
    ev = cfg.get("eval") or {}
    required = [
        str(Stage.parse(s).key(ev.get("dataset"), ev.get("split"))) for s in (cfg.get("run") or {}).get("stages", [])
    ]
    missing = [k for k in required if k not in metrics]
    if missing:
        return "incomplete", "missing stages: " + ", ".join(missing), cfg, env, metrics
    return "complete", "", cfg, env, metrics


def _cell(value: Any) -> Any:
    """Frame cells hold scalars; lists (e.g. knn_ks) become their JSON text so they can be grouped and saved."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return value


def _flat(tree: dict, prefix: str, out: dict) -> dict:
    """config.flatten for parsed JSON/YAML (plain dicts only): several times faster on 1,000 runs."""
    for key, value in tree.items():
        if type(value) is dict and value:
            _flat(value, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = value
    return out


def run_row(name: str, status: str, cfg: dict, env: dict, metrics: dict) -> tuple[dict, dict]:
    """(frame row, {metric key: (ids, correct)})."""
    row: dict[str, Any] = {"run": name, "status": status}
    row.update({k: _cell(v) for k, v in _flat(cfg, "cfg.", {}).items()})
    for k in ENV_FIELDS:
        row[f"env.{k}"] = _cell(env.get(k))
    for pkg, version in (env.get("packages") or {}).items():
        row[f"env.packages.{pkg}"] = version
    for part, fields in (env.get("code") or {}).items():  # where the method's and sampler's code came from
        for key, value in (fields or {}).items():
            row[f"env.code.{part}.{key}"] = value
    per_video = {}
    for key, entry in metrics.items():
        for fname, value in _flat(entry, f"{key}.", {}).items():
            if isinstance(value, (list, tuple, dict)):
                continue  # per-video lists are kept beside the frame
            row[fname] = value
        if isinstance(entry.get("per_video_correct"), list) and isinstance(entry.get("test_video_ids"), list):
            per_video[key] = (entry["test_video_ids"], entry["per_video_correct"])
    return row, per_video


def _submitted_cells(sweep_dir: Path) -> list[str]:
    """The cell ids jobs.json records a job for; [] without one, or when it does not parse (a table still reads)."""
    from benchmark.launch.slurm import read_jobs

    try:
        return list(read_jobs(sweep_dir)["cells"])
    except UserError:
        return []


def collect(sweep_dir: Path, allow_mixed: bool = False, include_incomplete: bool = False) -> Collection:
    """Read a sweep folder (or one run, or a folder of sweeps). UserError when nothing usable is there."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.exists():
        raise UserError(f"{sweep_dir} does not exist")
    dirs = run_dirs(sweep_dir)
    if not dirs:
        raise UserError(f"{sweep_dir} holds no run directories (expected {sweep_dir}/cells/<id>/ with a config.yaml)")
    manifest = _read_manifest(sweep_dir)
    rows, skipped, per_video, paths = [], [], {}, {}
    for d in dirs:
        # a cell of this sweep: its id; a run of a folder of sweeps: its path below it (two sweeps may share an id)
        name = d.name if d == sweep_dir or d.parent == sweep_dir / "cells" else d.relative_to(sweep_dir).as_posix()
        status, reason, cfg, env, metrics = read_run(d)
        if status in ("corrupt", "empty") or (status == "incomplete" and not include_incomplete):
            skipped.append((name, f"{status}: {reason}"))
            continue
        row, pv = run_row(name, status, cfg, env, metrics)
        rows.append(row)
        paths[name] = d
        per_video.update({(name, k): v for k, v in pv.items()})
    if not rows:
        shown = "; ".join(f"{n} ({r})" for n, r in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        hint = "; --include-incomplete shows incomplete runs" if any("incomplete" in r for _, r in skipped) else ""
        raise UserError(f"{sweep_dir}: none of its {len(dirs)} run directories is usable: {shown}{hint}")
    cells, submitted = sweep_dir / "cells", _submitted_cells(sweep_dir)
    unstarted = [c for c in submitted if cells.is_dir() and not (cells / c).is_dir()]
    coll = Collection(sweep_dir, pd.DataFrame(rows), skipped, per_video, paths, manifest, unstarted)
    check_single_sweep(coll, allow_mixed)
    return coll


def _read_manifest(sweep_dir: Path) -> dict:
    try:
        data = _read_json(sweep_dir / "sweep.json")
    except _Corrupt:
        raise UserError(f"{sweep_dir}/sweep.json does not parse") from None
    return data if isinstance(data, dict) else {}


def check_single_sweep(coll: Collection, allow_mixed: bool) -> None:
    """Refuse runs of several sweeps (by env.json 'sweep', and sweep.json's name) unless allowed."""
    if allow_mixed:
        return
    names = set(coll.runs["env.sweep"].fillna("(no sweep)").astype(str))
    if coll.manifest.get("name"):
        names.add(str(coll.manifest["name"]))
    if len(names) > 1:
        counts = coll.runs["env.sweep"].fillna("(no sweep)").astype(str).value_counts()
        listed = ", ".join(f"'{n}' ({counts.get(n, 0)} runs)" for n in sorted(names))
        raise UserError(
            f"{coll.source} mixes runs of different sweeps: {listed}; pass --allow-mixed to pool them anyway"
        )
