"""Attention modules behind a registry keyed by their command-line names (`attn=<name>`).

Adding a module takes one file in this package (a class decorated with `@register("name")`,
taking `(channels, <keyword params with defaults>)` and keeping the channel count) plus one
`conf/attn/<name>.yaml`. Files here are imported automatically (names starting with `_` are not),
so nothing else needs editing. The constructor signature is the single source of truth for the
valid params, their defaults and their positional order in the model YAML.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

# `none` is the baseline: nothing is inserted, `build` gives an Identity, `get_class` gives None.
_REGISTRY: dict[str, type[nn.Module] | None] = {"none": None}


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
        raise ValueError(f"unknown parameter {unknown[0]!r} for attention {name!r}; "
                         f"valid parameters: {', '.join(valid) or '(none)'}")
    merged = {**valid, **params}
    missing = [k for k, v in merged.items() if v is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"attention {name!r} needs parameter {missing[0]!r} (it has no default)")
    return merged


def yaml_args(name: str, channels: int, params: dict[str, Any] | None = None) -> list[Any]:
    """Positional constructor args for the model YAML, where ultralytics calls `Module(*args)`."""
    return [channels, *_checked(name, dict(params or {})).values()]


def build(name: str, channels: int, **params: Any) -> nn.Module:
    cls = get_class(name)
    checked = _checked(name, params)
    return nn.Identity() if cls is None else cls(channels, **checked)


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


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_all()

from src.attention.cot import CoTBlock  # noqa: E402
from src.attention.cot_lite import CoTAttention  # noqa: E402
from src.attention.ema import EMA  # noqa: E402

__all__ = ["EMA", "BatchNorm2d", "CoTAttention", "CoTBlock", "available", "build", "get_class", "knobs",
           "nearest_divisor", "register", "yaml_args"]
