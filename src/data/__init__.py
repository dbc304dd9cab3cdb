"""Datasets: turn a `dataset` config into a ready ultralytics data YAML.

`kind: shapes` is the embedded dataset, generated on first use; `kind: yolo` is a dataset already
in YOLO layout (COCO and VisDrone after conversion). Both fail with a clear error before any
model is built when the data is not there. Each data YAML names its splits by role: `train`,
`val` (selects best.pt) and, where the dataset has one, `test` (README "Evaluation protocol").
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


def eval_splits(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The data YAML roles a job of this dataset can report on: `val`, and `test` where the config
    gives it one (the embedded dataset with `n_test` > 0, a YOLO-layout dataset with `test_split`)."""
    if cfg.get("kind") == "shapes":
        from src.data import shapes

        has_test = int(shapes.generation_params(cfg)["n_test"]) > 0
    else:
        has_test = bool(cfg.get("test_split"))
    return ("val", "test") if has_test else ("val",)


def check_split_ready(cfg: Mapping[str, Any], role: str) -> None:
    """For a dataset in YOLO layout, DatasetNotFoundError unless the split of `role` is on disk; the
    message names the archives it is converted from (VisDrone's test-dev is an optional one)."""
    if cfg.get("kind") != "yolo":
        return
    from src.data.formats import registry
    from src.data.yolo_dataset import DatasetNotFoundError, check_complete, split_name

    try:
        check_complete(cfg, (role,))
    except DatasetNotFoundError as exc:
        fmt, split = registry().get(str(cfg.get("name"))), split_name(cfg, role)
        if fmt is not None and split in fmt.splits:
            exc.args = (
                f"{exc}\nIts {role} split {split!r} is converted from {', '.join(fmt.splits[split])}: put "
                f"that in DIR and run `make {fmt.make_target} ARCHIVES=DIR`.",
            )
        raise
