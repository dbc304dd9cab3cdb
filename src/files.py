"""File facts that every layer shares: atomic writes and COCO's object-size bins.

One home for each: the writers of result.json, converted datasets, caches and reports all go
through `atomic_write_*`. Imports neither torch nor ultralytics, not even lazily: the torch-free
layers (results, sweep, aggregate) import it. YOLO's image/label layout is in src/data/images.py.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable

# COCO's object-size bins by box area in pixels: small < 32^2 <= medium < 96^2 <= large.
SMALL_MAX_AREA, MEDIUM_MAX_AREA = 32**2, 96**2
SIZE_BINS = ("small", "medium", "large")


def size_bin(area: float) -> str:
    """COCO's size bin of a box of `area` square pixels."""
    return "small" if area < SMALL_MAX_AREA else "medium" if area < MEDIUM_MAX_AREA else "large"


# ------------------------------------------------------------------------------- atomic writes
def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, binary: bool = False) -> Path:
    """Write through `write(fh)` into a temp file beside `path`, fsync, then rename over it.

    A reader (or a crash, a kill, a full disk) never sees a half-written file: either the old
    content stays or the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp_beside(path)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _new_temp_beside(path: Path) -> tuple[int, str]:
    """A new empty file `.<name>.<random>.tmp` next to `path`, opened for writing. Its mode is that of
    any new file (0o666 less the umask), not mkstemp's 0o600: the renamed file stays readable as before."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name next to {path}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text))


def atomic_write_json(path: str | os.PathLike, obj: Any, **dump_args: Any) -> Path:
    dump_args = {"indent": 2, "sort_keys": True, "default": json_default, **dump_args}
    return atomic_write(path, lambda fh: (json.dump(obj, fh, **dump_args), fh.write("\n")))


def json_default(value: Any) -> Any:
    """numpy scalars and paths end up in results; make them plain JSON."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def missing_path(paths: list[str]) -> str | None:
    """The first command-line PATH that is not there (globs aside: matching nothing is the caller's
    finding), as the message a CLI prints before exiting 2; None when all exist."""
    import glob

    for path in paths:
        if not glob.has_magic(path) and not os.path.exists(path):
            return f"error: no such file or directory: {path}"
    return None
