"""The committed results/<name>/ folders match the sweeps/<name>.yaml they claim to come from.

A sweep edited without re-running it would leave a committed table describing settings the repository no longer
has (issue 12 part 5: provenance). Each folder's runs.csv must hold exactly the sweep's cells, each run with the
config the sweep resolves to now, all from one clean commit that is an ancestor of the checkout.

One exception, listed in ADDED_SINCE: options a method gained after its committed runs (their runs.csv cells are
empty: the method had no such field then). Each is pinned to the value the runs in fact used, and accepted only
while the sweep resolves to exactly that value; a sweep that sets another value, or a default that moves, needs a
re-run.
"""

import dataclasses
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from benchmark.config import flatten, to_dict
from benchmark.sweeps import load_sweep

REPO = Path(__file__).resolve().parents[2]
COMMITTED = ["table1-mini", "table1-cpu", "hn-ablation-mini"]


def _same(expected, recorded: str) -> bool:
    """runs.csv is text: numbers of a column shared by several methods come back as floats, lists as JSON."""
    if isinstance(expected, str) and expected == "auto":
        return True  # resolved at run time from the data (e.g. clip_len, TCE's K); runs.csv keeps the resolved value
    if expected is None:
        return recorded in ("", "None")
    if isinstance(expected, bool):
        return recorded == str(expected)
    if isinstance(expected, (int, float)):
        try:
            return float(recorded) == pytest.approx(float(expected), rel=1e-9)
        except ValueError:
            return False
    if isinstance(expected, (list, tuple)):
        try:
            return json.loads(recorded) == list(expected)
        except ValueError:
            return False
    return recorded == str(expected)


# What the samplers always ran before methods gained their augmentation fields (2026-12-04): AugmentConfig()'s values.
_AUGMENT_BEFORE_2026_12_04 = {
    "method.crop_scale_min": 0.5, "method.crop_scale_max": 1.0, "method.flip": True, "method.jitter": 0.5,
    "method.hue": 0.25, "method.jitter_p": 0.8, "method.gray_p": 0.5,
}  # fmt: skip
# method -> {key: the value its committed runs used}, for an option a method gained after its committed runs. None
# today: the 2026-12-05 regeneration recorded every field (the augmentation fields of 2026-12-04 and CMC's
# crop_scale_max); the next added option lists its pinned value here until the tables are re-run.
ADDED_SINCE: dict[str, dict[str, object]] = {}


def _added_since(config, key: str, value, recorded: str) -> bool:
    """``key`` is empty in runs.csv because the method gained it later, and the sweep resolves to the pinned value."""
    pinned = ADDED_SINCE.get(config.method.name, {})
    return recorded == "" and key in pinned and value == pinned[key]


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_match_their_sweep(name):
    runs = pd.read_csv(REPO / "results" / name / "runs.csv", dtype=str, keep_default_na=False)
    sweep = load_sweep(REPO / "sweeps" / f"{name}.yaml")
    assert sorted(runs["env.cell_id"]) == sorted(cell.id for cell in sweep.cells), (
        f"results/{name}/runs.csv does not hold exactly the cells of sweeps/{name}.yaml: re-run it"
    )
    by_id = runs.set_index("env.cell_id")
    differing = []
    for cell in sweep.cells:
        row = by_id.loc[cell.id]
        for key, value in flatten(to_dict(cell.config)).items():
            column = f"cfg.{key}"
            if column not in runs.columns or _same(value, row[column]):
                continue
            if not _added_since(cell.config, key, value, row[column]):
                differing.append(f"{cell.label}: {key} = {value!r} in the sweep, {row[column]!r} in runs.csv")
    assert not differing, "\n".join(differing[:10])


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_come_from_one_clean_ancestor_commit(name):
    runs = pd.read_csv(REPO / "results" / name / "runs.csv", dtype=str, keep_default_na=False)
    commits = set(runs["env.git_commit"])
    assert len(commits) == 1 and set(runs["env.git_dirty"]) == {"False"}, (commits, set(runs["env.git_dirty"]))
    (commit,) = commits
    readme = (REPO / "results" / name / "README.md").read_text()
    # the README's tables are these runs, none left out, and its header names their commit
    assert f"from {len(runs)} runs (0 skipped; the runs' code at commit `{commit[:12]}`" in readme
    git = ["git", "-C", str(REPO)]
    if subprocess.run([*git, "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    if subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True).returncode != 0:
        pytest.skip(f"commit {commit[:7]} is not in this clone (shallow?)")
    ancestor = subprocess.run([*git, "merge-base", "--is-ancestor", commit, "HEAD"], capture_output=True)
    assert ancestor.returncode == 0, f"results/{name} was made at {commit[:7]}, which is not an ancestor of HEAD"


def test_an_option_added_since_the_run_is_accepted_only_at_its_pinned_value(monkeypatch):
    from benchmark.config import load_config

    monkeypatch.setitem(ADDED_SINCE, "shuffle_learn", _AUGMENT_BEFORE_2026_12_04)  # as it stood on 2026-12-04

    sl = load_config({}, ["method.name=shuffle_learn"])
    sl_changed = load_config({}, ["method.name=shuffle_learn", "method.jitter=0"])
    tce = load_config({}, ["method.name=tce"])
    assert _added_since(sl, "method.jitter", sl.method.jitter, "")
    assert not _added_since(sl_changed, "method.jitter", 0.0, "")  # set by the sweep: the run cannot show it
    assert not _added_since(sl, "method.jitter", sl.method.jitter, "0.4")  # recorded, and different: a real change
    assert not _added_since(sl, "method.window", sl.method.window, "")  # always existed: an empty cell is broken data
    assert not _added_since(tce, "method.jitter", tce.method.jitter, "")  # TCE always had it


def test_the_augmentation_fields_default_to_what_their_methods_ran_before():
    from benchmark.data.transforms import AugmentConfig, AugmentFields

    assert AugmentFields().augment() == AugmentConfig()
    pinned = {f"method.{k}": v for k, v in dataclasses.asdict(AugmentFields()).items()}
    assert pinned == _AUGMENT_BEFORE_2026_12_04
