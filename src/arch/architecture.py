"""A job's architecture, resolved once (by the config checks) and used as is by the model-file
writer and the measurements: the base graph, the scale, each layer's channels there, the position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from src.arch.bases import load_base, plain_graph
from src.arch.positions import Layout, Position, resolve_position


@dataclass(frozen=True)
class Architecture:
    base: dict[str, Any]  # the base's YAML dict (`base` names it)
    scale: str
    channels: tuple[int, ...]  # the base's output channels per layer at `scale`
    position: Position  # resolved in this base's graph
    # a model with several modules (`variant=`, src/config/study.py): each entry's position, in
    # entry order, resolved in the same base graph; () for the one-module case (`position`)
    entry_positions: tuple[Position, ...] = ()

    @property
    def base_name(self) -> str:
        return self.base["base"]


def resolve(
    base_name: str,
    scale: str,
    pos: Mapping[str, Any],
    layout_of: Callable[[dict[str, Any], str], Layout],
    entry_pos: Sequence[Mapping[str, Any]] = (),
) -> Architecture:
    """Load the base and resolve `pos` (and each of `entry_pos`) in its graph at `scale`;
    `layout_of(graph, scale)` builds the layout (src.ultralytics_glue.layout.base_layout), once.
    PositionError names a bad position."""
    base = load_base(base_name)
    layout = layout_of(plain_graph(base), scale)
    return Architecture(
        base,
        scale,
        tuple(layout.channels),
        resolve_position(base, pos, layout),
        tuple(resolve_position(base, p, layout) for p in entry_pos),
    )
