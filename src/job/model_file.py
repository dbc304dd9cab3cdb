"""The job's model YAML: the base graph rewritten for this attention and position, saved in the
job dir, so the model is data (resume, DDP workers and plain ultralytics read the same file)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from src import attention, model_yaml
from src.results import BASELINE
from src.ultralytics_glue.trainer import TRANSFER_KEY


def write_model_yaml(cfg: dict[str, Any], job_dir: Path, pos_label: str
                     ) -> tuple[model_yaml.Rewrite, model_yaml.Position | None, Path]:
    """Rewrite the base graph for this job and save it in the job dir; the position resolved in
    this base's graph (None for the baseline, which inserts nothing)."""
    model_cfg, attn = cfg["model"], cfg["attn"]
    base = model_yaml.load_base(model_cfg["base"])
    position = None
    if attn["name"] == BASELINE:
        plain = {k: v for k, v in base.items() if k != "base"}
        rewrite = model_yaml.Rewrite(model=plain, layer_map={i: i for i in range(len(model_yaml.layers_of(base)))})
    else:
        cls_name = attention.get_class(attn["name"]).__name__
        params = dict(attn.get("params") or {})
        position = model_yaml.resolve_position(base, cfg["pos"], model_cfg["scale"])
        rewrite = model_yaml.insert_attention(
            base, model_cfg["scale"], cls_name, lambda c: attention.yaml_args(attn["name"], c, params),
            after=position.after, replace=position.replace, inside=position.inside,
            inside_spec={"module": attn["name"], "params": params, "mode": position.inside_mode})
    model = dict(rewrite.model)
    if model_cfg.get("weights"):
        weights = Path(model_cfg["weights"]).expanduser().resolve()
        if not weights.is_file():
            raise FileNotFoundError(f"model.weights={model_cfg['weights']}: no such file")
        model[TRANSFER_KEY] = {"weights": str(weights), "layer_map": rewrite.layer_map}
    name = model_yaml.model_file_name(model_cfg["base"], model_cfg["scale"], attn["name"],
                                      "base" if attn["name"] == BASELINE else pos_label)
    return rewrite, position, model_yaml.dump_yaml(model, job_dir / name)
