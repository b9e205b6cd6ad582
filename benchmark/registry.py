"""Registries for methods, samplers, downstream protocols and dataset formats, with out-of-tree plugins.

In-tree methods live one per module in ``methods/`` and register with a
decorator; out-of-tree packages register through the ``vssl.methods``
entry-point group (the entry point names a module or an object; importing it
runs the decorators). Samplers register the same way, so a plugin can bring
its own::

    from benchmark.registry import register_method, register_sampler

    @register_sampler("two_clips")
    class TwoClips: ...

    @register_method("simclr_clips")
    class SimCLRClips(Method): ...

Lookups load every plugin lazily on first use, so ``import benchmark`` stays cheap.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from benchmark.errors import ENTRY_POINT_GROUP, UserError, nearest, raised_at

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    source: str  # "module.path:Object" (in-tree) or "plugin <dist> (module:Object)"
    distribution: str | None = None  # the pip distribution that registered it; None: this repository


def _source_of(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    qual = getattr(obj, "__qualname__", getattr(obj, "__name__", "?"))
    return f"{module}:{qual}"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            dist = _plugin_dist(_source_of(obj))
            source = f"plugin {dist} ({_source_of(obj)})" if dist else _source_of(obj)
            if name in self._entries:
                old = self._entries[name]
                if old.source == source:  # the same module imported twice (e.g. reload): harmless
                    self._entries[name] = Entry(name, obj, source, dist)
                    return obj
                raise UserError(
                    f"duplicate {self.kind} name '{name}': registered by {_origin(old.distribution, old.source)} "
                    f"and by {_origin(dist, source)}"
                )
            obj.registry_name = name
            self._entries[name] = Entry(name, obj, source, dist)
            return obj

        return decorator

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a throw-away plugin clean up with it)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        load_plugins()
        if name not in self._entries:
            raise UserError(  # a plugin's name is missing most often because its package is not installed here
                f"unknown {self.kind} '{name}'{nearest(name, self._entries)}; known: {', '.join(sorted(self._entries))}"
                f" (a plugin's {self.kind}s are known once its package, with a '{ENTRY_POINT_GROUP}' entry point, is "
                f"installed in this Python: {sys.executable})"
            )
        return self._entries[name]

    def entries(self) -> list[Entry[T]]:
        load_plugins()
        return [self._entries[k] for k in sorted(self._entries)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


METHODS: Registry[Any] = Registry("method")
SAMPLERS: Registry[Any] = Registry("sampler")
PROTOCOLS: Registry[Any] = Registry("protocol")  # downstream evaluations: fn(run, cfg, *, checkpoint, progress_bar)
FORMATS: Registry[Any] = Registry("dataset format")  # on-disk layouts: builder(location, split, subset, split_dir)
register_method = METHODS.register
register_sampler = SAMPLERS.register
register_protocol = PROTOCOLS.register
register_format = FORMATS.register

# The in-tree modules whose import registers samplers, dataset formats, protocols and methods. They sit in
# layers above this one, so they are loaded by name (importlib) when a registry is first read, never imported
# statically from here (docs/architecture.md: layers only look down).
IN_TREE = (
    "benchmark.data.samplers",
    "benchmark.data.flow",
    "benchmark.data.formats",
    "benchmark.evaluation",
    "methods",
)

# --------------------------------------------------------------------------- plugin loading
_loaded = False
_loading_dist: dict[str, str] = {}  # module prefix -> distribution name, for 'where it comes from'


def _plugin_dist(source: str) -> str | None:
    """The distribution whose entry point is being loaded when ``source`` ('module:Object') registers."""
    module = source.split(":", 1)[0]
    for prefix, dist in _loading_dist.items():
        if module == prefix or module.startswith(prefix + "."):
            return dist
    return None


def _origin(dist: str | None, source: str) -> str:
    return source if dist else f"vssl-bench ({source})"


def provenance(registry: Registry, name: str) -> dict[str, Any]:
    """Where an entry's code comes from, for env.json: its distribution and version and, for an editable
    install, the git commit and dirty flag of its source folder (in-tree entries: this repository, whose git
    state every run records anyway)."""
    entry = registry.entry(name)
    dist = entry.distribution or "vssl-bench"
    out: dict[str, Any] = {"name": name, "source": entry.source, "distribution": dist}
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return out
    out["version"] = found.version
    if entry.distribution is None:
        return out
    try:
        import json

        direct = json.loads(found.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    editable = bool(direct.get("dir_info", {}).get("editable"))
    out["editable"] = editable
    url = str(direct.get("url", ""))
    if editable and url.startswith("file://"):
        from pathlib import Path
        from urllib.parse import unquote, urlparse

        from benchmark.rundir import git_state

        out.update(git_state(Path(unquote(urlparse(url).path))))
    return out


def load_plugins() -> None:
    """Import in-tree samplers and methods, then every ``vssl.methods`` entry point (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in IN_TREE:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):  # a package: every public module
            if not info.name.startswith("_"):
                importlib.import_module(f"{name}.{info.name}")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.split(":", 1)[0]
        dist = ep.dist.name if ep.dist is not None else ep.name
        _loading_dist[module] = dist
        fresh = module not in sys.modules
        before = _registered_count()
        try:
            obj = ep.load()
        except UserError:
            raise
        except Exception as exc:  # a broken plugin stops the harness with one line naming it, not a traceback
            raise UserError(
                f"plugin '{ep.name}' of distribution {dist} ({ep.value}) failed to import"
                f"{_where(exc)}: {type(exc).__name__}: {exc}"
            ) from None
        # An entry point may name a class directly rather than a module whose import registers it.
        if inspect.isclass(obj) and getattr(obj, "registry_name", None) is None:
            register_method(ep.name)(obj)
        elif fresh and inspect.ismodule(obj) and _registered_count() == before:
            raise UserError(
                f"plugin '{ep.name}' of distribution {dist} ({ep.value}) imported {getattr(obj, '__file__', None) or obj}"
                " but registered nothing (no method, sampler, protocol or dataset format; a folder of that name in the"
                " current directory may shadow it)"
            )


def _registered_count() -> int:
    # not entries(): that would load plugins
    return sum(len(r._entries) for r in (METHODS, SAMPLERS, PROTOCOLS, FORMATS))


def _where(exc: BaseException) -> str:
    """' at FILE:LINE' of the plugin's own line, skipping Python's import machinery and this file (a dataclass
    field without a default fails inside dataclasses.py, named at the class)."""
    return raised_at(exc, skip=(os.path.dirname(importlib.__file__), __file__))


def method_table() -> list[dict[str, str]]:
    """Rows for ``vssl methods``: name, backbone kind, sampler, origin."""
    rows = []
    for entry in METHODS.entries():
        cls = entry.obj
        rows.append(
            {
                "name": entry.name,
                "backbone": getattr(cls, "backbone_kind", "either"),
                "sampler": getattr(cls, "sampler", "-") or "-",
                "source": entry.source,
                "summary": (inspect.getdoc(cls) or "").split("\n", 1)[0],
            }
        )
    return rows
