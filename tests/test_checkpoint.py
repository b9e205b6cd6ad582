"""Checkpoint files (benchmark/checkpoint.py): atomic writes keeping the previous file, safe (weights-only)
loading that never runs a pickle's code, recovery from a damaged last.pt."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import checkpoint
from benchmark.checkpoint import CorruptCheckpoint, load, load_latest, previous_of, save
from benchmark.errors import UserError

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """A pickle that, when loaded unsafely, creates a file (what a malicious shared checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.pt"
    save(path, {"step": 1})
    save(path, {"step": 2})
    assert load(path)["step"] == 2 and load(previous_of(path))["step"] == 1
    assert previous_of(path).name == "last.prev.pt" and not list(tmp_path.glob("*.tmp"))


def test_rng_state_round_trips_as_plain_data(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save(tmp_path / "c.pt", {"rng": checkpoint.rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(()).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    checkpoint.set_rng_state(load(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(()).item()) == expected


def test_checkpoints_of_earlier_versions_still_load(tmp_path):
    """Earlier versions stored numpy's RNG state as an array: the array's own globals are allowed."""
    old = {"rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}}
    torch.save({"step": 4, **old}, tmp_path / "old.pt")
    state = load(tmp_path / "old.pt")
    checkpoint.set_rng_state(state["rng"])
    assert state["step"] == 4


@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused_and_never_run(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if kind == "torch.save":
        torch.save({"model": Payload(marker)}, path)
    else:
        import pickle

        path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    with pytest.raises(UserError, match=r"refusing to load .*evil.pt: its pickle would import posix.system"):
        load(path)
    assert not marker.exists()


def test_the_weights_only_load_refuses_a_payload_the_opcode_scan_missed(tmp_path, monkeypatch):
    """Two lines of defence: with the opcode scan blinded, torch's weights-only load still refuses the payload."""
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"model": Payload(marker)}, path)
    monkeypatch.setattr(checkpoint, "_unsafe_globals", lambda path: [])
    with pytest.raises(UserError, match=r"refusing to load .*evil.pt: its pickle would import .*system"):
        load(path)
    assert not marker.exists()


def test_a_file_that_is_not_a_mapping_of_states_is_corrupt(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CorruptCheckpoint, match="not a checkpoint \\(a list, not a mapping of states\\)"):
        load(tmp_path / "list.pt")


def test_garbage_and_truncated_files_are_corrupt_not_crashes(tmp_path):
    save(tmp_path / "good.pt", {"w": torch.ones(100)})
    (tmp_path / "cut.pt").write_bytes((tmp_path / "good.pt").read_bytes()[:200])
    (tmp_path / "junk.pt").write_bytes(b"hello world")
    for name in ("cut.pt", "junk.pt"):
        with pytest.raises(CorruptCheckpoint, match="is not a readable checkpoint"):
            load(tmp_path / name)


def test_load_latest_falls_back_with_a_warning_and_never_silently_to_step_0(tmp_path, capsys):
    assert load_latest(tmp_path) is None  # nothing there: a fresh start
    save(tmp_path / "step_2.pt", {"step": 2})
    save(tmp_path / "step_4.pt", {"step": 4})
    save(tmp_path / "last.pt", {"step": 8})
    (tmp_path / "last.pt").write_bytes(b"garbage")
    assert load_latest(tmp_path)["step"] == 4  # no last.prev.pt: the newest valid step_N.pt (not step_2)
    (tmp_path / "step_2.pt").unlink()
    assert "resuming from" in capsys.readouterr().out
    (tmp_path / "step_4.pt").write_bytes(b"garbage too")
    with pytest.raises(UserError, match="no checkpoint in .* loads"):
        load_latest(tmp_path)


def test_vssl_evaluate_refuses_a_planted_payload_in_one_line(synth_data_home, tmp_path):
    """A run directory whose last.pt was replaced by a pickle that creates a file: exit 2, one line, no file."""
    from tests.evaluation.conftest import make_run

    run = make_run(tmp_path / "run").path
    marker = tmp_path / "created-by-the-pickle"
    torch.save({"backbone": Payload(marker), "step": 0}, run / "checkpoints" / "last.pt")
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "evaluate", str(run), "--protocol", "linear", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "VSSL_DATA": str(synth_data_home)},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "refusing to load" in done.stderr
    assert not marker.exists()


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_half_file(tmp_path, monkeypatch):
    """torch.save on a full disk raises RuntimeError("[enforce fail at inline_container.cc:672] ...") naming no
    file: save() removes its half-written .tmp, keeps the checkpoint it would replace, and raises an OSError
    naming the checkpoint (the CLI prints it in one line)."""
    import errno
    import shutil

    path = tmp_path / "last.pt"
    save(path, {"step": 1})

    def full(*a, **k):
        Path(tmp_path / "last.pt.tmp").write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(OSError) as exc:
        save(path, {"step": 2})
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(path)
    assert "no space left" in exc.value.strerror
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert load(path)["step"] == 1
