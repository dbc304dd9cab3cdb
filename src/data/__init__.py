"""Datasets: turn a `dataset` config into a ready ultralytics data YAML.

`kind: shapes` is the embedded dataset, generated on first use; `kind: yolo` is a dataset already
in YOLO layout (COCO and VisDrone after conversion). Both fail with a clear error before any
model is built when the data is not there.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

# dataset.kind -> the module whose `prepare(cfg, cache_root)` makes its data YAML (imported on use)
PREPARERS = {"shapes": "src.data.shapes", "yolo": "src.data.yolo_dataset"}
DATASET_KINDS = tuple(PREPARERS)


def prepare(cfg: Mapping[str, Any], cache_root: Path) -> Path:
    """Return the path of a data YAML ultralytics can train on."""
    kind = cfg.get("kind")
    if kind not in PREPARERS:
        raise ValueError(f"unknown dataset.kind {kind!r}; valid choices: {', '.join(DATASET_KINDS)}")
    return importlib.import_module(PREPARERS[kind]).prepare(cfg, Path(cache_root))
