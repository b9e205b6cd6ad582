"""The committed results/<name>/ folders match the sweeps/<name>.yaml they claim to come from.

A sweep edited without re-running it would leave a committed table describing settings the repository no longer
has (issue 12 part 5: provenance). Each folder's runs.csv must hold exactly the sweep's cells, each run with the
config the sweep resolves to now, all from one clean commit that is an ancestor of the checkout.
"""

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
            if column in runs.columns and not _same(value, row[column]):
                differing.append(f"{cell.label}: {key} = {value!r} in the sweep, {row[column]!r} in runs.csv")
    assert not differing, "\n".join(differing[:10])


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_come_from_one_clean_ancestor_commit(name):
    runs = pd.read_csv(REPO / "results" / name / "runs.csv", dtype=str, keep_default_na=False)
    commits = set(runs["env.git_commit"])
    assert len(commits) == 1 and set(runs["env.git_dirty"]) == {"False"}, (commits, set(runs["env.git_dirty"]))
    (commit,) = commits
    readme = (REPO / "results" / name / "README.md").read_text()
    assert f"from {len(runs)} runs (0 skipped)" in readme  # the README's tables are these runs, none left out
    git = ["git", "-C", str(REPO)]
    if subprocess.run([*git, "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    if subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True).returncode != 0:
        pytest.skip(f"commit {commit[:7]} is not in this clone (shallow?)")
    ancestor = subprocess.run([*git, "merge-base", "--is-ancestor", commit, "HEAD"], capture_output=True)
    assert ancestor.returncode == 0, f"results/{name} was made at {commit[:7]}, which is not an ancestor of HEAD"
