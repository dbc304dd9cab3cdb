"""Attention modules behind a registry keyed by their command-line names (`attn=<name>`).

Adding a module takes one file (a class decorated with `@register("name")`, taking
`(channels, <keyword params with defaults>)` and keeping the channel count) plus one
`conf/attn/<name>.yaml`. Files in this package are imported automatically (names starting with `_`
are not), and so are the `*.py` files in the folders listed in the environment variable
`ATTENTION_MODULE_PATH` (os.pathsep-separated; an environment variable so that DDP workers and
other subprocesses find them too), so nothing else needs editing. The constructor signature is the
single source of truth for the valid params, their defaults and their positional order in the
model YAML. A class may define `check_knobs(**params)` to reject bad values before anything runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import pkgutil
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from src.results.schema import BASELINE

# `none` is the baseline: nothing is inserted, `build` gives an Identity, `get_class` gives None.
_REGISTRY: dict[str, type[nn.Module] | None] = {BASELINE: None}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make the class buildable as `attn=<name>`."""

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"attention name {name!r} is registered twice ({_REGISTRY[name]} and {cls})")
        _REGISTRY[name] = cls
        return cls

    return decorator


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_class(name: str) -> type[nn.Module] | None:
    """The class registered as `name` (None for `none`)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown attention module {name!r}; valid choices: {', '.join(available())}")
    return _REGISTRY[name]


def knobs(name: str) -> dict[str, Any]:
    """A module's parameters after the channel count, with their defaults, in signature order."""
    cls = get_class(name)
    if cls is None:
        return {}
    params = list(inspect.signature(cls).parameters.values())[1:]  # [0] is the channel count
    return {p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _checked(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """All params of the module in signature order: the given ones over the defaults."""
    valid = knobs(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r} for attention {name!r}; valid parameters: {', '.join(valid) or '(none)'}"
        )
    merged = {**valid, **params}
    missing = [k for k, v in merged.items() if v is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"attention {name!r} needs parameter {missing[0]!r} (it has no default)")
    check = getattr(get_class(name), "check_knobs", None)
    if check is not None:
        check(**merged)
    return merged


def yaml_args(name: str, channels: int, params: dict[str, Any] | None = None) -> list[Any]:
    """Positional constructor args for the model YAML, where ultralytics calls `Module(*args)`."""
    return [channels, *_checked(name, dict(params or {})).values()]


def build(name: str, channels: int, **params: Any) -> nn.Module:
    cls = get_class(name)
    checked = _checked(name, params)
    return nn.Identity() if cls is None else cls(channels, **checked)


def hidden_width(channels: int, reduction: int, owner: str, logger: logging.Logger) -> int:
    """`channels // reduction`, the official hidden size, but at least 1 (logged when raised to 1)."""
    if channels < 1 or reduction < 1:
        raise ValueError(
            f"{owner}: channels and reduction must be positive, got channels={channels}, reduction={reduction}"
        )
    if channels // reduction < 1:
        logger.info("%s: %d channels / reduction %d < 1; using a hidden size of 1", owner, channels, reduction)
    return max(channels // reduction, 1)


def nearest_divisor(n: int, wanted: int, min_quotient: int = 1) -> int:
    """The divisor d of n closest to `wanted` with n // d >= min_quotient (the smaller on a tie).

    Deterministic group-count fallback for channel counts the paper's setting does not divide.
    """
    divisors = [d for d in range(1, n + 1) if n % d == 0 and n // d >= min_quotient] or [1]
    return min(divisors, key=lambda d: (abs(d - wanted), d))


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that survives training on a single value per channel (batch 1, 1x1 map).

    Plain BN raises there ("Expected more than 1 value per channel"); batch statistics of one value
    are meaningless anyway, so such a batch is normalized with the running statistics and leaves
    them untouched. Any other input is plain BatchNorm2d, with the same state_dict.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.track_running_stats and x.numel() == x.shape[1]:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def capacity_report(model: nn.Module) -> list[dict[str, Any]] | None:
    """Each capacity-control layer in `model`: its channels and params next to the module it matches.

    None when the model has none (for result.json: the counts the control was sized against).
    """
    cls = _REGISTRY.get("capacity")
    found = [m for m in model.modules() if cls is not None and isinstance(m, cls)]
    if not found:
        return None
    return [
        {
            "channels": m.channels,
            "params": sum(p.numel() for p in m.parameters()),
            "matched_module": m.matched_module,
            "matched_params": m.matched_params,
        }
        for m in found
    ]


MODULE_PATH_ENV = "ATTENTION_MODULE_PATH"
# Modules found through ATTENTION_MODULE_PATH are imported as `src.attention._ext.<file stem>`, so a
# pickled model (an ultralytics checkpoint) that holds one unpickles wherever `src` is importable.
_EXTERNAL = f"{__name__}._ext"


def _allow_in_checkpoints(module: types.ModuleType) -> None:
    """Put the nn.Module classes a file defines (registered ones and their helpers) on torch's
    `weights_only` allow-list, so checkpoints holding them load under ultralytics' opt-in safe load
    (`ULTRALYTICS_SAFE_LOAD=1`: `torch.load(weights_only=True)`, which refuses any class not on it)."""
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
    ]
    if classes:
        torch.serialization.add_safe_globals(classes)


def _import_all() -> None:
    _allow_in_checkpoints(sys.modules[__name__])  # BatchNorm2d
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            _allow_in_checkpoints(importlib.import_module(f"{__name__}.{info.name}"))


def import_search_path(paths: str | None = None) -> list[str]:
    """Import every `*.py` (not starting with `_`) in the folders of `paths` (default: the
    ATTENTION_MODULE_PATH variable); their `@register` calls add them. Returns the module names."""
    paths = os.environ.get(MODULE_PATH_ENV, "") if paths is None else paths
    package = sys.modules.get(_EXTERNAL)
    if package is None:
        package = types.ModuleType(_EXTERNAL, "Attention modules imported from ATTENTION_MODULE_PATH.")
        package.__path__ = []  # a package, so `import src.attention._ext.<name>` resolves from sys.modules
        sys.modules[_EXTERNAL] = package
        sys.modules[__name__]._ext = package
    imported = []
    for folder in filter(None, paths.split(os.pathsep)):
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            warnings.warn(f"{MODULE_PATH_ENV}: {folder!r} is not a directory; skipped", stacklevel=2)
            continue
        for file in sorted(root.glob("*.py")):
            if file.name.startswith("_"):
                continue
            name = f"{_EXTERNAL}.{file.stem}"
            loaded = sys.modules.get(name)
            if loaded is not None:
                if Path(loaded.__file__).resolve() != file:
                    raise ValueError(
                        f"{MODULE_PATH_ENV}: two attention files named {file.name!r} "
                        f"({loaded.__file__} and {file}); rename one"
                    )
                continue
            spec = importlib.util.spec_from_file_location(name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            setattr(package, file.stem, module)
            _allow_in_checkpoints(module)
            imported.append(name)
    return imported


_import_all()
import_search_path()

__all__ = [
    "BatchNorm2d",
    "MODULE_PATH_ENV",
    "available",
    "build",
    "capacity_report",
    "get_class",
    "hidden_width",
    "import_search_path",
    "knobs",
    "nearest_divisor",
    "register",
    "yaml_args",
]
