"""Where the attention goes: a position by role or by layer indices, resolved in one base's graph
and checked, and the label tables and runs show for it.

A position names roles (`neck`: what feeds Detect, ...) that are found in the graph of whichever
base is chosen, or explicit layer indices. Resolving needs each layer's channels and bottleneck
count, which only a real build knows: the caller passes that layout in
(`src.ultralytics_glue.layout.base_layout`), so this module stays plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from src.arch.bases import absolute_froms, available_bases, detect_index, layers_of, load_base
from src.arch.keys import INSIDE_MODES

KINDS = ("after", "replace", "inside")
# Roles a position may name, per kind: resolved in each base's own graph by `role_indices`.
ROLES = {
    "after": {
        "neck": "after each layer that feeds Detect",
        "backbone": "after each backbone layer the head reads, and after the last backbone layer",
        "backbone_p5": "after the last backbone layer",
    },
    "replace": {"c2psa": "the base's C2PSA block (YOLO11's own attention)"},
    "inside": {
        "neck": "inside every bottleneck of the blocks that feed Detect",
        "backbone": "inside every bottleneck of the backbone's blocks",
    },
}


class PositionError(ValueError):
    """An insertion position that the base graph cannot take."""


class Layout(Protocol):
    """What a real build of the base tells (see src/ultralytics_glue/layout.py)."""

    channels: Sequence[int]  # output channels per layer (0 for the Detect head)
    bottlenecks: Sequence[int]  # Bottleneck modules inside each layer


@dataclass(frozen=True)
class Position:
    """A position resolved to layer indices of one base graph."""

    after: list[int] = field(default_factory=list)
    replace: list[int] = field(default_factory=list)
    inside: list[int] = field(default_factory=list)
    inside_mode: str = "branch"


def role_indices(model: dict[str, Any], kind: str, role: str, bottleneck_counts: Sequence[int]) -> list[int]:
    """The layers a role names in this graph; PositionError when the base has none."""
    if role not in ROLES.get(kind, {}):
        valid = ", ".join(ROLES.get(kind, {})) or "(none)"
        raise PositionError(
            f"pos.{kind}={role!r} is not a role; valid roles for pos.{kind}: {valid}, or a list of layer indices"
        )
    layers = layers_of(model)
    n_backbone = len(model["backbone"])
    det = detect_index(model)
    feeds_detect = sorted(x for x in absolute_froms(layers[det][0], det))
    last_backbone = n_backbone - 1
    read_by_head = {x for i in range(n_backbone, det) for x in absolute_froms(layers[i][0], i) if 0 <= x < n_backbone}
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
            raise PositionError(
                f"pos.replace=c2psa: {model.get('base', 'this base')} has no C2PSA layer; "
                f"bases that have one: {', '.join(have)}"
            )
        return found
    candidates = feeds_detect if role == "neck" else range(n_backbone)
    found = [i for i in candidates if bottleneck_counts[i] > 0]
    if not found:
        raise PositionError(f"pos.inside={role}: {model.get('base', 'this base')} has no block with bottlenecks there")
    return found


def resolve_position(model: dict[str, Any], pos: Mapping[str, Any], layout: Layout) -> Position:
    """A `pos` config (each of after / replace / inside a role or a list of indices) as indices of
    this graph, checked: PositionError names the bad value and the valid choices."""
    resolved = {}
    for kind in KINDS:
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


def validate_position(model: dict[str, Any], position: Position, layout: Layout) -> None:
    """Raise PositionError naming the bad index and the valid range before anything is built."""
    layers = layers_of(model)
    det = detect_index(model)
    valid = f"valid layer indices are 0..{det - 1} (the Detect layer is {det})"
    for kind in KINDS:
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
            raise PositionError(
                f"pos.inside index {idx} ({layers[idx][2]}) is not a block with bottlenecks; "
                f"blocks with bottlenecks in {model.get('base', 'this base')}: "
                f"{', '.join(map(str, blocks))}"
            )
    if set(position.inside) & set(position.replace):
        raise PositionError(
            f"layer(s) {sorted(set(position.inside) & set(position.replace))} are both in "
            "pos.inside and pos.replace; pick one"
        )
    for idx in position.replace:
        froms = absolute_froms(layers[idx][0], idx)
        if len(froms) != 1 or froms[0] < 0:
            raise PositionError(
                f"pos.replace index {idx} ({layers[idx][2]}) has {len(froms)} inputs; "
                "only single-input layers can be replaced by a channel-preserving module"
            )
        c_in = layout.channels[froms[0]]
        if c_in != layout.channels[idx]:
            raise PositionError(
                f"pos.replace index {idx} ({layers[idx][2]}) maps {c_in} -> {layout.channels[idx]} "
                "channels; an attention module keeps channels, so it can only replace a "
                "layer with equal input and output channels"
            )


# ---------------------------------------------------------------------------------- labels
def configured(pos: Mapping[str, Any]) -> dict[str, Any]:
    """The position as configured (roles or indices), for result.json's `pos_configured`."""
    return {**{kind: pos.get(kind) for kind in KINDS}, "inside_mode": pos.get("inside_mode")}


def position_label(pos: Mapping[str, Any], preset: str | None = None) -> str:
    """`preset` (Hydra's choice for the `pos` group) when `pos` still holds that preset's values,
    else `custom:after6-10` / `custom:inside6-8`: a table never passes an edited list off as a
    preset. Attention inside blocks in `conv` mode adds `:conv` (`inside_neck:conv`)."""
    if preset:
        label = preset
    else:
        parts = []
        for kind in KINDS:
            value = pos.get(kind)
            if isinstance(value, str) and value:
                parts.append(f"{kind}={value}")
            elif value:
                parts.append(f"{kind}{'-'.join(map(str, value))}")
        label = "custom:" + "+".join(parts) if parts else "custom:none"
    mode = pos.get("inside_mode") or "branch"
    return f"{label}:{mode}" if pos.get("inside") and mode != "branch" else label


def edits_position(overrides: list[str]) -> bool:
    """Whether command-line overrides change where the module goes (`pos.after=...`, ...); the
    inside mode is not a change of place (it shows as `:conv` in the label instead)."""
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides or []]
    return any(k.startswith("pos.") and k not in ("pos.name", "pos.inside_mode") for k in keys)


def unedited_preset(
    pos: Mapping[str, Any], choice: str | None, preset: Mapping[str, Any] | None, overrides: list[str]
) -> str | None:
    """`choice` (the `pos` group option picked) when the job's lists are still that preset's
    (`preset`: the option's own values, None where unknown), else None: edited on the command
    line or by a study file."""
    if not choice or edits_position(overrides):
        return None
    if preset is not None and any(pos.get(k) != v for k, v in preset.items() if k not in ("name", "inside_mode")):
        return None
    return choice
