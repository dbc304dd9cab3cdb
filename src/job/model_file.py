"""The job's model YAML: the base graph rewritten for this attention and the position the checks
resolved, saved in the job dir, so the model is data (resume, DDP workers and plain ultralytics
read the same file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.arch import rewrite as arch_rewrite
from src.arch.architecture import Architecture
from src.arch.keys import TRANSFER_KEY
from src.config.entries import model_entries
from src.config.study import entries_of
from src.results import BASELINE
from src.results.schema import ATTN, POS


def write_model_yaml(
    cfg: dict[str, Any], arch: Architecture, job_dir: Path, pos_label: str
) -> tuple[arch_rewrite.Rewrite, Path]:
    """Rewrite the base graph for this job's modules (each at its resolved position) and save it in
    the job dir."""
    model_cfg, attn = cfg["model"], cfg["attn"]
    entries = model_entries(cfg, arch)
    rewrite = (
        arch_rewrite.insert_entries(arch.base, arch.channels, entries) if entries else arch_rewrite.unchanged(arch.base)
    )
    model = dict(rewrite.model)
    if model_cfg.get("weights"):
        weights = Path(model_cfg["weights"]).expanduser().resolve()
        if not weights.is_file():
            raise FileNotFoundError(f"model.weights={model_cfg['weights']}: no such file")
        model[TRANSFER_KEY] = {"weights": str(weights), "layer_map": rewrite.layer_map}
    if len(entries) > 1:
        name = arch_rewrite.entries_file_name(arch.base_name, arch.scale, [e.label for e in entries])
    else:
        name = arch_rewrite.model_file_name(
            arch.base_name, arch.scale, attn["name"], "base" if attn["name"] == BASELINE else pos_label
        )
    return rewrite, arch_rewrite.dump_yaml(model, job_dir / name)


def entry_records(cfg: dict[str, Any], arch: Architecture, rewrite: arch_rewrite.Rewrite) -> list[dict[str, Any]]:
    """result.json's `entries` of a several-module model: per entry its module, its position as
    configured and as resolved in this base, and where the rewrite put it."""
    out = []
    for c, position, placed in zip(entries_of(cfg), arch.entry_positions, rewrite.entries, strict=True):
        out.append(
            {
                "label": placed.label,
                ATTN: c["attn"]["name"],
                "attn_params": dict(c["attn"].get("params") or {}),
                POS: c["pos"].get("name"),
                "pos_after": position.after,
                "pos_replace": position.replace,
                "pos_inside": position.inside,
                "pos_inside_mode": position.inside_mode if position.inside else None,
                "inserted_layers": sorted(placed.inserted),
                "inside_blocks": placed.inside,
            }
        )
    return out
