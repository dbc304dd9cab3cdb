"""Attention-module ablations for YOLO11.

Importing `src` makes our attention modules visible to ultralytics' model parser in this process:
right away if ultralytics is already imported, otherwise the moment `ultralytics.nn.tasks` is.
So every process that builds or unpickles one of our models (training, resume, checkpoint
loading, DDP workers, a user's own script) finds them, while importing `src.aggregate` alone
stays free of torch. It also keeps ultralytics' and matplotlib's files under outputs/ and turns
off online checks and telemetry.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

ULTRALYTICS_HOME = PROJECT_ROOT / "outputs" / ".ultralytics"

# Read by ultralytics / matplotlib at import time, so set before they are first imported.
os.environ.setdefault("YOLO_CONFIG_DIR", str(ULTRALYTICS_HOME))
os.environ.setdefault("MPLCONFIGDIR", str(PROJECT_ROOT / "outputs" / ".matplotlib"))  # its font cache
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # else onnxruntime writes a device id under ~/.cache
os.environ.setdefault("YOLO_OFFLINE", "1")  # YOLO_OFFLINE=0 allows ultralytics' downloads

_PARSER_MODULE = "ultralytics.nn.tasks"  # parse_model looks module names up in its globals()


def register_with_ultralytics(tasks_module) -> None:
    """Put each attention class into parse_model's namespace under its class name."""
    from src import attention

    for name in attention.available():
        cls = attention.get_class(name)
        if cls is None:  # `none`: nothing to insert
            continue
        existing = getattr(tasks_module, cls.__name__, cls)
        if existing is not cls:
            raise RuntimeError(f"attention {name!r}: class name {cls.__name__!r} is already taken in "
                               f"{_PARSER_MODULE} by {existing!r}; rename the class")
        setattr(tasks_module, cls.__name__, cls)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs register_with_ultralytics right after ultralytics.nn.tasks executes."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _PARSER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                register_with_ultralytics(module)
            except Exception as exc:  # never break ultralytics' own import; say why instead
                import warnings

                warnings.warn(f"src: attention modules not registered with ultralytics: {exc!r}", stacklevel=2)

        spec.loader.exec_module = exec_module
        return spec


if _PARSER_MODULE in sys.modules:
    register_with_ultralytics(sys.modules[_PARSER_MODULE])
elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterImport())
