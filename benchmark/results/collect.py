"""Read every run directory of a sweep into one pandas DataFrame: one row per run,
every config field flattened (``cfg.method.name``), every metric (``linear/synthetic/split1.top1``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from benchmark.config import flatten
from benchmark.errors import UserError


def run_dirs(sweep_dir: Path) -> list[Path]:
    sweep_dir = Path(sweep_dir)
    cells = sweep_dir / "cells"
    if cells.is_dir():
        return sorted(p for p in cells.iterdir() if p.is_dir())
    if (sweep_dir / "config.yaml").exists():
        return [sweep_dir]
    return []


def collect(sweep_dir: Path) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """(frame of readable runs, [(run, reason)] of runs skipped as incomplete or corrupt)."""
    from benchmark.rundir import RunDir

    dirs = run_dirs(sweep_dir)
    if not dirs:
        raise UserError(f"{sweep_dir} holds no run directories (expected {sweep_dir}/cells/<id>/)")
    rows, skipped = [], []
    for d in dirs:
        run = RunDir(d)
        status, reason = run.status()
        if status in ("corrupt", "empty"):
            skipped.append((d.name, f"{status}: {reason}"))
            continue
        row = {"run": d.name, "status": status}
        row.update({f"cfg.{k}": v for k, v in flatten(yaml.safe_load((d / "config.yaml").read_text()) or {}).items()})
        for key, entry in run.metrics().items():
            for name, value in entry.items():
                if isinstance(value, (int, float, str, bool)) or value is None:
                    row[f"{key}.{name}"] = value
        env = json.loads((d / "env.json").read_text()) if (d / "env.json").exists() else {}
        row["env.sweep"] = env.get("sweep")
        row["env.git_commit"] = env.get("git_commit")
        if status == "incomplete":
            skipped.append((d.name, f"incomplete: {reason}"))
        rows.append(row)
    return pd.DataFrame(rows), skipped
