"""Datasets: turn a `dataset` config into a ready ultralytics data YAML.

`kind: shapes` is the embedded dataset, generated on first use; `kind: yolo` is a dataset already
in YOLO layout (COCO and VisDrone after conversion). Both fail with a clear error before any
model is built when the data is not there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def prepare(cfg: Mapping[str, Any], cache_root: Path) -> Path:
    """Return the path of a data YAML ultralytics can train on."""
    kind = cfg.get("kind")
    if kind == "shapes":
        from src.data import shapes

        return shapes.prepare(cfg, Path(cache_root))
    if kind == "yolo":
        from src.data import yolo_dataset

        return yolo_dataset.prepare(cfg, Path(cache_root))
    raise ValueError(f"unknown dataset.kind {kind!r}; valid choices: shapes, yolo")
