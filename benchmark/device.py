"""Device and precision policy: one :class:`RuntimeContext` per run.

``resolve_runtime(device, precision, channels_last)`` turns the ``run.*`` options into
a context every stage uses the same way::

    ctx = resolve_runtime(cfg.run.device, cfg.run.precision, cfg.run.channels_last)
    model = ctx.prepare(model)
    with ctx.autocast():
        loss = model(ctx.to_input(batch))

Policy
    device "auto"     -> cuda if available, else cpu. "cuda[:N]" without a usable GPU is
                         a UserError.
    precision "auto"  -> bf16 autocast on CUDA (when the GPU supports bf16) and on CPUs
                         with AMX, else fp32. "bf16" forces autocast, "fp32" disables it
                         (``dtype_autocast`` is None). A CPU with AVX512-BF16 but no AMX runs
                         fp32 under "auto": there, with torch 2.14.1, a bf16-autocast Conv3d
                         (256 -> 256 channels, 3x3x3, a 2x2x2 input) returned a non-finite
                         weight gradient in about 1 of 20 backward passes, at random, and
                         ``vssl sweep sweeps/table1.yaml --smoke`` lost 4-6 of its 21 cells
                         to NaN losses (fp32: none). Conv2d passed the same check.
    CPU checks        -> ``cpu_has_amx``: ``torch.cpu._is_amx_tile_supported()``;
                         ``cpu_has_fast_bf16`` (AMX or AVX512-BF16, used to explain
                         benchmark figures) adds ``torch.cpu._is_avx512_bf16_supported()``;
                         older torch: the ``amx_tile``/``avx512_bf16`` flags of /proc/cpuinfo.
                         ``torch.backends.cpu.get_cpu_capability()``
                         is not enough: it never reports AMX, and "AVX512" alone says
                         nothing about bf16 (without native bf16, oneDNN emulates it and
                         bf16 is no faster than fp32). The capability string is recorded
                         in :meth:`RuntimeContext.describe` for the run's metadata.
    channels_last     -> parameters: 4D -> ``channels_last``, 5D -> ``channels_last_3d``.
                         Inputs ``[..., C, H, W]`` (frames ``[N, C, H, W]``, clips
                         ``[B, T, C, H, W]``) are laid out channels-last over their last
                         three dims (memory order ``..., H, W, C``). That is the layout
                         that survives what backbones do with them: folding ``[B, T]``
                         into the batch gives a ``channels_last`` ``[BT, C, H, W]`` view,
                         and permuting to ``[B, C, T, H, W]`` gives ``channels_last_3d``.
                         (A 5D input here is ``[B, T, C, H, W]``, not NCDHW, so
                         ``torch.channels_last_3d`` on it would be the wrong layout.)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from benchmark.errors import UserError, nearest

__all__ = ["RuntimeContext", "resolve_runtime", "cpu_has_amx", "cpu_has_fast_bf16", "PRECISIONS"]

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class RuntimeContext:
    device: torch.device
    dtype_autocast: torch.dtype | None
    channels_last: bool

    @property
    def precision(self) -> str:
        return (
            "bf16"
            if self.dtype_autocast == torch.bfloat16
            else "fp32"
            if self.dtype_autocast is None
            else str(self.dtype_autocast)
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        """torch.autocast for this device and dtype, or a no-op context in fp32."""
        if self.dtype_autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype_autocast)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move ``module`` to the device and (optionally) channels-last formats; returns it."""
        module.to(self.device)
        if self.channels_last:
            module._apply(_channels_last_param)
        return module

    def to_input(self, x: Any) -> Any:
        """Tensors (also inside dicts/lists/tuples) to the device; floating [..., C, H, W] channels-last."""
        if isinstance(x, torch.Tensor):
            x = x.to(self.device, non_blocking=True)
            if self.channels_last and x.dim() >= 4 and x.is_floating_point():
                x = channels_last_frames(x)
            return x
        if isinstance(x, dict):
            return {k: self.to_input(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
            return type(x)(self.to_input(v) for v in x)
        return x

    def describe(self) -> dict[str, Any]:
        """What a run records about its runtime."""
        return {
            "device": str(self.device),
            "precision": self.precision,
            "channels_last": self.channels_last,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda_device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None,
        }


def channels_last_frames(x: torch.Tensor) -> torch.Tensor:
    """Same shape, memory order [..., H, W, C] (channels_last for 4D; see module docstring)."""
    if x.movedim(-3, -1).is_contiguous():
        return x
    return x.movedim(-3, -1).contiguous().movedim(-1, -3)


def _channels_last_param(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if t.dim() == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    return t


def _proc_cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("", set()) where there is none (not Linux)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def _torch_cpu_check(name: str, flag: str) -> bool:
    """torch.cpu's own check (``_is_amx_tile_supported``, ...) where this torch has it, else the kernel's flag."""
    check = getattr(torch.cpu, name, None)
    return bool(check()) if callable(check) else flag in _proc_cpuinfo()[1]


def cpu_has_amx() -> bool:
    """True when this CPU has AMX tiles (where ``precision: auto`` picks bf16; see the module docstring)."""
    return _torch_cpu_check("_is_amx_tile_supported", "amx_tile")


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AMX or AVX512-BF16)."""
    return cpu_has_amx() or _torch_cpu_check("_is_avx512_bf16_supported", "avx512_bf16")


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"run.device = {device!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"run.device = {device!r} but CUDA is not available here; use run.device=cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"run.device = {device!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"run.device = {device!r} but MPS is not available here; use run.device=cpu or auto")
    return dev


def resolve_runtime(
    device: str = "auto", precision: str = "auto", channels_last: bool = True, threads: int = 0
) -> RuntimeContext:
    """Resolve run.device / run.precision / run.channels_last into a RuntimeContext.

    ``threads`` > 0 sets torch's intra-op threads for this process (run.threads); 0 keeps torch's
    choice (OMP_NUM_THREADS, else one per core)."""
    if threads < 0:
        raise UserError(f"run.threads = {threads}: use 0 (torch's default) or a positive count")
    if threads:
        torch.set_num_threads(threads)
    if precision not in PRECISIONS:
        raise UserError(
            f"run.precision = {precision!r}{nearest(str(precision), PRECISIONS)}; use one of {', '.join(PRECISIONS)}"
        )
    dev = _resolve_device(device)
    if precision == "fp32":
        dtype = None
    elif precision == "bf16":
        dtype = torch.bfloat16
    elif dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    elif dev.type == "cpu":
        dtype = torch.bfloat16 if cpu_has_amx() else None  # not AVX512-BF16 alone: see the module docstring
    else:
        dtype = None
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once
    return RuntimeContext(device=dev, dtype_autocast=dtype, channels_last=bool(channels_last))


def resolve_workers(value: int | str, device: torch.device) -> int:
    """data.num_workers: a number as given; 'auto' = the CPUs this process may use (SLURM_CPUS_PER_TASK, else
    its CPU affinity) minus one for the training process, under SLURM or on CUDA; elsewhere (a laptop or a
    busy 2-core CPU, where one worker measured best: results/perf/data.md) 0, today's default."""
    if value != "auto":
        return int(value)
    import os

    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if not (slurm.isdigit() or device.type == "cuda"):
        return 0
    cpus = int(slurm) if slurm.isdigit() else len(os.sched_getaffinity(0))
    return max(0, cpus - 1)


# --------------------------------------------------------------------------- the CPU, for every recorded figure
SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_features() -> dict[str, Any]:
    """The CPU model and the vector/matrix flags that decide its speed (bf16 is fast only with AMX or
    AVX512-BF16): recorded with every performance figure and in every run's env.json."""
    model, flags = _proc_cpuinfo()
    return {
        "cpu_model": model or "unknown",
        "cpu_flags": [f for f in SIMD_FLAGS if f in flags],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def one_thread():
    """One intra-op torch thread inside the block, restored after.

    For small problems (linear probes, kNN, tiny test steps) thread
    synchronisation dominates; on a busy 2-core machine a second thread only
    spins (a 576 x 512 probe measured 45x slower with two threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def single_thread_worker(_: int) -> None:
    """DataLoader worker_init_fn: decoding/augmentation workers use one thread so they do not oversubscribe the cores."""
    torch.set_num_threads(1)
