"""The YAML rewrite: a base graph plus entries (an attention module at a resolved position, one or
several) -> a new graph.

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
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from src.arch.bases import absolute_froms, layers_of, plain_graph
from src.arch.keys import INSIDE_KEY
from src.arch.positions import Position, PositionError
from src.results.schema import PLUS, entry_label


@dataclass(frozen=True)
class Entry:
    """One attention module placed in the graph: `module` (the YAML class name) with the YAML args
    `module_args(c)` for c channels, at `position` (resolved in the *base* graph, base indices),
    `inside_spec` ({"module": attn name, "params": {...}, "mode": ...}) for the blocks in
    `position.inside`, and a `label` (`entry_label`: "ema@neck") for messages and file names."""

    module: str
    module_args: Callable[[int], list[Any]]
    position: Position
    inside_spec: Mapping[str, Any] | None = None
    label: str = ""


@dataclass(frozen=True)
class Placed:
    """What one entry put into the new graph (indices of the new graph)."""

    label: str
    inserted: dict[int, int] = field(default_factory=dict)  # inserted layer -> its channels
    inside: list[int] = field(default_factory=list)  # blocks holding this entry's attention inside


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
    # the same per entry, in entry order (empty for the unchanged base)
    entries: tuple[Placed, ...] = ()


class EntryConflict(PositionError):
    """Two entries that cannot both have their place in one graph."""


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
    The one-entry case of `insert_entries`.
    """
    return insert_entries(model, channels, [Entry(module, module_args, position, inside_spec)])


def check_entries(entries: Sequence[Entry]) -> None:
    """Raise EntryConflict, naming both entries, the base layer and why, when two entries cannot
    share the graph: a layer one entry replaces that another uses (after, replace or inside), or
    two entries inside the same block (a block's bottlenecks hold one attention). Each entry's own
    position is checked on its own (`resolve_position`); two entries after the same layer are fine."""
    for a, first in enumerate(entries):
        for second in entries[a + 1 :]:
            for one, other in ((first, second), (second, first)):
                for kind, uses in _USES.items():
                    shared = set(one.position.replace) & set(getattr(other.position, kind))
                    if shared:
                        raise EntryConflict(
                            f"entries {one.label!r} and {other.label!r} conflict at {_base_layers(shared)}: "
                            f"{one.label!r} replaces it and {other.label!r} {uses}"
                        )
            shared = set(first.position.inside) & set(second.position.inside)
            if shared:
                raise EntryConflict(
                    f"entries {first.label!r} and {second.label!r} conflict at {_base_layers(shared)}: both "
                    "put attention inside its bottlenecks, and a block holds one"
                )


_USES = {"after": "is placed after it", "replace": "replaces it too", "inside": "puts attention inside it"}


def _base_layers(indices: set[int]) -> str:
    return ("base layer " if len(indices) == 1 else "base layers ") + ", ".join(map(str, sorted(indices)))


def insert_entries(model: dict[str, Any], channels: Sequence[int], entries: Sequence[Entry]) -> Rewrite:
    """Place every entry in one new graph, in one pass over the base layers; `check_entries` runs
    first, so a conflict fails before anything is rewritten.

    Inserting after layer j means the module's output stands for j's output everywhere: the next
    layer reads it through -1 and every absolute reference to j (Concat, Detect) is remapped to it.
    Entries after the same layer are stacked in entry order (the second reads the first). A layer
    an entry replaces gives way to its module. `module_args(c)` gives the YAML args for a module
    that sees c channels; `channels` are the base's per-layer output channels at the chosen scale
    (an attention module keeps channels, so a module after another module sees the same count).
    The `inside:` key holds one entry's spec as a dict (as every model YAML before several entries
    did) and a list of them when several entries put attention inside blocks.
    """
    check_entries(entries)
    for entry in entries:
        if entry.position.inside and not entry.inside_spec:
            where = f" (entry {entry.label!r})" if entry.label else ""
            raise ValueError(f"pos.inside needs inside_spec (the module to put inside the blocks){where}")
    layers = layers_of(model)
    n_backbone = len(model["backbone"])

    new_backbone: list[list[Any]] = []
    new_head: list[list[Any]] = []
    stands_for: dict[int, int] = {}  # base index -> new index whose output replaces it downstream
    layer_map: dict[int, int] = {}
    inserted: dict[int, int] = {}
    inserted_by: list[dict[int, int]] = [{} for _ in entries]

    def emit(section: list[list[Any]], layer: list[Any], k: int | None = None, c: int = 0) -> int:
        section.append(layer)
        new_i = len(new_backbone) + len(new_head) - 1
        if k is not None:  # entry k's module, seeing c channels
            inserted[new_i] = inserted_by[k][new_i] = c
        return new_i

    for i, (f, n, m, args) in enumerate(layers):
        section = new_backbone if i < n_backbone else new_head
        index = len(new_backbone) + len(new_head)
        froms = [x if x < 0 else stands_for[x] for x in absolute_froms(f, i)]
        new_f = _relative_style(froms, index, single=isinstance(f, int))
        replacing = [k for k, entry in enumerate(entries) if i in entry.position.replace]
        if replacing:
            (k,) = replacing  # check_entries: one entry at most
            c_in = channels[absolute_froms(f, i)[0]]
            new_i = emit(section, [new_f, 1, entries[k].module, entries[k].module_args(c_in)], k, c_in)
        else:
            new_i = emit(section, [new_f, n, m, copy.deepcopy(args)])
            layer_map[i] = new_i
        for k, entry in enumerate(entries):
            if i in entry.position.after:
                new_i = emit(section, [-1, 1, entry.module, entry.module_args(channels[i])], k, channels[i])
        stands_for[i] = new_i

    new_model = copy.deepcopy({k: v for k, v in plain_graph(model).items() if k not in ("backbone", "head")})
    new_model["backbone"], new_model["head"] = new_backbone, new_head
    placed = tuple(
        Placed(entry.label, mine, [layer_map[i] for i in entry.position.inside])
        for entry, mine in zip(entries, inserted_by, strict=True)
    )
    specs = [
        {"layers": list(done.inside), **dict(entry.inside_spec or {})}
        for entry, done in zip(entries, placed, strict=True)
        if done.inside
    ]
    if specs:
        new_model[INSIDE_KEY] = specs[0] if len(specs) == 1 else specs
    return Rewrite(new_model, layer_map, inserted, [i for done in placed for i in done.inside], placed)


def _relative_style(froms: list[int], index: int, single: bool) -> int | list[int]:
    """Write a leading previous-layer reference as -1 and the rest absolute, as ultralytics' YAMLs do."""
    styled = [-1 if x < 0 or (k == 0 and x == index - 1) else x for k, x in enumerate(froms)]
    return styled[0] if single else styled


def model_file_name(base: str, scale: str, attn: str, pos: str) -> str:
    """A file name ultralytics can read the scale from (it guesses it from `yolo11<scale>`):
    `yolo11n-ema-neck.yaml`."""
    return entries_file_name(base, scale, [entry_label(attn, pos)])


def entries_file_name(base: str, scale: str, labels: Sequence[str]) -> str:
    """`model_file_name` for several entries, from their labels: `yolo11n-ema-neck-se-backbone_p5.yaml`
    for ["ema@neck", "se@backbone_p5"]; one label gives `model_file_name`'s name. A name too long for
    a file system keeps its start and ends in a hash of the whole."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in PLUS.join(labels))
    if len(safe) > _MAX_NAME:
        safe = safe[: _MAX_NAME - 13] + "-" + hashlib.sha256(safe.encode()).hexdigest()[:12]
    return f"{base}{scale}-{safe}.yaml"


_MAX_NAME = 200  # of the part after `<base><scale>-`: file systems allow 255 bytes


def dump_yaml(model: dict[str, Any], path: Path) -> Path:
    """Write the model YAML in ultralytics' compact style (one layer per line)."""
    lines = ["# generated by src.arch.rewrite; build with ultralytics as usual (after `import src`)"]
    for key, value in model.items():
        if key in ("backbone", "head"):
            continue
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {_flow(v)}" for k, v in value.items())
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{key}:")  # several entries' `inside:` specs, one a line
            lines.extend(f"  - {_flow(v)}" for v in value)
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
