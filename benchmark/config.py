"""Typed configs: one dataclass per component, loaded from YAML with dotted overrides.

A run is described by one :class:`ExperimentConfig`. It is built from a YAML
mapping plus ``key=value`` overrides (``method.temperature=0.1``) and checked
field by field, so bad input fails with one line that names the key:

>>> cfg = load_config({"method": {"name": "tce"}}, ["optim.lr=0.01"])
>>> cfg.optim.lr
0.01

The ``method`` section is typed by the method itself: its registered
``Config`` dataclass (a subclass of :class:`MethodConfig`) decides which keys
exist. Configs are passed explicitly; there is no global config object.

Hand-written rather than OmegaConf/dacite: the loader is ~150 lines and gives
the exact one-line messages the CLI promises (nearest valid key, expected
type), which neither library produces without wrapping.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from benchmark.errors import UserError, nearest
from benchmark.keys import PRETRAIN, Stage


# --------------------------------------------------------------------------- sections
def require(checks: list[tuple[bool, str]]) -> None:
    """Static checks of a config section (its __post_init__): the first failing one is a one-line UserError."""
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def _positive(section: str, **values: float) -> list[tuple[bool, str]]:
    return [(v >= 1, f"{section}.{k} = {v}: must be at least 1") for k, v in values.items()]


@dataclass
class DataConfig:
    """What pre-training reads. Datasets are named; roots come from the paths file (benchmark.paths)."""

    dataset: str = "synthetic-pool"  # pre-training set (labels unused), a name from the paths file
    split: int = 1  # which official split's train list pre-training reads (where the format has splits)
    resolution: int = 64  # square crop side fed to the backbone
    decoder: Literal["auto", "pyav", "torchcodec"] = "auto"
    storage: Literal["auto", "video", "frames"] = "auto"
    num_workers: int | Literal["auto"] = 0  # DataLoader workers; 0 decodes in the main process; auto: see device
    max_bad_fraction: float = 0.05  # stop a run when more samples than this fail to decode
    short_video: Literal["loop", "skip"] = "loop"  # videos shorter than the sampler needs
    pretext_heldout: int = 64  # videos kept out of pre-training to check the pretext on (at most a fifth of the set)

    def __post_init__(self) -> None:
        require([
            (8 <= self.resolution <= 2048, f"data.resolution = {self.resolution}: must be 8 to 2048 px (224 or 112 "
             "in the papers' protocols)"),
            (self.split >= 1, f"data.split = {self.split}: splits are numbered from 1"),
            (self.num_workers == "auto" or self.num_workers >= 0,
             f"data.num_workers = {self.num_workers}: 'auto' or 0 or more"),
            (0 <= self.max_bad_fraction <= 1, f"data.max_bad_fraction = {self.max_bad_fraction}: must be in [0, 1]"),
            (self.pretext_heldout >= 0, f"data.pretext_heldout = {self.pretext_heldout}: must be 0 or more"),
        ])  # fmt: skip


@dataclass
class BackboneConfig:
    """One factory serves every backbone (benchmark.backbones)."""

    name: str = "resnet10t"  # a timm 2D model, or r3d_18 / r2plus1d_18 / mc3_18 / s3d
    inflate: bool = False  # turn a timm 2D ResNet into a 3D one (I3D-style)
    inflate_time_kernel: int = 3  # temporal kernel of inflated convolutions
    zero_init_last: bool = True  # timm's default: last BN of each residual block starts at zero
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        require([
            (self.inflate_time_kernel >= 1 and self.inflate_time_kernel % 2 == 1,
             f"backbone.inflate_time_kernel = {self.inflate_time_kernel}: must be an odd number >= 1"),
            (0 <= self.drop_path_rate < 1, f"backbone.drop_path_rate = {self.drop_path_rate}: must be in [0, 1)"),
        ])  # fmt: skip


@dataclass
class MethodConfig:
    """Base of every method's config; each method subclasses it with its own fields."""

    name: str = "tce"


@dataclass
class OptimConfig:
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    batch_size: int = 32
    steps: int = 100  # optimiser steps of pre-training (0: no pre-training)
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    step_milestones: list[float] = field(default_factory=lambda: [0.5])  # fractions of steps, x0.1 each
    grad_clip: float = 0.0  # 0 disables
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam/AdamW (torch's default); GANs: [0.5, 0.999]

    def __post_init__(self) -> None:
        require([
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             f"optim.betas = {self.betas}: two values in [0, 1), e.g. [0.9, 0.999]"),
            (self.steps >= 0, f"optim.steps = {self.steps}: must be 0 (no pre-training) or more"),
            (0 <= self.lr < float("inf"), f"optim.lr = {self.lr}: must be a finite number >= 0"),
            *_positive("optim", batch_size=self.batch_size),
            (self.weight_decay >= 0, f"optim.weight_decay = {self.weight_decay}: must be >= 0"),
            (0 <= self.momentum < 1, f"optim.momentum = {self.momentum}: must be in [0, 1)"),
            (self.warmup_steps >= 0, f"optim.warmup_steps = {self.warmup_steps}: must be >= 0"),
            (self.grad_clip >= 0, f"optim.grad_clip = {self.grad_clip}: must be >= 0 (0 disables)"),
            (all(0 < m <= 1 for m in self.step_milestones),
             f"optim.step_milestones = {self.step_milestones}: fractions of the steps, in (0, 1]"),
        ])  # fmt: skip


@dataclass
class EvalConfig:
    """Downstream evaluation (benchmark.evaluation)."""

    dataset: str = "synthetic"  # labelled downstream set, a name from the paths file
    split: int = 1
    frames: int = 8  # 2D: evenly spaced frames per video whose features/logits are averaged
    clips: int = 4  # 3D: uniformly spaced clips per video
    clip_len: int = 8  # 3D: frames per clip (training and test)
    clip_stride: int = 1  # 3D: frame stride inside a clip (training and test)
    crops: int = 1  # spatial crops at test: 1 (centre) or 3 (along the long side), averaged with frames/clips
    batch_size: int = 256  # frames per forward pass at test / feature extraction (256 halved CPU time vs 64 here)
    num_workers: int = 0  # decoding workers of evaluation loaders (0: main process; 1 measured no faster on 2 cores)
    # linear probe
    linear_epochs: int = 100
    linear_lr: float = 0.1
    linear_weight_decay: float = 1e-3
    linear_optimizer: Literal["sgd", "lbfgs"] = "sgd"
    linear_weight_decays: list[float] = field(default_factory=list)  # non-empty: pick one on the held-out part of train
    # kNN retrieval
    knn_ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])
    knn_k: int = 20  # neighbours voting for kNN classification (the entry's top1)
    knn_vote: Literal["majority", "weighted"] = "majority"
    # fine-tuning
    finetune_epochs: int = 5
    finetune_lr: float = 0.01
    finetune_weight_decay: float = 1e-4
    finetune_batch_size: int = 16  # videos per step
    finetune_segments: int = 3  # TSN segments for 2D backbones
    heldout_fraction: float = 0.1  # of the train split, for model selection (never the test split)
    label_fraction: float = 1.0  # fraction of labelled train videos used (label-scarce protocols)

    def __post_init__(self) -> None:
        require([
            *_positive("eval", split=self.split, frames=self.frames, clips=self.clips, clip_len=self.clip_len,
                       clip_stride=self.clip_stride, batch_size=self.batch_size, linear_epochs=self.linear_epochs,
                       knn_k=self.knn_k, finetune_batch_size=self.finetune_batch_size,
                       finetune_segments=self.finetune_segments),
            (self.crops in (1, 3), f"eval.crops = {self.crops}: 1 (centre) or 3 (along the long side)"),
            (self.num_workers >= 0, f"eval.num_workers = {self.num_workers}: must be 0 or more"),
            (self.finetune_epochs >= 1, f"eval.finetune_epochs = {self.finetune_epochs}: must be 1 or more"),
            (min([self.linear_lr, self.finetune_lr]) > 0, "eval.linear_lr and eval.finetune_lr must be > 0"),
            (all(k >= 1 for k in self.knn_ks), f"eval.knn_ks = {self.knn_ks}: every k must be at least 1"),
            (0 <= self.heldout_fraction < 1, f"eval.heldout_fraction = {self.heldout_fraction}: must be in [0, 1)"),
            (0 < self.label_fraction <= 1, f"eval.label_fraction = {self.label_fraction}: must be in (0, 1]"),
            (self.linear_weight_decay >= 0, f"eval.linear_weight_decay = {self.linear_weight_decay}: must be >= 0"),
            (all(w >= 0 for w in self.linear_weight_decays),
             f"eval.linear_weight_decays = {self.linear_weight_decays}: every value must be >= 0"),
            (self.finetune_weight_decay >= 0,
             f"eval.finetune_weight_decay = {self.finetune_weight_decay}: must be >= 0"),
        ])  # fmt: skip


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on CUDA and on AMX CPUs (benchmark/device.py)
    channels_last: bool = True
    threads: int = 0  # torch intra-op threads; 0: torch's default (OMP_NUM_THREADS, else one per core). On a busy
    #                   2-core CPU one thread measured 5-10x faster than two (results/table1-cpu)
    log_every: int = 10
    checkpoint_every: int = 50  # steps between checkpoints/last.pt (also written at the end)
    epoch_checkpoints: list[int] = field(default_factory=list)  # steps to keep as checkpoints/step_N.pt
    evaluate_epoch_checkpoints: bool = False  # every evaluation stage also on each step_N.pt ('<key>@step_N')
    time_budget_s: float = 0.0  # informational: a CPU-minute budget the step count was chosen for
    pretext_samples: int = 256  # held-out samples the pretext is measured on, at step 0 and at the end
    wandb: Literal["off", "offline", "online"] = "off"  # also log to Weights & Biases (TensorBoard is always on)
    # torch.compile the backbone for pre-training: 'inductor' (for GPUs; on this CPU the first step took 195 s and
    # later steps ran 1.8x slower than eager), 'aot_eager' (checks the path cheaply), 'off'
    compile: Literal["off", "inductor", "aot_eager"] = "off"
    stages: list[str] = field(default_factory=lambda: ["pretrain", "linear"])

    def __post_init__(self) -> None:
        require([
            *_positive("run", log_every=self.log_every, checkpoint_every=self.checkpoint_every,
                       pretext_samples=self.pretext_samples),
            (self.threads >= 0, f"run.threads = {self.threads}: use 0 (torch's default) or a positive count"),
            (all(n >= 1 for n in self.epoch_checkpoints), f"run.epoch_checkpoints = {self.epoch_checkpoints}: steps >= 1"),
            (bool(self.stages), "run.stages is empty: name at least one stage (pretrain, linear, ...)"),
            (0 <= self.seed < 2**32, f"run.seed = {self.seed}: a seed is an integer in [0, 2^32)"),
            (self.time_budget_s >= 0, f"run.time_budget_s = {self.time_budget_s}: seconds, 0 or more"),
            (len(set(self.stages)) == len(self.stages), f"run.stages = {self.stages}: a stage is named twice"),
        ])  # fmt: skip
        for stage in self.stages:
            check_stage(stage, "run.stages")


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)


SECTIONS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}


# --------------------------------------------------------------------------- loading
class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter: a key twice in one mapping is an error (PyYAML silently keeps the last),
    and '1e-3' is a number, as it already is on the command line (YAML 1.1 reads it as text)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise UserError(
                    f"{_source(node)} line {key_node.start_mark.line + 1}: a key must be a name, not a "
                    f"{type(key).__name__}"
                )
            if key in seen:
                raise UserError(
                    f"{_source(node)} line {key_node.start_mark.line + 1}: key '{key}' appears twice in one mapping "
                    f"(first on line {seen[key] + 1}); merge them into one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _source(node) -> str:
    return str(getattr(node.start_mark, "name", "") or "<config>")


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml_text(text: str, name: str = "<config>") -> Any:
    """YAML text -> data with :class:`_StrictLoader` (duplicate keys are errors, '1e-3' is a float)."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a config file (give a .yaml file)")
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None
    try:
        return load_yaml_text(text, str(path)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=3' -> ('a.b', 3). Values are parsed as YAML scalars/lists ('[1,2]', 'true', '1e-3')."""
    if "=" not in text:
        raise UserError(f"override '{text}' is not key=value (e.g. method.temperature=0.1)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:  # YAML 1.1 reads '1e-4' as text; on the command line it means a number
            value = float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            pass
    return key, value


def set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"cannot set '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def merge_overrides(tree: Mapping, overrides: Mapping[str, Any] | Sequence[str]) -> dict:
    """A deep copy of ``tree`` with dotted overrides applied ('k=v' strings or a {dotted: value} mapping)."""
    out = copy.deepcopy(dict(tree))
    items = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    for key, value in items:
        set_dotted(out, key, value)
    return out


def load_config(
    source: str | Path | Mapping | None = None, overrides: Mapping | Sequence[str] = ()
) -> ExperimentConfig:
    """Build a checked ExperimentConfig from a YAML path or mapping plus overrides."""
    tree = explicit_tree(source, overrides)
    return build_experiment(tree)


def explicit_tree(source: str | Path | Mapping | None, overrides: Mapping | Sequence[str] = ()) -> dict:
    """What the user set explicitly: the YAML file's contents with the overrides applied."""
    if source is None:
        tree: Any = {}
    elif isinstance(source, Mapping):
        tree = dict(source)
    else:
        tree = read_yaml(source)
        if tree == {}:  # an empty file, or one of comments only: most likely the wrong file, not "the defaults"
            raise UserError(f"config file {source} is empty: it sets nothing (leave it out to use the defaults)")
    if not isinstance(tree, dict):
        raise UserError(f"config must be a mapping of sections, got {type(tree).__name__}")
    return merge_overrides(tree, overrides)


def build_experiment(tree: Mapping) -> ExperimentConfig:
    for key in tree:
        if key not in SECTIONS:
            raise UserError(f"unknown config key '{key}'{nearest(key, SECTIONS)}; sections are {', '.join(SECTIONS)}")
    kwargs = {}
    for name, f in SECTIONS.items():
        section = tree.get(name, {}) or {}
        if not isinstance(section, Mapping):
            raise UserError(f"config section '{name}' must be a mapping, got {section!r}")
        if name == "method":
            kwargs[name] = build_method_config(section)
        else:
            kwargs[name] = build_dataclass(f.default_factory, section, prefix=name)  # type: ignore[arg-type]
    return ExperimentConfig(**kwargs)


def known_stages() -> tuple[str, ...]:
    """'pretrain' and every registered downstream protocol (one module each in benchmark/evaluation/)."""
    from benchmark.registry import PROTOCOLS

    return (PRETRAIN, *PROTOCOLS.names())


def check_stage(stage: str, where: str) -> Stage:
    """A stage is a protocol, optionally with a downstream set and split: 'linear', 'finetune:hmdb51:2'."""
    protocol = str(stage).split(":", 1)[0]
    known = known_stages()
    if protocol not in known:
        raise UserError(
            f"unknown stage '{stage}' in {where}{nearest(protocol, known)}; stages are {', '.join(known)} "
            "(optionally 'protocol:dataset:split')"
        )
    return Stage.parse(str(stage), where)


def build_method_config(section: Mapping) -> MethodConfig:
    from benchmark.registry import METHODS  # late: the registry imports methods, which import this module

    name = section.get("name", MethodConfig.name)
    method_cls = METHODS.get(str(name))
    config_cls = method_cls.Config
    inherited = getattr(config_cls, "__dataclass_fields__", {})
    own = [n for n, a in config_cls.__dict__.get("__annotations__", {}).items() if "ClassVar" not in str(a)]
    if any(n not in inherited for n in own):
        # an undecorated subclass: its fields would silently not be config keys ('unknown config key' for each)
        raise UserError(f"method '{name}' ({method_cls.__module__}): its config class {config_cls.__name__} is not "
                        "decorated with @dataclass, so its fields are not config keys")  # fmt: skip
    return build_dataclass(config_cls, {**section, "name": name}, prefix="method")


def build_dataclass(cls: type, values: Mapping, prefix: str, noun: str = "config key") -> Any:
    """``cls`` from a mapping, every value checked against its annotation; errors name the key as
    ``<noun> '<prefix>.<key>'`` (no prefix: the bare key, e.g. a sweep file's top-level keys)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    dotted = lambda name: f"{prefix}.{name}" if prefix else str(name)  # noqa: E731
    for key in values:
        if key not in fields:
            known = [dotted(name) for name in fields]
            raise UserError(f"unknown {noun} '{dotted(key)}'{nearest(dotted(key), known)}")
    kwargs = {k: coerce(dotted(k), v, hints[k], noun) for k, v in values.items()}
    required = [
        dotted(name)
        for name, f in fields.items()
        if f.init
        and name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:  # a config section must load from nothing but its name (e.g. a plugin field without a default)
        raise UserError(
            f"{', '.join(required)} of {cls.__module__}.{cls.__name__} has no default: every config field needs one"
        )
    return cls(**kwargs)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(inner)}"
    if tp is type(None):
        return "null (or left out)"  # not Python's 'NoneType': YAML writes it null or leaves the key out
    return getattr(tp, "__name__", str(tp))


def coerce(key: str, value: Any, tp: Any, noun: str = "config key") -> Any:
    """Check ``value`` against the annotation ``tp``; ints widen to floats. One-line UserError otherwise."""
    origin = typing.get_origin(tp)
    bad = UserError(f"{noun} '{key}' = {value!r} should be {_type_name(tp)}")
    if tp is Any:
        return value
    if isinstance(value, float) and not math.isfinite(value):  # YAML's .nan / .inf: no setting here means them
        raise UserError(f"{noun} '{key}' = {value}: must be a finite number")
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        if isinstance(value, bool) and ("on" if value else "off") in typing.get_args(tp):
            return "on" if value else "off"  # YAML 1.1 reads a bare off / on as a boolean: run.wandb=off
        raise bad
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg, noun)
            except UserError:
                continue
        raise bad
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise bad
        return [coerce(f"{key}[{i}]", v, inner, noun) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    return value


# Config fields that never make two runs different experiments: they never split a table row
# (benchmark.results.table), and an evaluation that sets them differently from its run's config.yaml still
# counts as made with the run's recipe (benchmark.evaluation.config_overrides).
BOOKKEEPING_FIELDS = (
    "run.seed",
    "run.stages",
    "run.log_every",
    "run.checkpoint_every",
    "run.epoch_checkpoints",
    "run.evaluate_epoch_checkpoints",
    "run.threads",
    "run.time_budget_s",
    "data.num_workers",
    "eval.dataset",
    "eval.split",
    "eval.batch_size",
)


# --------------------------------------------------------------------------- output
def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def config_hash(cfg: ExperimentConfig) -> str:
    """Hash of the fully resolved config (recorded per run; a relaunch warns when it drifts)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def plain(value: Any) -> Any:
    """A config value as JSON writes it (tuples as lists, anything else as text), so that a value read back from
    config.yaml or a sweep compares equal to the config's own."""
    return json.loads(json.dumps(value, default=str))


def differences(recorded: Mapping, cfg: ExperimentConfig | Mapping) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (recorded value, cfg's value)} for every field ``cfg`` (a config, or a mapping such as a
    fine-tune's recorded settings) sets differently from ``recorded`` (a run's config.yaml), values compared as
    JSON writes them. A field only one side has (added to or removed from the code since the run) is not a
    difference."""
    old = {k: plain(v) for k, v in flatten(recorded).items()}
    new = {k: plain(v) for k, v in flatten(cfg if isinstance(cfg, Mapping) else to_dict(cfg)).items()}
    return {k: (old[k], new[k]) for k in sorted(new) if k in old and old[k] != new[k]}


def describe_changes(changes: Sequence[str], shown: int = 3) -> str:
    """'a 1 -> 2, b 'x' -> 'y' and 4 more': the first few of a list of changes, for one line."""
    more = f" and {len(changes) - shown} more" if len(changes) > shown else ""
    return ", ".join(changes[:shown]) + more


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: for tables and override hashing."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def dump_yaml(tree: Any) -> str:
    return yaml.safe_dump(tree, sort_keys=False, default_flow_style=None)
