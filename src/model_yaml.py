"""Pure model-YAML rewriting: base graph + position (roles or indices) + attention -> new graph.

Ultralytics builds a model from a YAML dict and knows nothing about our modules: for a module it
does not know it passes the YAML args verbatim and takes the output channels from its input. So
this module writes each inserted layer's channels for the chosen scale itself (read off a real
build of the base: `src.ultralytics_glue.layout`), inserts the layers, and remaps every absolute
`from` index that the insertion shifted. A position names roles (`neck`: what feeds Detect, ...)
that are found in the graph of whichever base is chosen (YOLO11, YOLO26, YOLOv8, YOLO12), or
explicit layer indices. Attention inside blocks is recorded under the YAML's `inside:` key (see
`src/ultralytics_glue/inside.py`). The result is plain data, saved next to the run, so resume,
checkpoint loading, DDP workers and `yolo` CLI users all see the same architecture.
"""
from __future__ import annotations

import copy
import importlib.util
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

SCALES = ("n", "s", "m", "l", "x")
INSIDE_KEY = "inside"
INSIDE_MODES = ("branch", "conv")

# Roles a position may name, per kind: resolved in each base's own graph by `role_indices`.
ROLES = {
    "after": {"neck": "after each layer that feeds Detect",
              "backbone": "after each backbone layer the head reads, and after the last backbone layer",
              "backbone_p5": "after the last backbone layer"},
    "replace": {"c2psa": "the base's C2PSA block (YOLO11's own attention)"},
    "inside": {"neck": "inside every bottleneck of the blocks that feed Detect",
               "backbone": "inside every bottleneck of the backbone's blocks"},
}


class PositionError(ValueError):
    """An insertion position that the base graph cannot take."""


@dataclass(frozen=True)
class Position:
    """A position resolved to layer indices of one base graph."""

    after: list[int] = field(default_factory=list)
    replace: list[int] = field(default_factory=list)
    inside: list[int] = field(default_factory=list)
    inside_mode: str = "branch"


@dataclass(frozen=True)
class Rewrite:
    """The rewritten model dict plus the bookkeeping that weight transfer needs."""

    model: dict[str, Any]
    # base layer index -> index of the same layer in the new graph; replaced layers absent
    layer_map: dict[int, int]
    # indices (in the new graph) of the inserted attention layers, with their channel counts
    inserted: dict[int, int] = field(default_factory=dict)
    # indices (in the new graph) of the blocks that hold attention inside their bottlenecks
    inside: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------------- bases
def _models_root() -> Path:
    """ultralytics' cfg/models folder, found without importing ultralytics (slow import)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ultralytics is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"


def base_yaml_path(base: str = "yolo11") -> Path:
    """ultralytics' own YAML of a base model (`yolo11` -> cfg/models/11/yolo11.yaml, `yolov8` ->
    cfg/models/v8/yolov8.yaml), wherever its folder is."""
    found = sorted(_models_root().rglob(f"{base}.yaml"))
    if not found:
        raise FileNotFoundError(f"base model {base!r} is not in the installed ultralytics; detection bases: "
                                f"{', '.join(available_bases())}")
    return found[0]


@lru_cache(maxsize=1)
def available_bases() -> tuple[str, ...]:
    """The plain detection bases ultralytics ships (`yolo11`, `yolo26`, `yolov8`, ...)."""
    names = {p.stem for p in _models_root().glob("*/yolo*.yaml") if re.fullmatch(r"yolov?\d+", p.stem)}
    return tuple(sorted(names))


@lru_cache(maxsize=16)
def _base_text(base: str) -> str:
    return base_yaml_path(base).read_text()


def load_base(base: str = "yolo11") -> dict[str, Any]:
    model = yaml.safe_load(_base_text(base))
    model["base"] = base  # ultralytics ignores unknown top-level keys; errors can name the base
    return model


def layers_of(model: dict[str, Any]) -> list[list[Any]]:
    return [list(layer) for layer in model["backbone"] + model["head"]]


def _absolute(f: int | Sequence[int], i: int) -> list[int]:
    """`from` entries as absolute layer indices (-1 stays -1 only for the network input)."""
    froms = [f] if isinstance(f, int) else list(f)
    return [x if (x >= 0 or i == 0) else i + x for x in froms]


def layout_of(model: dict[str, Any], scale: str):
    """Channels and bottleneck counts of each layer, from one real build (torch, ultralytics)."""
    if scale not in model.get("scales", {}):
        raise PositionError(f"scale {scale!r} not in {sorted(model.get('scales', {}))}")
    from src.ultralytics_glue.layout import base_layout

    return base_layout({k: v for k, v in model.items() if k != "base"}, scale)


def layer_channels(model: dict[str, Any], scale: str) -> list[int]:
    """Output channels of every layer at `scale` (0 for Detect), as ultralytics builds them."""
    return list(layout_of(model, scale).channels)


def detect_index(model: dict[str, Any]) -> int:
    """The detection head: the last layer of a detection YAML."""
    return len(layers_of(model)) - 1


# ---------------------------------------------------------------------------------- roles
def role_indices(model: dict[str, Any], kind: str, role: str, bottleneck_counts: Sequence[int]) -> list[int]:
    """The layers a role names in this graph; PositionError when the base has none."""
    if role not in ROLES.get(kind, {}):
        valid = ", ".join(ROLES.get(kind, {})) or "(none)"
        raise PositionError(f"pos.{kind}={role!r} is not a role; valid roles for pos.{kind}: {valid}, "
                            "or a list of layer indices")
    layers = layers_of(model)
    n_backbone = len(model["backbone"])
    det = detect_index(model)
    feeds_detect = sorted(x for x in _absolute(layers[det][0], det))
    last_backbone = n_backbone - 1
    read_by_head = {x for i in range(n_backbone, det) for x in _absolute(layers[i][0], i) if 0 <= x < n_backbone}
    if kind == "after":
        if role == "neck":
            return feeds_detect
        if role == "backbone":
            return sorted(read_by_head | {last_backbone})
        return [last_backbone]
    if kind == "replace":
        found = [i for i, layer in enumerate(layers) if layer[2] == "C2PSA"]
        if not found:
            have = [b for b in available_bases() if any(layer[2] == "C2PSA" for layer in layers_of(load_base(b)))]
            raise PositionError(f"pos.replace=c2psa: {model.get('base', 'this base')} has no C2PSA layer; "
                                f"bases that have one: {', '.join(have)}")
        return found
    candidates = feeds_detect if role == "neck" else range(n_backbone)
    found = [i for i in candidates if bottleneck_counts[i] > 0]
    if not found:
        raise PositionError(f"pos.inside={role}: {model.get('base', 'this base')} has no block with bottlenecks there")
    return found


def resolve_position(model: dict[str, Any], pos: Mapping[str, Any], scale: str) -> Position:
    """A `pos` config (each of after / replace / inside a role or a list of indices) as indices of
    this graph, checked: PositionError names the bad value and the valid choices."""
    layout = layout_of(model, scale)
    resolved = {}
    for kind in ("after", "replace", "inside"):
        value = pos.get(kind)
        if value is None or value == "" or value == []:
            resolved[kind] = []
        elif isinstance(value, str):
            resolved[kind] = role_indices(model, kind, value, layout.bottlenecks)
        elif isinstance(value, (list, tuple)):
            resolved[kind] = list(value)
        else:
            raise PositionError(f"pos.{kind}={value!r}: expected a role name or a list of layer indices")
    mode = pos.get("inside_mode") or "branch"
    if mode not in INSIDE_MODES:
        raise PositionError(f"pos.inside_mode={mode!r}; valid choices: {', '.join(INSIDE_MODES)}")
    position = Position(resolved["after"], resolved["replace"], resolved["inside"], mode)
    validate_position(model, position, layout)
    return position


def validate_position(model: dict[str, Any], position: Position, layout) -> None:
    """Raise PositionError naming the bad index and the valid range before anything is built."""
    layers = layers_of(model)
    det = detect_index(model)
    valid = f"valid layer indices are 0..{det - 1} (the Detect layer is {det})"
    for kind in ("after", "replace", "inside"):
        indices = getattr(position, kind)
        for idx in indices:
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise PositionError(f"pos.{kind} entry {idx!r} is not an integer layer index; {valid}")
            if idx < 0 or idx >= len(layers):
                raise PositionError(f"pos.{kind} index {idx} is outside the model; {valid}")
            if idx >= det:
                raise PositionError(f"pos.{kind} index {idx} is the Detect layer; {valid}")
        if len(set(indices)) != len(indices):
            raise PositionError(f"pos.{kind} lists an index twice: {list(indices)}")
    both = sorted(set(position.after) & set(position.replace))
    if both:
        raise PositionError(f"layer(s) {both} are both in pos.after and pos.replace; pick one")
    blocks = [i for i, n in enumerate(layout.bottlenecks) if n > 0]
    for idx in position.inside:
        if idx not in blocks:
            raise PositionError(f"pos.inside index {idx} ({layers[idx][2]}) is not a block with bottlenecks; "
                                f"blocks with bottlenecks in {model.get('base', 'this base')}: "
                                f"{', '.join(map(str, blocks))}")
    if set(position.inside) & set(position.replace):
        raise PositionError(f"layer(s) {sorted(set(position.inside) & set(position.replace))} are both in "
                            "pos.inside and pos.replace; pick one")
    for idx in position.replace:
        froms = _absolute(layers[idx][0], idx)
        if len(froms) != 1 or froms[0] < 0:
            raise PositionError(f"pos.replace index {idx} ({layers[idx][2]}) has {len(froms)} inputs; "
                                "only single-input layers can be replaced by a channel-preserving module")
        c_in = layout.channels[froms[0]]
        if c_in != layout.channels[idx]:
            raise PositionError(f"pos.replace index {idx} ({layers[idx][2]}) maps {c_in} -> {layout.channels[idx]} "
                                "channels; an attention module keeps channels, so it can only replace a "
                                "layer with equal input and output channels")


# ------------------------------------------------------------------------------- rewriting
def insert_attention(
    model: dict[str, Any],
    scale: str,
    module: str,
    module_args: Callable[[int], list[Any]],
    after: Sequence[int] = (),
    replace: Sequence[int] = (),
    inside: Sequence[int] = (),
    inside_spec: Mapping[str, Any] | None = None,
    channels: Sequence[int] | None = None,
) -> Rewrite:
    """Insert `module` after the layers in `after`, in place of those in `replace`, and record
    `inside_spec` ({"module": attn name, "params": {...}, "mode": ...}) for the blocks in `inside`.

    Inserting after layer j means the module's output stands for j's output everywhere: the next
    layer reads it through -1 and every absolute reference to j (Concat, Detect) is remapped to it.
    `module_args(channels)` gives the YAML args for a module that sees `channels` channels;
    `channels` are the base's per-layer output channels at `scale` (read off a build if omitted).
    """
    after, replace, inside = list(after), list(replace), list(inside)
    layout = layout_of(model, scale)
    validate_position(model, Position(after, replace, inside), layout)
    channels = list(channels) if channels is not None else list(layout.channels)
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

    new_model = copy.deepcopy({k: v for k, v in model.items() if k not in ("backbone", "head", "base")})
    new_model["backbone"], new_model["head"] = new_backbone, new_head
    inside_new = [layer_map[i] for i in inside]
    if inside_new:
        if not inside_spec:
            raise ValueError("pos.inside needs inside_spec (the module to put inside the blocks)")
        new_model[INSIDE_KEY] = {"layers": inside_new, **dict(inside_spec)}
    return Rewrite(model=new_model, layer_map=layer_map, inserted=inserted, inside=inside_new)


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
    lines = ["# generated by src.model_yaml; build with ultralytics as usual (after `import src`)"]
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
