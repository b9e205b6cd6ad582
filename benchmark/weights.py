"""Released weights in, plain weights out.

``vssl import FILE --format NAME --out RUN_DIR`` turns a released checkpoint into a run directory that every
evaluation protocol and ``vssl table`` read like any other: its backbone in checkpoints/last.pt, a config whose
method is ``released`` (``method.of`` names the paper's method, ``data.dataset`` the set it was pre-trained on),
and provenance (file name, sha256, format, paper) in env.json and the pretrain entry. Each format maps the
release's key names onto our backbone exactly; keys it knows to be heads are dropped (and listed), any other
unmatched key -- on either side -- is a one-line error listing them: weights never load partially.

Formats:

- ``tce``: the TCE release (csiro-robotics/TCE): ``{'state_dict': ...}`` with ``backbone.*`` keys (torchvision
  ResNet names, the same as timm's) for ResNet-18/50, ``module.`` when saved under DataParallel; heads
  ``fc_contrastive``, ``fc_rotation_*``, ``bn_rotation_*`` dropped.
- ``vcop``: the VCOP release (xudejing/video-clip-order-prediction): a bare state dict, R3D-10 under
  ``base_network.`` (``conv1.temporal_spatial_conv``, ``conv2.block1...``) mapped onto ``r3d_10``; heads
  ``fc7``, ``fc8``, ``linear`` dropped. Its R(2+1)D-10 has other mid widths than torchvision's and is refused.
- ``dpc``: the DPC release (TengdaHan/DPC): ``{'state_dict': ...}`` with ``module.backbone.*`` (its 2d3d ResNets:
  ``conv1``/``bn1`` stem, ``layerI.J.{conv1,bn1,conv2,bn2,downsample}``) mapped onto ``r2d3d_18`` / ``r2d3d_34``
  (depth inferred); ``agg`` (ConvGRU), ``network_pred``, ``final_bn``/``final_fc`` dropped. Its Kinetics
  checkpoints were trained without BatchNorm running statistics: those buffers keep fresh values (recorded).
- ``timm``: a plain timm state dict of ``--backbone`` (classifier keys dropped).
- ``torchvision``: a plain torchvision video-model state dict of ``--backbone`` (``fc`` dropped).

``vssl export RUN_DIR --format timm|torchvision|vssl --out FILE.safetensors`` writes the backbone alone as a
plain state dict (safetensors) plus ``FILE.json`` with provenance (method, config hash, commit, metrics).
timm: ``timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=dict(file=FILE))``
loads it; torchvision: ``torchvision.models.video.NAME(weights=None)`` with ``fc = nn.Identity()`` loads it
strictly. Inflated timm ResNets and the 10-layer / R2D3D nets export as ``vssl`` (our factory's names) only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.errors import UserError
from benchmark.rundir import FILE_MODE, atomic_write_text

if TYPE_CHECKING:  # torch only when a file is read: `vssl --help` lists the formats without it
    import torch

PAPERS = {
    "tce": "Knights et al., Temporally Coherent Embeddings for Self-Supervised Video Representation Learning, ICPR 2020",
    "vcop": "Xu et al., Self-Supervised Spatiotemporal Learning via Video Clip Order Prediction, CVPR 2019",
    "dpc": "Han, Xie, Zisserman, Video Representation Learning by Dense Predictive Coding, ICCV 2019 Workshops",
    "timm": "a timm model's state dict",
    "torchvision": "a torchvision video model's state dict",
}


@dataclass
class Mapped:
    backbone: str  # our factory's name
    state: dict[str, torch.Tensor]  # keys of our Backbone.state_dict() (net.*)
    dropped: list[str]  # release keys that are heads, not the backbone
    method: str  # the paper's method the weights come from ("tce", "vcop"; "" for plain state dicts)
    # our keys the release may lack, filled from the fresh backbone (DPC trained without BN running statistics)
    fillable: tuple[str, ...] = ()


# --------------------------------------------------------------------------- formats
def _strip(raw: dict, prefixes: tuple[str, ...]) -> dict:
    out = {}
    for key, value in raw.items():
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p) :]
        out[key] = value
    return out


def _split(state: dict, heads: tuple[str, ...]) -> tuple[dict, list[str]]:
    kept = {k: v for k, v in state.items() if not k.startswith(heads)}
    return kept, sorted(k for k in state if k.startswith(heads))


def tce_format(raw: dict, backbone: str | None) -> Mapped:
    state = _strip(raw, ("module.",))
    heads = ("fc_contrastive", "fc_rotation", "bn_rotation")
    kept, dropped = _split(state, heads)
    body = {k[len("backbone.") :]: v for k, v in kept.items() if k.startswith("backbone.")}
    other = sorted(k for k in kept if not k.startswith("backbone."))
    if other or not body:
        raise UserError(f"not a TCE release checkpoint: keys outside backbone.* and its heads: {_few(other or kept)}")
    name = backbone or ("resnet50" if any(".conv3." in k for k in body) else "resnet18")
    if name not in ("resnet18", "resnet50"):
        raise UserError(f"the TCE release has 2D ResNet-18/50 backbones; cannot map it onto '{name}'")
    return Mapped(name, {f"net.{k}": v for k, v in body.items()}, dropped, "tce")


_VCOP_LAYER = re.compile(r"^conv([2-5])\.(block1|blocks\.(\d+))\.(.+)$")
_VCOP_PART = {"conv1.temporal_spatial_conv.weight": "conv1.0.weight", "conv2.temporal_spatial_conv.weight":
              "conv2.0.weight", "downsampleconv.temporal_spatial_conv.weight": "downsample.0.weight"}  # fmt: skip
_VCOP_BN = {"bn1.": "conv1.1.", "bn2.": "conv2.1.", "downsamplebn.": "downsample.1."}


def vcop_format(raw: dict, backbone: str | None) -> Mapped:
    state = _strip(raw, ("module.", "base_network."))
    kept, dropped = _split(state, ("fc7", "fc8", "linear"))
    name = backbone or "r3d_10"
    if any("spatial_conv" in k and "temporal_spatial" not in k for k in kept) or name != "r3d_10":
        raise UserError(
            "the VCOP R(2+1)D-10 release has other mid widths than torchvision's R(2+1)D and cannot be mapped; "
            "this importer maps VCOP's R3D-10 onto r3d_10"
        )
    out, unknown = {}, []
    for key, value in kept.items():
        if key == "conv1.temporal_spatial_conv.weight":
            out["net.stem.0.weight"] = value
        elif key.startswith("bn1."):
            out["net.stem.1." + key[4:]] = value
        elif m := _VCOP_LAYER.match(key):
            layer, block = int(m.group(1)) - 1, 0 if m.group(2) == "block1" else int(m.group(3)) + 1
            rest = m.group(4)
            part = _VCOP_PART.get(rest) or next((new + rest[len(old) :] for old, new in _VCOP_BN.items()
                                                  if rest.startswith(old)), None)  # fmt: skip
            if part is None:
                unknown.append(key)
            else:
                out[f"net.layer{layer}.{block}.{part}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise UserError(f"VCOP checkpoint keys this importer cannot place: {_few(unknown)}")
    return Mapped(name, out, dropped, "vcop")


_DPC_PART = {
    "conv1.": "conv1.0.",
    "bn1.": "conv1.1.",
    "conv2.": "conv2.0.",
    "bn2.": "conv2.1.",
    "downsample.": "downsample.",
}
_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


def dpc_format(raw: dict, backbone: str | None) -> Mapped:
    state = _strip(raw, ("module.",))
    kept, dropped = _split(state, ("agg.", "network_pred.", "final_bn.", "final_fc.", "mask"))
    body = {k[len("backbone.") :]: v for k, v in kept.items() if k.startswith("backbone.")}
    other = sorted(k for k in kept if not k.startswith("backbone."))
    if other or not body:
        raise UserError(f"not a DPC checkpoint: keys outside backbone.* and its heads: {_few(other or kept)}")
    name = backbone or ("r2d3d_34" if any(k.startswith("layer3.5.") for k in body) else "r2d3d_18")
    if name not in ("r2d3d_18", "r2d3d_34"):
        raise UserError(f"DPC's releases are 2d3d ResNets (r2d3d_18 / r2d3d_34); cannot map them onto '{name}'")
    out, unknown = {}, []
    for key, value in body.items():
        if key.startswith("conv1."):
            out["net.stem.0." + key[len("conv1.") :]] = value
        elif key.startswith("bn1."):
            out["net.stem.1." + key[len("bn1.") :]] = value
        elif m := re.match(r"^(layer[1-4]\.\d+)\.(.+)$", key):
            rest = m.group(2)
            part = next((new + rest[len(old) :] for old, new in _DPC_PART.items() if rest.startswith(old)), None)
            if part is None:
                unknown.append(key)
            else:
                out[f"net.{m.group(1)}.{part}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise UserError(f"DPC checkpoint keys this importer cannot place: {_few(unknown)}")
    return Mapped(name, out, dropped, "dpc", fillable=_BN_STATS)


def timm_format(raw: dict, backbone: str | None) -> Mapped:
    if not backbone:
        raise UserError("--format timm needs --backbone NAME (the timm model the weights belong to)")
    classifier = ("fc.", "head.fc.", "classifier.", "head.")
    kept, dropped = _split(_strip(raw, ("module.",)), classifier)
    return Mapped(backbone, {f"net.{k}": v for k, v in kept.items()}, dropped, "")


def torchvision_format(raw: dict, backbone: str | None) -> Mapped:
    from benchmark.backbones import R2D3D_DEPTHS, TEN_LAYER, VIDEO_3D_MODELS

    if not backbone:
        raise UserError("--format torchvision needs --backbone NAME (r3d_18, r2plus1d_18, mc3_18, s3d, ...)")
    if backbone not in set(VIDEO_3D_MODELS) - set(TEN_LAYER) - set(R2D3D_DEPTHS):  # the provenance would mislead
        raise UserError(f"--backbone {backbone} is not a torchvision video model (r3d_18, r2plus1d_18, mc3_18, s3d, "
                        "...): a timm 2D network's weights are --format timm")  # fmt: skip
    kept, dropped = _split(_strip(raw, ("module.",)), ("fc.", "classifier."))
    return Mapped(backbone, {f"net.{k}": v for k, v in kept.items()}, dropped, "")


FORMATS: dict[str, Callable[[dict, str | None], Mapped]] = {
    "tce": tce_format,
    "vcop": vcop_format,
    "dpc": dpc_format,
    "timm": timm_format,
    "torchvision": torchvision_format,
}


def _few(keys, n: int = 8) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" ... ({len(keys)} in all)" if len(keys) > n else "")


# --------------------------------------------------------------------------- import
def read_release(path: Path) -> tuple[dict, str]:
    """(the release's flat tensor dict, sha256 of the file): weights-only loading, one line for a file that is
    not a checkpoint or is truncated."""
    from benchmark.checkpoint import CorruptCheckpoint, load

    if not Path(path).is_file():
        what = "is a folder, not a checkpoint file" if Path(path).is_dir() else "not found"
        raise UserError(f"checkpoint file {what}: {path}")
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            raw = load_file(str(path))
        else:
            raw = load(Path(path))
    except CorruptCheckpoint:
        raise UserError(
            f"{path} is not a readable checkpoint (truncated download, or not a torch/safetensors file)"
        ) from None
    except UserError:  # checkpoint.load's own line: a pickle that asks to run code is refused, and says why
        raise
    except Exception as exc:  # noqa: BLE001 (safetensors' own errors)
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__})") from None
    for wrapper in ("state_dict", "model", "net"):
        if isinstance(raw.get(wrapper), dict):
            raw = raw[wrapper]
            break
    import torch

    tensors = {k: v for k, v in raw.items() if torch.is_tensor(v)}
    if not tensors:
        raise UserError(f"{path} holds no tensors: not a model checkpoint")
    return tensors, sha


def import_release(path: Path, fmt: str, out: Path, backbone: str | None = None,
                   pretrained_on: str | None = None) -> Path:  # fmt: skip
    """Write a run directory holding the released backbone; returns it. Nothing is written on a mismatch."""
    from benchmark.backbones import build_backbone
    from benchmark.config import config_hash, load_config, to_dict
    from benchmark.errors import nearest
    from benchmark.rundir import RunDir, base_env, check_run_target

    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'{nearest(fmt, FORMATS)}; formats: {', '.join(FORMATS)}")
    run = RunDir(Path(out))
    if (run.path / "config.yaml").exists():
        raise UserError(f"{out} is already a run directory: choose a new --out")
    check_run_target(run.path)
    raw, sha = read_release(Path(path))
    mapped = FORMATS[fmt](raw, backbone)
    # stages [pretrain]: the run is complete as imported, whichever protocols `vssl evaluate` adds to it later
    overrides = [f"backbone.name={mapped.backbone}", "method.name=released", f"method.of={mapped.method or fmt}",
                 f"method.format={fmt}", "optim.steps=0", "run.stages=[pretrain]"]  # fmt: skip
    if pretrained_on:
        overrides.append(f"data.dataset={pretrained_on}")
    cfg = load_config(None, overrides)
    model = build_backbone(cfg.backbone)
    ours = model.state_dict()
    # DPC pre-trained with track_running_stats=False: its BatchNorms have no statistics to import. They keep the
    # fresh ones (mean 0, var 1) and the provenance says so; re-estimate them (finetune) before trusting a probe.
    filled = sorted(k for k in set(ours) - set(mapped.state) if k.endswith(mapped.fillable)) if mapped.fillable else []
    mapped.state.update({k: ours[k] for k in filled})
    missing = sorted(set(ours) - set(mapped.state))
    extra = sorted(set(mapped.state) - set(ours))
    if missing or extra:
        raise UserError(f"the {fmt} checkpoint does not match backbone '{mapped.backbone}': missing "
                        f"{_few(missing) or 'none'}; unexpected {_few(extra) or 'none'}")  # fmt: skip
    wrong = [k for k in ours if tuple(ours[k].shape) != tuple(mapped.state[k].shape)]
    if wrong:
        raise UserError(f"shapes differ for {_few(wrong)} (backbone '{mapped.backbone}'): another architecture?")
    model.load_state_dict(mapped.state, strict=True)
    provenance = {"file": Path(path).name, "sha256": sha, "format": fmt, "paper": PAPERS.get(mapped.method or fmt),
                  "dropped_head_keys": mapped.dropped, "imported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    if filled:
        provenance["bn_statistics"] = (f"absent from the release ({len(filled)} buffers): fresh ones (mean 0, var 1) "
                                       "kept; probes see un-estimated statistics, fine-tuning re-estimates them")  # fmt: skip
        print(f"warning: {Path(path).name} has no BatchNorm running statistics (DPC trained without them); "
              "fresh ones were kept: prefer --protocol finetune, or re-estimate them before a linear/kNN probe")  # fmt: skip
    from benchmark import checkpoint as ckpt

    run.create()
    run.write_config(to_dict(cfg), {"method": {"name": "released", "of": mapped.method or fmt}})
    run.update_env(**base_env(cfg.run.seed, "cpu", None, None, config_hash(cfg)), released_weights=provenance)
    ckpt.save(run.checkpoint_path(), {"step": 0, "backbone": model.state_dict(), "model": {}, "optimizer": None})
    run.add_metrics("pretrain", {"steps": 0, "trained": False, "released_weights": provenance,
                                 "pretext": {"exempt": "released weights (their pre-training ran elsewhere)"}})  # fmt: skip
    return run.path


# --------------------------------------------------------------------------- export
def export_backbone(run_dir: Path, fmt: str, out: Path) -> Path:
    """The run's backbone as a plain state dict (safetensors) + a provenance JSON beside it; returns the file."""
    from safetensors.torch import save_file

    from benchmark.backbones import R2D3D_DEPTHS, TEN_LAYER, VIDEO_3D_MODELS
    from benchmark.checkpoint import CorruptCheckpoint, load
    from benchmark.rundir import RunDir

    if Path(out).suffix != ".safetensors":  # the bytes are safetensors: a .pt name would mislead torch.load users
        raise UserError(f"--out {out}: export writes safetensors, so name the file *.safetensors")
    run = RunDir(Path(run_dir))
    cfg = run.config()
    if not cfg:
        raise UserError(f"{run_dir} is not a run directory (no config.yaml)")
    path = run.checkpoint_path()
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: pre-train (or import) first")
    if not run.finished_pretraining():
        raise UserError(f"{run_dir} has not finished pre-training: rerun the same `vssl pretrain` or sweep first")
    try:
        state = load(path)["backbone"]
    except CorruptCheckpoint as exc:
        raise UserError(str(exc)) from None
    section = cfg.get("backbone")
    if not isinstance(section, dict) or not isinstance(section.get("name"), str):  # a run writes its whole config
        raise UserError(f"{run.path / 'config.yaml'} names no backbone (backbone.name): it is not a whole run config")
    name, inflated = section["name"], bool(section.get("inflate"))
    torchvision_names = set(VIDEO_3D_MODELS) - set(TEN_LAYER) - set(R2D3D_DEPTHS)
    if fmt == "timm" and (inflated or name in VIDEO_3D_MODELS):
        raise UserError(f"'{name}'{' (inflated)' if inflated else ''} is not a timm 2D model: use --format "
                        f"{'torchvision' if name in torchvision_names else 'vssl'}")  # fmt: skip
    if fmt == "torchvision" and name not in torchvision_names:
        other = "timm" if not inflated and name not in VIDEO_3D_MODELS else "vssl (our factory's names)"
        raise UserError(f"'{name}'{' (inflated)' if inflated else ''} has no torchvision builder: use --format {other}")
    if fmt not in ("timm", "torchvision", "vssl"):
        raise UserError(f"unknown export format '{fmt}': timm, torchvision or vssl")
    plain = {k[len("net.") :]: v.contiguous() for k, v in state.items() if k.startswith("net.")}
    out = Path(out)
    _check_export_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": fmt, "backbone": name, "inflated": inflated, "method": cfg["method"]["name"]}
    tmp = out.with_name(f".{out.name}.tmp")  # written whole, then renamed: an interrupted export keeps the old file
    try:
        save_file(plain, str(tmp), metadata={k: str(v) for k, v in meta.items()})
        os.chmod(tmp, FILE_MODE)  # safetensors writes 0600: weights meant for sharing get the umask's mode
        os.replace(tmp, out)
    except BaseException as exc:  # (safetensors raises its own SafetensorError on I/O errors)
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, Exception):  # Ctrl-C: the CLI says "interrupted"
            raise
        raise UserError(
            f"could not write {out}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    env, metrics = run.env(), run.metrics()
    top1 = {k: v.get("top1") for k, v in metrics.items() if isinstance(v, dict) and "top1" in v}
    sidecar = {**meta, "pretrain_steps": metrics["pretrain"].get("steps"), "config_hash": env.get("config_hash"),
               "git_commit": env.get("git_commit"),
               "git_dirty": env.get("git_dirty"), "released_weights": env.get("released_weights"),
               "metrics_top1": top1, "run": str(run.path)}  # fmt: skip
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2, default=str) + "\n")
    return out


# fields only an export's sidecar has (a run's metrics.json or a sweep.json never holds both)
_SIDECAR_KEYS = ("metrics_top1", "run")


def _is_export(path: Path) -> bool:
    """Whether PATH (a .safetensors or its .json sidecar) was written by a previous `vssl export`."""
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            return isinstance(data, dict) and all(k in data for k in _SIDECAR_KEYS)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:  # reads the header only
            meta = f.metadata() or {}
        return meta.get("format") in ("timm", "torchvision", "vssl") and "backbone" in meta and "method" in meta
    except Exception:  # noqa: BLE001 (a folder, unreadable bytes, not JSON / safetensors: not ours)
        return False


def _check_export_target(out: Path) -> None:
    """--out FILE.safetensors writes FILE.json too: `--out RUN/metrics.safetensors` would replace the run's
    metrics.json. Only a previous export may be replaced, and that is said on stderr."""
    existing = [p for p in (out, out.with_suffix(".json")) if p.exists() or p.is_symlink()]
    for p in existing:
        if not _is_export(p):
            raise UserError(f"--out {out} would replace {p}, which is not a `vssl export` output: choose another --out")
    if existing:
        print(f"note: replacing the previous export {' and '.join(str(p) for p in existing)}", file=sys.stderr)
