"""What ultralytics builds from a base YAML at a scale: each layer's output channels and how many
bottlenecks it holds, read off one real build, so no copy of ultralytics' channel rules or module
lists is needed here."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import torch

from src.arch.keys import INSIDE_KEY
from src.ultralytics_glue.inside import bottlenecks


@dataclass(frozen=True)
class Layout:
    channels: tuple[int, ...]  # output channels per layer (0 for the Detect head)
    bottlenecks: tuple[int, ...]  # Bottleneck modules inside each layer


def base_layout(model: dict, scale: str) -> Layout:
    """The layout of `model` (a base YAML dict) built at `scale`; cached per graph and scale."""
    import yaml

    return _layout(yaml.safe_dump(model, sort_keys=True), scale)


@lru_cache(maxsize=32)
def _layout(model_text: str, scale: str) -> Layout:
    """Built on the meta device (shapes without memory or compute: YOLO11x in ~0.2 s instead of
    ~20 s) and run through ultralytics' own forward routing. Without the Detect head (the last
    layer): no position may name it, it holds no bottleneck, and building it on the meta device is
    slow (DFL's `arange` there goes through torch's Python references)."""
    import types

    import yaml
    from ultralytics.nn import tasks

    spec = {**copy.deepcopy(yaml.safe_load(model_text)), "scale": scale, "nc": 1}
    spec.pop(INSIDE_KEY, None)
    spec["head"] = spec["head"][:-1]
    with torch.device("meta"):
        layers, save = tasks.parse_model(spec, ch=3, verbose=False)
    counted = [len(bottlenecks(layer)) for layer in layers]
    _without_batch_norm(layers)
    out: dict[int, int] = {}
    for k, layer in enumerate(layers):
        layer.register_forward_hook(lambda m, i, o, k=k: out.__setitem__(k, o.shape[1]))
    with torch.no_grad():
        tasks.BaseModel._predict_once(
            types.SimpleNamespace(model=layers, save=save), torch.zeros(1, 3, 64, 64, device="meta")
        )
    return Layout(channels=(*(out[k] for k in range(len(layers))), 0), bottlenecks=(*counted, 0))


def _without_batch_norm(layers: torch.nn.Module) -> None:
    """Swap every BatchNorm for an Identity: it keeps shapes, and on the meta device it runs torch's
    Python decomposition, ~90 % of the layout's time (0.3 s of a YOLO11n job's fixed cost)."""
    for parent in list(layers.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, torch.nn.Identity())
