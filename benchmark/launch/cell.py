"""One sweep cell, start to end: every stage its config asks for, skipping stages already done.

``run_cell`` is what every launcher executes (in process, submitit local or
SLURM): it takes a plain dict so it pickles cheaply.
"""

from __future__ import annotations

import logging
from pathlib import Path

from benchmark.config import build_experiment, config_hash
from benchmark.rundir import RunDir, stage_key

log = logging.getLogger(__name__)


def cell_spec(sweep_name: str, cell, run_path: Path) -> dict:
    return {"sweep": sweep_name, "cell_id": cell.id, "tree": cell.tree, "run_path": str(run_path), "label": cell.label}


def run_cell(spec: dict, progress_bar: bool = True) -> dict:
    from benchmark.evaluation import evaluate
    from benchmark.train import pretrain

    cfg = build_experiment(spec["tree"])
    run = RunDir(Path(spec["run_path"])).create()
    old = run.env().get("config_hash")
    new = config_hash(cfg)
    if old and old != new:
        log.warning("cell %s: resolved config changed since its first launch (%s -> %s)", spec["cell_id"], old, new)
        run.update_env(config_hash=new, config_hash_previous=old)
    done = run.metrics() if (run.path / "metrics.json").exists() else {}
    results = {}
    for stage in cfg.run.stages:
        key = stage_key(stage, cfg.eval.dataset, cfg.eval.split)
        if key in done:
            results[key] = "skipped (done)"
            continue
        if stage == "pretrain":
            entry = pretrain(run, cfg, spec["tree"], spec.get("sweep"), spec.get("cell_id"), progress_bar=progress_bar)
        else:
            if "pretrain" not in run.metrics():
                pretrain(run, cfg, spec["tree"], spec.get("sweep"), spec.get("cell_id"), progress_bar=progress_bar)
            entry = evaluate(run, cfg, stage, progress_bar=progress_bar)
        results[key] = {k: v for k, v in entry.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return results
