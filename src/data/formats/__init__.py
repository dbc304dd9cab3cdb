"""The table of native dataset formats converted to YOLO layout: one module here per format.

Each module (coco.py, visdrone.py, ...) defines `FORMAT = NativeFormat(...)`: its official
archives, its split plan, its class names and its converter. `registry()` finds them by listing
this package, so a new format is one file here plus its conf/dataset/<name>.yaml (whose `names`,
`make_target`, root folder and splits a test checks against the module); src.data.fetch and the
src.data.convert CLI read only this table.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

from src.data.archives import Archive
from src.data.yolo_layout import Summary

Log = Callable[[str], None]


@dataclass(frozen=True)
class NativeFormat:
    name: str  # the module's name, the CLI's, conf/dataset/<name>.yaml's
    help: str  # what the converter's inputs are, for the CLI
    folder: str  # default root: $DATASETS_DIR/<folder>
    page: str  # where the official archives are described
    archives: tuple[Archive, ...]
    splits: Mapping[str, tuple[str, ...]]  # split -> names of the archives it is made from, in fetch order
    names: list[str] | None  # class names; None: read from the annotation files
    inputs: tuple[str, ...]  # the converter's path arguments before OUT_DIR (CLI names)
    # convert(*inputs, out_dir, split=None, *, link="auto", log=print) -> Summary
    convert: Callable[..., Summary]
    # unpack(split, zips of splits[split], work_dir, log) -> the converter's inputs, from the extracted zips
    unpack: Callable[[str, list[Path], Path, Log], tuple[Path, ...]]

    @property
    def make_target(self) -> str:
        return f"data-{self.name}"


@lru_cache(maxsize=1)
def registry() -> dict[str, NativeFormat]:
    """name -> format, for every module of this package (sorted by name)."""
    found: dict[str, NativeFormat] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        fmt = getattr(importlib.import_module(f"{__name__}.{module}"), "FORMAT", None)
        if not isinstance(fmt, NativeFormat) or fmt.name != module:
            raise TypeError(f"{__name__}.{module} defines no FORMAT = NativeFormat(name={module!r}, ...)")
        found[fmt.name] = fmt
    return found
