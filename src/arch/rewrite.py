"""The YAML rewrite: a base graph plus a resolved position and an attention module -> a new graph.

Ultralytics builds a model from a YAML dict and knows nothing about our modules: for a module it
does not know it passes the YAML args verbatim and takes the output channels from its input. So
the rewrite writes each inserted layer's channels for the chosen scale itself (the caller passes
the base's per-layer channels, read off a real build), inserts the layers, and remaps every
absolute `from` index that the insertion shifted. Attention inside blocks is recorded under the
YAML's `inside:` key. The result is plain data, saved next to the run, so resume, checkpoint
loading, DDP workers and `yolo` CLI users all see the same architecture.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from src.arch.bases import absolute_froms, layers_of, plain_graph
from src.arch.keys import INSIDE_KEY
from src.arch.positions import Position


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


def unchanged(model: dict[str, Any]) -> Rewrite:
    """The base graph as it is (the `none` baseline): every layer maps to itself."""
    return Rewrite(model=plain_graph(model), layer_map={i: i for i in range(len(layers_of(model)))})


def insert_attention(
    model: dict[str, Any],
    channels: Sequence[int],
    module: str,
    module_args: Callable[[int], list[Any]],
    position: Position,
    inside_spec: Mapping[str, Any] | None = None,
) -> Rewrite:
    """Insert `module` after the layers in `position.after`, in place of those in `position.replace`,
    and record `inside_spec` ({"module": attn name, "params": {...}, "mode": ...}) for the blocks in
    `position.inside`. The position is taken as resolved and checked (`resolve_position`).

    Inserting after layer j means the module's output stands for j's output everywhere: the next
    layer reads it through -1 and every absolute reference to j (Concat, Detect) is remapped to it.
    `module_args(c)` gives the YAML args for a module that sees c channels; `channels` are the
    base's per-layer output channels at the chosen scale.
    """
    after, replace, inside = set(position.after), set(position.replace), list(position.inside)
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
        index = len(new_backbone) + len(new_head)
        froms = [x if x < 0 else stands_for[x] for x in absolute_froms(f, i)]
        new_f = _relative_style(froms, index, single=isinstance(f, int))
        if i in replace:
            c_in = channels[absolute_froms(f, i)[0]]
            new_i = emit(section, [new_f, 1, module, module_args(c_in)])
            inserted[new_i] = c_in
        else:
            new_i = emit(section, [new_f, n, m, copy.deepcopy(args)])
            layer_map[i] = new_i
            if i in after:
                new_i = emit(section, [-1, 1, module, module_args(channels[i])])
                inserted[new_i] = channels[i]
        stands_for[i] = new_i

    new_model = copy.deepcopy({k: v for k, v in plain_graph(model).items() if k not in ("backbone", "head")})
    new_model["backbone"], new_model["head"] = new_backbone, new_head
    inside_new = [layer_map[i] for i in inside]
    if inside_new:
        if not inside_spec:
            raise ValueError("pos.inside needs inside_spec (the module to put inside the blocks)")
        new_model[INSIDE_KEY] = {"layers": inside_new, **dict(inside_spec)}
    return Rewrite(model=new_model, layer_map=layer_map, inserted=inserted, inside=inside_new)


def _relative_style(froms: list[int], index: int, single: bool) -> int | list[int]:
    """Write a leading previous-layer reference as -1 and the rest absolute, as ultralytics' YAMLs do."""
    styled = [-1 if x < 0 or (k == 0 and x == index - 1) else x for k, x in enumerate(froms)]
    return styled[0] if single else styled


def model_file_name(base: str, scale: str, attn: str, pos: str) -> str:
    """A file name ultralytics can read the scale from (it guesses it from `yolo11<scale>`)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{attn}-{pos}")
    return f"{base}{scale}-{safe}.yaml"


def dump_yaml(model: dict[str, Any], path: Path) -> Path:
    """Write the model YAML in ultralytics' compact style (one layer per line)."""
    lines = ["# generated by src.arch.rewrite; build with ultralytics as usual (after `import src`)"]
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
