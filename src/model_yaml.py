"""Pure model-YAML rewriting: base YOLO11 graph + insertion positions + attention -> new graph.

Ultralytics builds a model from a YAML dict and knows nothing about our modules: for a module it
does not know it passes the YAML args verbatim and takes the output channels from its input. So
this module resolves each inserted layer's channels for the chosen scale itself, inserts the
layers, and remaps every absolute `from` index that the insertion shifted. No torch needed: the
result is plain data, saved next to the run, so resume, checkpoint loading, DDP workers and `yolo`
CLI users all see the same architecture.
"""
from __future__ import annotations

import copy
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

SCALES = ("n", "s", "m", "l", "x")

# Layers whose first YAML arg is their output channel count (scaled by width, capped by
# max_channels). Mirrors the subset of ultralytics' `base_modules` that YOLO11 detection uses.
_CHANNEL_ARG_MODULES = {"Conv", "C3k2", "SPPF", "C2PSA", "C2f", "C3", "Bottleneck", "DWConv"}
_DETECT_MODULES = {"Detect"}


class PositionError(ValueError):
    """An insertion position that the base graph cannot take."""


@dataclass(frozen=True)
class Rewrite:
    """The rewritten model dict plus the bookkeeping that weight transfer needs."""

    model: dict[str, Any]
    # base layer index -> index of the same (unchanged) layer in the new graph; replaced layers absent
    layer_map: dict[int, int]
    # indices (in the new graph) of the inserted attention layers, with their channel counts
    inserted: dict[int, int] = field(default_factory=dict)


def base_yaml_path(base: str = "yolo11") -> Path:
    """Path of ultralytics' own model YAML, found without importing ultralytics (slow import)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ultralytics is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    version = "".join(ch for ch in base if ch.isdigit())
    path = root / "cfg" / "models" / version / f"{base}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"base model YAML {path} not found in the installed ultralytics")
    return path


def load_base(base: str = "yolo11") -> dict[str, Any]:
    return yaml.safe_load(base_yaml_path(base).read_text())


def layers_of(model: dict[str, Any]) -> list[list[Any]]:
    return [list(layer) for layer in model["backbone"] + model["head"]]


def _make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


def _absolute(f: int | Sequence[int], i: int) -> list[int]:
    """`from` entries as absolute layer indices (-1 stays -1 only for the network input)."""
    froms = [f] if isinstance(f, int) else list(f)
    return [x if (x >= 0 or i == 0) else i + x for x in froms]


def layer_channels(model: dict[str, Any], scale: str, input_channels: int = 3) -> list[int]:
    """Output channels of every layer at `scale`, following ultralytics' parse_model rules."""
    if scale not in model.get("scales", {}):
        raise ValueError(f"scale {scale!r} not in {sorted(model.get('scales', {}))}")
    _, width, max_channels = model["scales"][scale]
    channels: list[int] = []
    for i, (f, _n, m, args) in enumerate(layers_of(model)):
        froms = _absolute(f, i)
        inputs = [input_channels if x < 0 else channels[x] for x in froms]
        if m in _CHANNEL_ARG_MODULES:
            c2 = _make_divisible(min(args[0], max_channels) * width, 8)
        elif m == "Concat":
            c2 = sum(inputs)
        elif m in _DETECT_MODULES:
            c2 = 0  # no feature map out
        else:  # Upsample, BatchNorm, and every module ultralytics does not know (ours)
            c2 = inputs[0]
        channels.append(c2)
    return channels


def detect_index(model: dict[str, Any]) -> int:
    return next(i for i, layer in enumerate(layers_of(model)) if layer[2] in _DETECT_MODULES)


def validate_position(model: dict[str, Any], after: Sequence[int], replace: Sequence[int], scale: str) -> None:
    """Raise PositionError naming the bad index and the valid range before anything is built."""
    n_layers = len(layers_of(model))
    det = detect_index(model)
    valid = f"valid layer indices are 0..{det - 1} (the Detect layer is {det})"
    for kind, indices in (("after", after), ("replace", replace)):
        for idx in indices:
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise PositionError(f"pos.{kind} entry {idx!r} is not an integer layer index; {valid}")
            if idx < 0 or idx >= n_layers:
                raise PositionError(f"pos.{kind} index {idx} is outside the model; {valid}")
            if idx >= det:
                raise PositionError(f"pos.{kind} index {idx} is the Detect layer; {valid}")
        if len(set(indices)) != len(indices):
            raise PositionError(f"pos.{kind} lists an index twice: {list(indices)}")
    both = sorted(set(after) & set(replace))
    if both:
        raise PositionError(f"layer(s) {both} are both in pos.after and pos.replace; pick one")
    channels = layer_channels(model, scale)
    layers = layers_of(model)
    for idx in replace:
        froms = _absolute(layers[idx][0], idx)
        if len(froms) != 1 or froms[0] < 0:
            raise PositionError(f"pos.replace index {idx} ({layers[idx][2]}) has {len(froms)} inputs; "
                                "only single-input layers can be replaced by a channel-preserving module")
        c_in = channels[froms[0]]
        if c_in != channels[idx]:
            raise PositionError(f"pos.replace index {idx} ({layers[idx][2]}) maps {c_in} -> {channels[idx]} "
                                "channels; an attention module keeps channels, so it can only replace a "
                                "layer with equal input and output channels")


def insert_attention(
    model: dict[str, Any],
    scale: str,
    module: str,
    module_args: Callable[[int], list[Any]],
    after: Sequence[int] = (),
    replace: Sequence[int] = (),
) -> Rewrite:
    """Insert `module` after the layers in `after` and in place of those in `replace`.

    Inserting after layer j means the module's output stands for j's output everywhere: the next
    layer reads it through -1 and every absolute reference to j (Concat, Detect) is remapped to it.
    `module_args(channels)` gives the YAML args for a module that sees `channels` channels.
    """
    after, replace = list(after), list(replace)
    validate_position(model, after, replace, scale)
    channels = layer_channels(model, scale)
    layers = layers_of(model)
    n_backbone = len(model["backbone"])

    new_backbone: list[list[Any]] = []
    new_head: list[list[Any]] = []
    stands_for: dict[int, int] = {}  # base index -> new index whose output replaces it downstream
    layer_map: dict[int, int] = {}
    inserted: dict[int, int] = {}

    def emit(section: list[list[Any]], layer: list[Any]) -> int:
        section.append(layer)
        return len(new_backbone) + len(new_head) - 1

    for i, (f, n, m, args) in enumerate(layers):
        section = new_backbone if i < n_backbone else new_head
        position = len(new_backbone) + len(new_head)
        froms = [x if x < 0 else stands_for[x] for x in _absolute(f, i)]
        new_f = _relative_style(froms, position, single=isinstance(f, int))
        if i in replace:
            c_in = channels[_absolute(f, i)[0]]
            new_i = emit(section, [new_f, 1, module, module_args(c_in)])
            inserted[new_i] = c_in
        else:
            new_i = emit(section, [new_f, n, m, copy.deepcopy(args)])
            layer_map[i] = new_i
            if i in after:
                new_i = emit(section, [-1, 1, module, module_args(channels[i])])
                inserted[new_i] = channels[i]
        stands_for[i] = new_i

    new_model = copy.deepcopy({k: v for k, v in model.items() if k not in ("backbone", "head")})
    new_model["backbone"], new_model["head"] = new_backbone, new_head
    return Rewrite(model=new_model, layer_map=layer_map, inserted=inserted)


def _relative_style(froms: list[int], position: int, single: bool) -> int | list[int]:
    """Write a leading previous-layer reference as -1 and the rest absolute, as ultralytics' YAMLs do."""
    styled = [-1 if x < 0 or (k == 0 and x == position - 1) else x for k, x in enumerate(froms)]
    return styled[0] if single else styled


def model_file_name(base: str, scale: str, attn: str, pos: str) -> str:
    """A file name ultralytics can read the scale from (it guesses it from `yolo11<scale>`)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{attn}-{pos}")
    return f"{base}{scale}-{safe}.yaml"


def dump_yaml(model: dict[str, Any], path: Path) -> Path:
    """Write the model YAML in ultralytics' compact style (one layer per line)."""
    lines = ["# generated by src.architecture; build with ultralytics as usual"]
    for key, value in model.items():
        if key in ("backbone", "head"):
            continue
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {_flow(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {_flow(value)}")
    index = 0
    for section in ("backbone", "head"):
        lines.append(f"{section}:")
        for layer in model[section]:
            lines.append(f"  - {_flow(layer)}  # {index}")
            index += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _flow(value: Any) -> str:
    """One-line YAML for a value (flow style), without the document-end marker of bare scalars."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text[: -len("...")].strip() if text.endswith("\n...") else text
