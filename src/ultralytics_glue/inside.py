"""Attention inside the bottlenecks of ultralytics' blocks (C3k2, C2f, C3k, ...), built from the YAML.

ultralytics' parser cannot express "EMA inside each bottleneck of layer 16": an unknown block in
the YAML would get its output channels wrong. So the model YAML keeps its plain blocks and says
what to put inside them under a top-level `inside:` key (one spec, or a list of them for several
entries: see `specs_of`); `parse_model` (wrapped when `src` is imported, see `install`) builds the
plain graph and then swaps each `Bottleneck` of those layers for an `AttentionBottleneck` holding
the same convolutions (so a plain checkpoint's tensors keep their names and transfer) plus the
attention module:

- mode `branch`: out = x + attn(cv2(cv1(x)))   (the residual branch, before the add)
- mode `conv`:   out = x + proj(attn(cv1(x)))  (the module replaces the second 3x3 conv, as
  CoTNet's CotLayer does; `proj` is a 1x1 Conv where that conv changed the channel count,
  e.g. C3k2's e=0.5 bottlenecks at scales n/s, else absent)

Every process that parses the YAML sees the same model: training, resume, DDP workers, and any
plain ultralytics script after `import src`. Checkpoints pickle the built model as usual.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from src.arch.keys import INSIDE_KEY, INSIDE_MODES

# ultralytics' modules are imported inside the functions: `install` runs while ultralytics is
# still importing its parser (from the hook in src/__init__.py), so this module must not need it.


class AttentionBottleneck(nn.Module):
    """A bottleneck with an attention module in its residual branch (see the module docstring)."""

    def __init__(self, bottleneck: nn.Module, attn: nn.Module, mode: str):
        from ultralytics.nn.modules import Conv

        super().__init__()
        if mode not in INSIDE_MODES:
            raise ValueError(f"inside mode {mode!r}; valid choices: {', '.join(INSIDE_MODES)}")
        self.mode = mode
        self.add = bottleneck.add
        self.cv1 = bottleneck.cv1
        self.attn = attn
        c_hidden, c_out = bottleneck.cv1.conv.out_channels, bottleneck.cv2.conv.out_channels
        if mode == "branch":
            self.cv2 = bottleneck.cv2
        elif c_hidden != c_out:
            self.proj = Conv(c_hidden, c_out, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        if self.mode == "branch":
            y = self.attn(self.cv2(y))
        else:
            y = self.attn(y)
            if hasattr(self, "proj"):
                y = self.proj(y)
        return x + y if self.add else y


# on torch's `weights_only` allow-list, as the attention classes are (src.attention): checkpoints load
# under ultralytics' opt-in `ULTRALYTICS_SAFE_LOAD=1`
torch.serialization.add_safe_globals([AttentionBottleneck])


def attention_channels(bottleneck: nn.Module, mode: str) -> int:
    """The channel count the attention module sees in a bottleneck."""
    conv = bottleneck.cv2 if mode == "branch" else bottleneck.cv1
    return conv.conv.out_channels


def bottlenecks(layer: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Every Bottleneck inside a layer (nested in C3k, Sequential, ...), as (parent, attribute, it)."""
    from ultralytics.nn.modules import Bottleneck

    found = []
    for parent in layer.modules():
        for name, child in parent.named_children():
            if isinstance(child, Bottleneck):
                found.append((parent, name, child))
    return found


def apply(model: nn.Sequential, spec: Mapping[str, Any]) -> int:
    """Swap the bottlenecks of `spec["layers"]` for attention bottlenecks; returns how many."""
    from src import attention

    mode = spec.get("mode", "branch")
    params = dict(spec.get("params") or {})
    count = 0
    for index in spec["layers"]:
        found = bottlenecks(model[int(index)])
        if not found:
            raise ValueError(f"inside: layer {index} ({type(model[int(index)]).__name__}) has no bottleneck")
        for parent, name, bottleneck in found:
            attn = attention.build(spec["module"], attention_channels(bottleneck, mode), **params)
            setattr(parent, name, AttentionBottleneck(bottleneck, attn, mode))
            count += 1
    return count


def specs_of(value: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """The `inside:` key's specs: one dict (one entry, and every model YAML written before several
    entries could be) or a list of them; a layer named by two specs is an error (a block's
    bottlenecks hold one attention)."""
    specs = [] if not value else [value] if isinstance(value, Mapping) else list(value)
    seen: set[int] = set()
    for spec in specs:
        twice = seen & {int(i) for i in spec["layers"]}
        if twice:
            raise ValueError(f"inside: layer {min(twice)} is named by two specs; a block holds one attention")
        seen.update(int(i) for i in spec["layers"])
    return specs


def install(tasks_module) -> None:
    """Wrap ultralytics' `parse_model` so a YAML's `inside:` specs are applied after the plain build;
    without any it is the original function. Idempotent."""
    original = tasks_module.parse_model
    if getattr(original, "_applies_inside", False):
        return

    def parse_model(d, ch, verbose=True):
        model, save = original(d, ch, verbose)
        for spec in specs_of(d.get(INSIDE_KEY)):
            apply(model, spec)
        return model, save

    parse_model._applies_inside = True
    parse_model.__wrapped__ = original
    parse_model.__doc__ = original.__doc__
    tasks_module.parse_model = parse_model
