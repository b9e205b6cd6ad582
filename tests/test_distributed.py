"""DDP on CPU: gloo, 2 processes. Gradients averaged, TCE's bank gathered across ranks, rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from benchmark import distributed
from benchmark.data.loader import StepBatches
from benchmark.distributed import ShardedBatches, all_gather_cat
from tests.launch.conftest import tiny_base


def test_helpers_are_identity_without_a_process_group():
    x = torch.arange(6.0).reshape(3, 2)
    assert all_gather_cat(x) is x
    assert distributed.info() == distributed.DistInfo(0, 1, 0)
    assert distributed.any_rank(True, False) == [True, False]
    assert distributed.all_reduce_mean([2.5]) == [2.5]
    batches = StepBatches(10, 4, 3, seed=0)
    assert distributed.shard(batches) is batches


def test_shards_partition_every_global_batch():
    batches = StepBatches(10, 6, 4, seed=1)
    shards = [list(ShardedBatches(batches, r, 3)) for r in range(3)]
    for step, full in enumerate(batches):
        parts = [shards[r][step] for r in range(3)]
        assert all(len(p) == 2 for p in parts)
        assert sorted(a for p in parts for a in p) == sorted(full)
    with pytest.raises(ValueError, match="not divisible"):
        ShardedBatches(StepBatches(10, 5, 1, seed=0), 0, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, tree: dict, data_home: str) -> None:
    os.environ["VSSL_DATA"] = data_home
    torch.set_num_threads(1)
    distributed.init(rank, world, backend="gloo", master_port=port, timeout_s=120)
    try:
        from benchmark.config import build_experiment
        from benchmark.rundir import RunDir
        from benchmark.train import build_method, pretrain

        # 1. all_gather_cat: rank order, every rank gets everything
        got = all_gather_cat(torch.full((2,), float(rank)))
        # 2. TCE's bank update sees the other rank's samples
        cfg = build_experiment(tree)
        tce = build_method(cfg, num_videos=8)
        before = tce.bank.clone()
        idx = torch.tensor([rank, 4 + rank])
        tce.update_bank(idx, torch.nn.functional.normalize(torch.randn(2, tce.bank.shape[1]), dim=1))
        changed = sorted(int(i) for i in (tce.bank != before).any(dim=1).nonzero().flatten())
        # 3. DDP pre-training; keep each rank's trained model to compare them
        captured = {}
        wrap = distributed.training_step_fn

        def capture(method):
            captured["method"] = method
            return wrap(method)

        distributed.training_step_fn = capture
        entry = pretrain(RunDir(Path(out) / "run"), cfg, tree, progress_bar=False)
        method = captured["method"]
        params = {k: v.detach().clone() for k, v in method.named_parameters()}
        torch.save(
            {"gathered": got, "changed": changed, "entry": entry, "params": params, "bank": method.bank.clone()},
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        distributed.shutdown()


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path, synth_data_home):
    import torch.multiprocessing as mp

    tree = tiny_base()
    tree["optim"]["steps"] = 3
    mp.start_processes(
        _worker,
        args=(2, _free_port(), str(tmp_path), tree, str(synth_data_home)),
        nprocs=2,
        start_method="spawn",
        join=True,
    )
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    for r in (r0, r1):
        assert r["gathered"].tolist() == [0.0, 0.0, 1.0, 1.0]
        assert r["changed"] == [0, 1, 4, 5]  # both ranks' rows, on both ranks
        assert r["entry"]["world_size"] == 2 and r["entry"]["steps"] == 3
    assert r0["entry"]["final_loss"] == r1["entry"]["final_loss"]  # the loss logged is the mean over ranks
    assert r0["params"].keys() == r1["params"].keys()
    for k in r0["params"]:  # DDP averaged the gradients: the ranks stay identical
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert torch.equal(r0["bank"], r1["bank"])  # every rank wrote the whole global batch into its bank
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert torch.equal(saved["bank"], r0["bank"])
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["world_size"] == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pretrain"]["world_size"] == 2
