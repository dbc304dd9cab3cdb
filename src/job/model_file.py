"""The job's model YAML: the base graph rewritten for this attention and the position the checks
resolved, saved in the job dir, so the model is data (resume, DDP workers and plain ultralytics
read the same file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src import attention
from src.arch import rewrite as arch_rewrite
from src.arch.architecture import Architecture
from src.arch.keys import TRANSFER_KEY
from src.results import BASELINE


def write_model_yaml(
    cfg: dict[str, Any], arch: Architecture, job_dir: Path, pos_label: str
) -> tuple[arch_rewrite.Rewrite, Path]:
    """Rewrite the base graph for this job's attention at `arch.position` and save it in the job dir."""
    model_cfg, attn = cfg["model"], cfg["attn"]
    if attn["name"] == BASELINE:
        rewrite = arch_rewrite.unchanged(arch.base)
    else:
        cls_name = attention.get_class(attn["name"]).__name__
        params = dict(attn.get("params") or {})
        rewrite = arch_rewrite.insert_attention(
            arch.base,
            arch.channels,
            cls_name,
            lambda c: attention.yaml_args(attn["name"], c, params),
            arch.position,
            inside_spec={"module": attn["name"], "params": params, "mode": arch.position.inside_mode},
        )
    model = dict(rewrite.model)
    if model_cfg.get("weights"):
        weights = Path(model_cfg["weights"]).expanduser().resolve()
        if not weights.is_file():
            raise FileNotFoundError(f"model.weights={model_cfg['weights']}: no such file")
        model[TRANSFER_KEY] = {"weights": str(weights), "layer_map": rewrite.layer_map}
    name = arch_rewrite.model_file_name(
        arch.base_name, arch.scale, attn["name"], "base" if attn["name"] == BASELINE else pos_label
    )
    return rewrite, arch_rewrite.dump_yaml(model, job_dir / name)
