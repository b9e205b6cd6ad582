"""vssl export: a run's backbone as a plain timm / torchvision state dict (safetensors) + provenance JSON."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's backbone alone as a timm/torchvision state dict (.safetensors) with provenance",
        description="Write the backbone of RUN_DIR's checkpoints/last.pt as a plain state dict: --format timm "
        "(timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=dict(file=FILE))), "
        "torchvision (torchvision.models.video.NAME(weights=None) with fc = nn.Identity(), strict), or vssl "
        "(our factory's names: inflated and 10-layer / R2D3D backbones). FILE.json beside it records method, "
        "config hash, commit and metrics.",
    )
    p.add_argument("run_dir", help="a run directory (pre-trained or imported)")
    p.add_argument("--format", required=True, choices=["timm", "torchvision", "vssl"], help="whose names to use")
    p.add_argument("--out", required=True, help="FILE.safetensors")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from benchmark.weights import export_backbone

    out = export_backbone(args.run_dir, args.format, args.out)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0
