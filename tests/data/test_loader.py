"""The loader under broken files: replaced, counted and named; a run completes, or stops past the threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data.loader import SampledVideos, StepBatches, make_loader
from benchmark.data.samplers import build_sampler
from benchmark.errors import UserError
from tests.data import fixtures


def _pool(root: Path, good: int, broken: list[str]) -> Path:
    """A class-per-folder set: ``good`` fine videos and one broken file per kind in ``broken``."""
    for i in range(good):
        fixtures.write_video(root / f"c{i % 2}" / f"good{i}.avi", 8, seed=i)
    for k, kind in enumerate(broken):
        if kind == "missing":
            continue
        fixtures.write_broken(root / "c0" / f"a_bad{k}.avi", kind, donor=root / "c0" / "good0.avi")  # sorted first
    return root


def test_bad_videos_are_replaced_and_named(tmp_path):
    from benchmark.data.index import build_index
    from benchmark.paths import DatasetLocation

    root = _pool(tmp_path / "pool", 4, ["zero", "text", "truncated"])
    records = build_index(DatasetLocation("p", root, "folder")).records
    assert len(records) == 7
    dataset = SampledVideos(records, build_sampler("clip", resolution=16, clip_len=2, stride=1), decoder="pyav", seed=0)
    names = [Path(r.path).name for r in records]
    sample = dataset[(0, 0, names.index("a_bad0.avi"))]  # a_bad0, a_bad1, a_bad2 then good0
    assert [b.split(":")[0] for b in sample["bad"]] == [r.path for r in records[:3]]
    assert "empty file" in sample["bad"][0]
    assert int(sample["index"]) == 3 and sample["clip"].shape == (2, 3, 16, 16)
    loader = make_loader(dataset, StepBatches(len(records), 7, 1, seed=0))
    (batch,) = list(loader)
    assert len(batch["bad"]) >= 3 and batch["clip"].shape[0] == 7  # every bad file seen once at least, batch full


@pytest.fixture
def one_thread():
    """Tiny steps on a shared 2-core machine: a second intra-op thread only spins (10x slower under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pretrain(tmp_path, monkeypatch, root: Path, steps: int, max_bad: float, heldout: int = 0) -> dict:
    from benchmark.config import build_experiment
    from benchmark.rundir import RunDir
    from benchmark.train import pretrain

    paths = tmp_path / "paths.yaml"
    paths.write_text(f"datasets:\n  messy: {{root: {root}, format: folder}}\n")
    monkeypatch.setenv("VSSL_PATHS", str(paths))
    tree = {
        "data": {
            "dataset": "messy",
            "resolution": 16,
            "decoder": "pyav",
            "max_bad_fraction": max_bad,
            "pretext_heldout": heldout,
        },
        "backbone": {"name": "resnet10t"},
        "method": {"name": "tce", "negatives": 1, "embed_dim": 16},
        "optim": {"batch_size": 2, "steps": steps, "lr": 0.01},
        "run": {"device": "cpu", "precision": "fp32", "log_every": 1, "checkpoint_every": 100, "stages": ["pretrain"]},
    }
    return pretrain(RunDir(tmp_path / "run"), build_experiment(tree), tree, progress_bar=False)


@pytest.mark.slow
def test_run_with_a_few_broken_files_completes(tmp_path, monkeypatch, capsys, one_thread):
    root = _pool(tmp_path / "pool", 10, ["zero", "truncated", "text"])
    entry = _pretrain(tmp_path, monkeypatch, root, steps=7, max_bad=0.5)  # 14 samples: every video at least once
    assert entry["steps"] == 7 and entry["bad_samples"] >= 3
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["pretrain"]["bad_samples"] == entry["bad_samples"]
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    assert logged.count("warning: skipped bad sample") == entry["bad_samples"] and "a_bad1.avi" in logged


@pytest.mark.slow
def test_run_past_the_bad_fraction_stops_with_a_clear_message(tmp_path, monkeypatch, one_thread):
    root = _pool(tmp_path / "pool", 3, ["zero", "text", "truncated", "random", "zero", "text"])
    with pytest.raises(UserError, match=r"failed to decode \(> data.max_bad_fraction=0.1\); run `vssl check-data`"):
        _pretrain(tmp_path, monkeypatch, root, steps=12, max_bad=0.1)  # checked from 10 batches on


@pytest.mark.slow
def test_broken_heldout_videos_skip_the_pretext_check_not_the_run(tmp_path, monkeypatch, one_thread):
    """The held-out videos are the hash-first ones; here they are all broken: the run completes and says why
    its pretext was not checked, rather than dying in the check."""
    from benchmark import train

    root = _pool(tmp_path / "pool", 8, ["zero", "text"])
    real_split = train.split_pretext

    def broken_first(records, cfg, method_cls):
        kept, _ = real_split(records, cfg, method_cls)
        broken = [r for r in records if "a_bad" in r.path]
        return [r for r in kept if r not in broken], broken

    monkeypatch.setattr(train, "split_pretext", broken_first)
    entry = _pretrain(tmp_path, monkeypatch, root, steps=2, max_bad=0.5, heldout=2)
    assert entry["steps"] == 2 and entry["bad_samples"] == 0  # the broken ones never reached training
    assert entry["pretext"]["learned"] is None
    assert "held-out videos failed to decode" in entry["pretext"]["skipped"]


def test_one_decoding_thread_per_worker():
    from benchmark.data import loader

    before = torch.get_num_threads()
    try:
        loader.single_thread_worker(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert np.isfinite(before)


def test_a_sample_seeds_only_the_cpu_generator_and_reproduces(tmp_path, monkeypatch):
    """Augmentation is seeded per sample address through the CPU generator alone: torch.manual_seed would also
    queue a lazy CUDA seed (with a stack capture) on CUDA builds, 0.1-1.4 ms per sample (results/perf/learning.md)."""
    from benchmark.data.index import build_index
    from benchmark.paths import DatasetLocation

    root = _pool(tmp_path / "pool", 2, [])
    records = build_index(DatasetLocation("p", root, "folder")).records
    sampler = build_sampler("clip", resolution=16, clip_len=2, stride=1)
    dataset = SampledVideos(records, sampler, decoder="pyav", seed=0)

    def refuse(seed):
        raise AssertionError("the sample path called torch.manual_seed")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    first = dataset[(3, 1, 0)]["clip"]
    torch.default_generator.manual_seed(12345)  # whatever the global state, the address decides the sample
    assert torch.equal(dataset[(3, 1, 0)]["clip"], first)
    assert not torch.equal(dataset[(4, 1, 0)]["clip"], first)  # another step: another crop, flip or colour


def test_samples_of_different_shapes_name_the_key_in_one_line():
    """A sampler whose output shape depends on the video (a plugin's mistake) is named by key and shapes, not
    by torch's stack error."""
    import torch

    from benchmark.data.loader import collate
    from benchmark.errors import UserError

    samples = [{"clip": torch.zeros(4, 3, 8, 8), "index": torch.tensor(0)},
               {"clip": torch.zeros(2, 3, 8, 8), "index": torch.tensor(1)}]  # fmt: skip
    with pytest.raises(UserError, match=r"differ in shape under 'clip' \(\(2, 3, 8, 8\), \(4, 3, 8, 8\)\)"):
        collate(samples)


@pytest.mark.parametrize(
    "returned, said",
    [
        ({"index": 7}, "returned the key(s) ['index'], which the loader adds"),  # would be overwritten silently
        ({"bad": 1.0, "label": 2}, "returned the key(s) ['bad', 'label'], which the loader adds"),  # 'bad' dropped
        ([torch.zeros(2)], "returned a list"),
    ],
)
def test_a_sampler_using_a_key_the_loader_adds_is_one_line(tmp_path, returned, said):
    from benchmark.data.index import build_index
    from benchmark.paths import DatasetLocation

    class Mine:  # a plugin's sampler: called with a video and an rng, returns the sample
        registry_name = "mine"

        def __call__(self, video, rng):
            return {"frame": torch.zeros(3, 4, 4), **returned} if isinstance(returned, dict) else returned

    records = build_index(DatasetLocation("p", _pool(tmp_path / "pool", 2, []), "folder")).records
    with pytest.raises(UserError) as exc:
        SampledVideos(records, Mine(), decoder="pyav", seed=0)[0]
    assert str(exc.value).startswith(f"sampler 'mine' {said}") and "docs/adding-a-method.md, section 3" in str(
        exc.value
    )
