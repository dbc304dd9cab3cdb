"""Attention-module ablations for Ultralytics YOLO.

Importing `src` does two things, each the moment the library concerned is imported (at once if it
already is): it registers the `${job_dirname:...}` resolver of our sweeps' job dirs with omegaconf
(`src.runtime`), and it makes our attention modules visible to ultralytics' model parser in this
process (when `ultralytics.nn.tasks` is). So every process that builds or unpickles one of our
models (training, resume, checkpoint loading, DDP workers, a user's own script) finds them, while
importing `src.aggregate` alone stays free of torch (and of omegaconf). Where files go is set by
the entry points (`src.runtime`), not here.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

from src.runtime import (
    PROJECT_ROOT,  # noqa: F401 - re-exported: `from src import PROJECT_ROOT` is public
    register_job_dirname,
)

_PARSER_MODULE = "ultralytics.nn.tasks"  # parse_model looks module names up in its globals()


def register_with_ultralytics(tasks_module) -> None:
    """Put each attention class into parse_model's namespace under its class name, and let
    parse_model apply a YAML's `inside:` entry (attention inside blocks; src/ultralytics_glue/inside.py)."""
    from src import attention

    for name in attention.available():
        cls = attention.get_class(name)
        if cls is None:  # `none`: nothing to insert
            continue
        existing = getattr(tasks_module, cls.__name__, cls)
        if existing is not cls:
            raise RuntimeError(
                f"attention {name!r}: class name {cls.__name__!r} is already taken in "
                f"{_PARSER_MODULE} by {existing!r}; rename the class"
            )
        setattr(tasks_module, cls.__name__, cls)
    from src.ultralytics_glue import inside

    inside.install(tasks_module)


def _register_resolvers(omegaconf_module) -> None:
    register_job_dirname()


# What runs in this process right after a module is imported (at once where it already is): no
# process pays for importing ultralytics or omegaconf only to register with them.
_AFTER_IMPORT = {_PARSER_MODULE: register_with_ultralytics, "omegaconf": _register_resolvers}


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs a module's `_AFTER_IMPORT` hook right after the module executes."""

    def find_spec(self, fullname, path, target=None):
        hook = _AFTER_IMPORT.get(fullname)
        if hook is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                hook(module)
            except Exception as exc:  # never break the library's own import; say why instead
                import warnings

                warnings.warn(f"src: {hook.__name__} after importing {fullname} failed: {exc!r}", stacklevel=2)

        spec.loader.exec_module = exec_module
        return spec


for _name, _hook in _AFTER_IMPORT.items():
    if _name in sys.modules:
        _hook(sys.modules[_name])
if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterImport())
