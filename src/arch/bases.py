"""ultralytics' own base model YAMLs (YOLO11, YOLO26, YOLOv8, YOLO12), read as plain data.

They are found in ultralytics' install folder without importing ultralytics (a slow import).
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import yaml

SCALES = ("n", "s", "m", "l", "x")


def _models_root() -> Path:
    """ultralytics' cfg/models folder."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ultralytics is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"


def base_yaml_path(base: str = "yolo11") -> Path:
    """ultralytics' own YAML of a base model (`yolo11` -> cfg/models/11/yolo11.yaml, `yolov8` ->
    cfg/models/v8/yolov8.yaml), wherever its folder is."""
    found = sorted(_models_root().rglob(f"{base}.yaml"))
    if not found:
        raise FileNotFoundError(
            f"base model {base!r} is not in the installed ultralytics; detection bases: {', '.join(available_bases())}"
        )
    return found[0]


@lru_cache(maxsize=1)
def available_bases() -> tuple[str, ...]:
    """The plain detection bases ultralytics ships (`yolo11`, `yolo26`, `yolov8`, ...)."""
    names = {p.stem for p in _models_root().glob("*/yolo*.yaml") if re.fullmatch(r"yolov?\d+", p.stem)}
    return tuple(sorted(names))


@lru_cache(maxsize=16)
def _base_text(base: str) -> str:
    return base_yaml_path(base).read_text()


def load_base(base: str = "yolo11") -> dict[str, Any]:
    """A fresh dict of the base's YAML, with `base` naming it (ultralytics ignores unknown top-level
    keys; errors can name the base)."""
    model = yaml.safe_load(_base_text(base))
    model["base"] = base
    return model


def plain_graph(model: dict[str, Any]) -> dict[str, Any]:
    """The model dict as ultralytics reads it: without our `base` label."""
    return {k: v for k, v in model.items() if k != "base"}


def layers_of(model: dict[str, Any]) -> list[list[Any]]:
    return [list(layer) for layer in model["backbone"] + model["head"]]


def absolute_froms(f: int | Sequence[int], i: int) -> list[int]:
    """Layer i's `from` entries as absolute layer indices (-1 stays -1 only for the network input)."""
    froms = [f] if isinstance(f, int) else list(f)
    return [x if (x >= 0 or i == 0) else i + x for x in froms]


def detect_index(model: dict[str, Any]) -> int:
    """The detection head: the last layer of a detection YAML."""
    return len(layers_of(model)) - 1
