"""The modules a job's model holds, as the YAML rewrite takes them (`src.arch.rewrite.Entry`): none
for the baseline, one for `attn=` / `pos=`, one per entry of a `variant=` (src/config/study.py).
One home for the step from config to rewrite, shared by the checks (which refuse conflicting
entries before anything is built) and the model-file writer."""

from __future__ import annotations

from typing import Any, Mapping

from src import attention
from src.arch.architecture import Architecture
from src.arch.positions import Position
from src.arch.rewrite import Entry
from src.config.study import entries_of
from src.results.schema import entry_label


def model_entries(cfg: Mapping[str, Any], arch: Architecture) -> list[Entry]:
    """The rewrite's entries of this job, each at its position resolved in `arch`."""
    configs = entries_of(cfg)
    positions = arch.entry_positions if len(configs) > 1 else (arch.position,) * len(configs)
    return [_entry(c["attn"], c["pos"], p) for c, p in zip(configs, positions, strict=True)]


def _entry(attn: Mapping[str, Any], pos: Mapping[str, Any], position: Position) -> Entry:
    name, params = attn["name"], dict(attn.get("params") or {})
    return Entry(
        module=attention.get_class(name).__name__,
        module_args=lambda c: attention.yaml_args(name, c, params),
        position=position,
        inside_spec={"module": name, "params": params, "mode": position.inside_mode},
        label=entry_label(name, str(pos.get("name"))),
    )
