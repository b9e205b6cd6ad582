"""benchmark.device: device/precision resolution, autocast, memory formats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import benchmark.device as device_mod
from benchmark.device import RuntimeContext, cpu_has_amx, resolve_runtime
from benchmark.errors import UserError


def test_auto_on_cpu_picks_bf16_only_with_amx(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ctx = resolve_runtime()
    assert ctx.device == torch.device("cpu") and ctx.channels_last
    assert ctx.dtype_autocast == (torch.bfloat16 if cpu_has_amx() else None)
    monkeypatch.setattr(device_mod, "cpu_has_amx", lambda: True)
    assert resolve_runtime().dtype_autocast == torch.bfloat16
    # AVX512-BF16 without AMX: fp32 (bf16 Conv3d weight gradients came out non-finite there, at random)
    monkeypatch.setattr(device_mod, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    assert resolve_runtime().dtype_autocast is None
    assert resolve_runtime(precision="bf16").dtype_autocast == torch.bfloat16  # forced


def test_auto_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    ctx = resolve_runtime("auto", "auto")
    assert ctx.device.type == "cuda" and ctx.dtype_autocast == torch.bfloat16
    assert resolve_runtime("auto", "fp32").dtype_autocast is None


def test_explicit_precisions_and_errors(monkeypatch):
    assert resolve_runtime("cpu", "fp32").dtype_autocast is None
    assert resolve_runtime("cpu", "bf16").precision == "bf16"
    with pytest.raises(UserError, match="did you mean 'bf16'"):
        resolve_runtime("cpu", "bf61")
    with pytest.raises(UserError, match="not a device"):
        resolve_runtime("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_runtime("cuda:0")


def test_autocast_context():
    lin = nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with resolve_runtime("cpu", "bf16").autocast():
        assert lin(x).dtype == torch.bfloat16
    with resolve_runtime("cpu", "fp32").autocast():
        assert lin(x).dtype == torch.float32


def test_prepare_memory_formats():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv3d(4, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 4))
    ctx = RuntimeContext(torch.device("cpu"), None, channels_last=True)
    assert ctx.prepare(model) is model
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[1].weight.is_contiguous(memory_format=torch.channels_last_3d)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3))
    RuntimeContext(torch.device("cpu"), None, channels_last=False).prepare(plain)
    assert plain[0].weight.is_contiguous()


def test_to_input_layouts():
    ctx = resolve_runtime("cpu", "fp32", channels_last=True)
    clip = torch.randn(2, 4, 3, 8, 8)  # [B, T, C, H, W]
    batch = ctx.to_input({"clip": clip, "frames": [clip[:, 0]], "index": torch.arange(2), "meta": "x"})
    out = batch["clip"]
    assert torch.equal(out, clip) and out.shape == clip.shape
    # folding time into the batch stays a channels_last view; permuting to NCTHW is channels_last_3d
    folded = out.reshape(-1, 3, 8, 8)
    assert folded.is_contiguous(memory_format=torch.channels_last) and folded.data_ptr() == out.data_ptr()
    assert out.permute(0, 2, 1, 3, 4).is_contiguous(memory_format=torch.channels_last_3d)
    assert batch["frames"][0].is_contiguous(memory_format=torch.channels_last)
    assert batch["index"].dtype == torch.int64 and batch["meta"] == "x"
    assert ctx.to_input(out) is out  # already laid out: no copy
    off = resolve_runtime("cpu", "fp32", channels_last=False).to_input(clip)
    assert off.is_contiguous()


def test_describe():
    d = resolve_runtime("cpu", "fp32").describe()
    assert d["device"] == "cpu" and d["precision"] == "fp32" and d["cpu_capability"]


def test_run_threads_sets_torch_threads_and_zero_keeps_them():
    before = torch.get_num_threads()
    try:
        resolve_runtime("cpu", "fp32", threads=1)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        resolve_runtime("cpu", "fp32", threads=0)
        assert torch.get_num_threads() == 2
        with pytest.raises(UserError, match="run.threads"):
            resolve_runtime("cpu", "fp32", threads=-1)
    finally:
        torch.set_num_threads(before)
