"""tce: hard-negative mining + memory-bank update time against the ResNet-18 training step (goal: < 10% at 240k slots).

Measured in one run, so the ratios hold on a busy machine:

- the step: timm ResNet-18 (random init) + a linear 128-d head, forward + backward + SGD update on
  100 pairs = 200 frames at 112 px, channels_last, with the run policy's precision (benchmark.device:
  bf16 autocast on CUDA and on CPUs with AMX/AVX512-BF16; fp32 on other CPUs, where bf16 is emulated
  and several times slower);
- per bank size (10k, 100k, 240k = Kinetics-400; 128-d, fp32) with K = 8192 negatives per anchor:
  ``mine_negatives`` at a threshold that leaves every entry eligible (the worst case: one B x N
  matmul, mask and a full top-K, then the random fill) and with mining off (the random fill only),
  the momentum update of the batch's 100 slots, and, for information, the contrastive loss over the
  K gathered negatives (gather + logits + InfoNCE forward and backward: not mining, but it grows with K);
- the bank's memory (N x 128 x 4 bytes) and the transient B x N similarity matrix.

The goal compares (worst-case mining + update) with the step at the largest bank.
"""

from __future__ import annotations

import statistics
import time

GOAL_RATIO = 0.10


def add_arguments(p) -> None:
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 240_000], help="bank sizes (default 10k 100k 240k)"
    )
    p.add_argument("--negatives", type=int, default=8192, help="K negatives per anchor (default 8192, the release's)")
    p.add_argument("--batch", type=int, default=100, help="pairs per step (default 100 = 200 frames)")
    p.add_argument("--resolution", type=int, default=112, help="frame side in px (default 112)")
    p.add_argument("--backbone", default="resnet18", help="timm 2D backbone of the step (default resnet18)")
    p.add_argument(
        "--steps", type=int, default=2, help="timed training steps after one warm-up (default 2; the median is used)"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of each bank operation (default 5; median)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--precision", default="auto", help="auto | bf16 | fp32 for the step (default auto: the run policy)")


def _timer(device):
    import torch

    def timed(fn, repeats: int) -> float:
        """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up."""
        fn()
        times = []
        for _ in range(max(1, repeats)):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return timed


def step_time(args, ctx, timed) -> float:
    import torch
    import torch.nn.functional as F

    from benchmark.backbones import build_backbone
    from benchmark.config import BackboneConfig

    backbone = build_backbone(BackboneConfig(name=args.backbone))
    model = ctx.prepare(torch.nn.Sequential(backbone, torch.nn.Linear(backbone.num_features, 128)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    frames = ctx.to_input(torch.randn(2 * args.batch, 3, args.resolution, args.resolution))

    def one_step():
        with ctx.autocast():
            z = F.normalize(model(frames).float(), dim=1)
        anchor, positive = z.chunk(2)
        loss = -(anchor * positive).sum(1).mean()  # the loss is negligible next to the network
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(one_step, args.steps)


def bank_times(n: int, args, device, timed) -> dict:
    import torch
    import torch.nn.functional as F

    from benchmark.losses import info_nce
    from benchmark.mining import init_bank, mine_negatives, momentum_update_

    g = torch.Generator().manual_seed(n)
    bank = init_bank(n, 128, g).to(device)
    anchor = F.normalize(torch.randn(args.batch, 128, generator=g), dim=1).to(device)
    index = torch.randperm(n, generator=g)[: args.batch].to(device)
    k = min(args.negatives, n - 1)
    mined = mine_negatives(anchor, bank, index, k, threshold=2.0)
    assert int(mined.num_hard.min()) == k  # the worst case really ran a full top-K

    def loss_step():
        a = anchor.clone().requires_grad_()
        info_nce(a, a, bank[mined.indices], 0.07).backward()

    figures = {
        "mining_topk_ms": timed(lambda: mine_negatives(anchor, bank, index, k, threshold=2.0), args.repeats),
        "mining_off_ms": timed(lambda: mine_negatives(anchor, bank, index, k, threshold=None), args.repeats),
        "update_ms": timed(lambda: momentum_update_(bank, index, anchor, 0.5), args.repeats),
        "loss_k_negatives_ms": timed(loss_step, max(1, args.repeats // 2)),
    }
    figures = {key: v * 1e3 for key, v in figures.items()}
    figures["bank_mb"] = n * 128 * 4 / 2**20
    figures["similarity_matrix_mb"] = args.batch * n * 4 / 2**20
    return figures


def run(args) -> int:
    from benchmark.errors import UserError

    if args.batch < 1 or args.steps < 1 or any(n < 2 for n in args.sizes):
        raise UserError("--batch and --steps must be >= 1 and every --sizes value >= 2")
    from benchmark.backbones import backbone_kind, check_resolution
    from benchmark.config import BackboneConfig

    backbone = BackboneConfig(name=args.backbone)
    if backbone_kind(backbone) != "2d":  # the step is TCE's: frames through a 2D network
        raise UserError(f"--backbone {args.backbone} is a 3D backbone; TCE's step takes a timm 2D one (e.g. resnet18)")
    check_resolution(backbone, args.resolution)
    import torch

    from benchmark.device import cpu_has_fast_bf16, resolve_runtime

    ctx = resolve_runtime(args.device, args.precision, channels_last=True)
    timed = _timer(ctx.device)
    precision = ctx.precision
    if ctx.device.type == "cpu" and ctx.dtype_autocast is None and not cpu_has_fast_bf16():
        precision += " (this CPU has no fast bf16 path: bf16 would be emulated and slower, so fp32 is measured)"
    print(
        f"device {ctx.device}, {torch.get_num_threads()} threads; step: {args.backbone}, {args.batch} pairs = "
        f"{2 * args.batch} frames at {args.resolution} px, channels_last, {precision}"
    )
    step_s = step_time(args, ctx, timed)
    print(f"training step (forward + backward + SGD): {step_s * 1e3:.0f} ms (median of {args.steps})")

    rows = []
    for n in args.sizes:
        f = bank_times(n, args, ctx.device, timed)
        f["ratio_mining_update"] = (f["mining_topk_ms"] + f["update_ms"]) / (step_s * 1e3)
        f["ratio_random_only"] = (f["mining_off_ms"] + f["update_ms"]) / (step_s * 1e3)
        rows.append({"bank": n, **f})
    from tabulate import tabulate

    headers = [
        "bank",
        "mining top-K ms",
        "mining off ms",
        "update ms",
        "(mining+update)/step",
        "random+update/step",
        "loss on K negs ms",
        "bank MB",
        "B x N sims MB",
    ]
    table = [
        [
            r["bank"],
            r["mining_topk_ms"],
            r["mining_off_ms"],
            r["update_ms"],
            f"{r['ratio_mining_update']:.1%}",
            f"{r['ratio_random_only']:.1%}",
            r["loss_k_negatives_ms"],
            r["bank_mb"],
            r["similarity_matrix_mb"],
        ]
        for r in rows
    ]
    print(f"K = {args.negatives} negatives, batch {args.batch}, 128-d fp32 bank; medians of {args.repeats} repeats")
    print(tabulate(table, headers=headers, floatfmt=".1f"))
    worst = rows[-1]["ratio_mining_update"]
    met = worst < GOAL_RATIO
    print(
        f"goal: mining + update < {GOAL_RATIO:.0%} of the step at {rows[-1]['bank']:,} slots: "
        f"{worst:.1%} -> {'met' if met else 'NOT met'}"
    )
    if getattr(args, "record", False):
        from benchmark.perf.collect import record

        figures = {
            "device": str(ctx.device),
            "precision": precision,
            "threads": torch.get_num_threads(),
            "backbone": args.backbone,
            "pairs_per_step": args.batch,
            "resolution": args.resolution,
            "negatives": args.negatives,
            "step_ms": step_s * 1e3,  # full precision: ratios recomputed from these must match (display rounds)
            "steps_timed": args.steps,
        }
        for r in rows:
            figures.update({f"bank_{r['bank']}_{k}": v for k, v in r.items() if k != "bank"})
        figures.update({"goal_ratio": GOAL_RATIO, "meets_goal": met})
        record("tce", figures)
    return 0 if met else 1
