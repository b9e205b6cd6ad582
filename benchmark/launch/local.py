"""Run a sweep on this machine, cell after cell, skipping complete cells.

Layout of a sweep directory (shared with the SLURM launcher):

    runs/<sweep>/
      sweep.json            name, source file, resources, and every cell: id, label, overrides
      cells/<cell_id>/      one run directory per cell (benchmark.rundir)
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from benchmark.launch.cell import cell_spec, run_cell
from benchmark.rundir import RunDir, atomic_write_text
from benchmark.sweeps import Sweep

MANIFEST = "sweep.json"


def cell_dir(sweep_dir: Path, cell_id: str) -> Path:
    return Path(sweep_dir) / "cells" / cell_id


def write_manifest(sweep: Sweep, extra: dict | None = None) -> Path:
    """Create or extend sweep.json (cells are only ever added, so relaunches keep history)."""
    path = Path(sweep.out_dir) / MANIFEST
    old = json.loads(path.read_text()) if path.exists() else {}
    if old and old.get("name") != sweep.name:
        from benchmark.errors import UserError

        raise UserError(f"{sweep.out_dir} holds sweep '{old.get('name')}', not '{sweep.name}': choose another output folder")
    cells = old.get("cells", {})
    for c in sweep.cells:
        cells.setdefault(c.id, {"label": c.label, "overrides": c.overrides})
    manifest = {
        **old,
        "name": sweep.name,
        "source": str(sweep.path) if sweep.path else None,
        "description": sweep.description,
        "stages": sweep.stages,
        "resources": sweep.resources.__dict__,
        "cells": cells,
        **(extra or {}),
    }
    atomic_write_text(path, json.dumps(manifest, indent=2, default=str))
    return path


def run_local(sweep: Sweep, progress_bar: bool = True, keep_going: bool = True) -> dict[str, str]:
    """Returns {cell_id: 'done' | 'skipped' | 'failed: <reason>'}."""
    write_manifest(sweep)
    outcome: dict[str, str] = {}
    n = len(sweep.cells)
    for i, cell in enumerate(sweep.cells, 1):
        path = cell_dir(sweep.out_dir, cell.id)
        if RunDir(path).is_complete():
            print(f"[{i}/{n}] {cell.id} {cell.label}: complete, skipped", flush=True)
            outcome[cell.id] = "skipped"
            continue
        print(f"[{i}/{n}] {cell.id} {cell.label}", flush=True)
        t0 = time.perf_counter()
        try:
            run_cell(cell_spec(sweep.name, cell, path), progress_bar=progress_bar)
            outcome[cell.id] = "done"
            print(f"[{i}/{n}] {cell.id} done in {time.perf_counter() - t0:.0f} s", flush=True)
        except Exception as exc:  # one bad cell must not sink the sweep
            err = f"{type(exc).__name__}: {exc}"
            (path / "error.txt").parent.mkdir(parents=True, exist_ok=True)
            (path / "error.txt").write_text(traceback.format_exc())
            outcome[cell.id] = f"failed: {err}"
            print(f"[{i}/{n}] {cell.id} FAILED: {err}", flush=True)
            if not keep_going:
                raise
    return outcome
