"""File facts that every layer shares: atomic writes, YOLO image/label layout, COCO size bins.

One home for each: the writers of result.json, converted datasets, caches and reports all go
through `atomic_write_*`, and every reader of a YOLO-layout split asks `split_images` /
`label_path`. The image suffixes and the label rule are ultralytics' own, asked of it (so a new
format or rule there reaches us); importing this module imports neither torch nor ultralytics.
"""
from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml

# COCO's object-size bins by box area in pixels: small < 32^2 <= medium < 96^2 <= large.
SMALL_MAX_AREA, MEDIUM_MAX_AREA = 32 ** 2, 96 ** 2
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


# ----------------------------------------------------------------------------- YOLO layout
@lru_cache(maxsize=1)
def image_suffixes() -> frozenset[str]:
    """Image file suffixes ultralytics reads (`.jpg`, `.png`, ...), lower case with the dot."""
    from ultralytics.data.utils import IMG_FORMATS

    return frozenset(f".{s.lower()}" for s in IMG_FORMATS)


def is_image(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in image_suffixes()


def label_path(image: str | os.PathLike) -> Path:
    """The label file ultralytics reads for `image` (last /images/ -> /labels/, suffix .txt)."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([os.fspath(image)])[0])


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files in `folder` (and below it with `recursive`), sorted by path."""
    folder = Path(folder)
    if recursive:
        return sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p))
    with os.scandir(folder) as entries:
        return sorted(folder / e.name for e in entries if e.is_file() and is_image(e.name))


def split_images(data_yaml: str | os.PathLike, split: str = "val") -> list[Path]:
    """The image files of a split of an ultralytics data YAML: each entry a directory (searched
    recursively) or a .txt list of image paths; relative entries are under the YAML's `path`."""
    data_yaml = Path(data_yaml)
    spec = yaml.safe_load(data_yaml.read_text()) or {}
    if split not in spec:
        raise KeyError(f"{data_yaml}: no {split!r} split (has: {', '.join(k for k in spec if isinstance(k, str))})")
    root = Path(spec.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    return images_of(spec[split], root)


def images_of(entries: str | list[str], root: Path) -> list[Path]:
    """Images of split entries (directories or .txt lists), relative entries under `root`.

    In a list, `./x` is relative to the list's own folder (ultralytics' rule), other relative
    lines to `root`."""
    images: list[Path] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        source = Path(entry) if Path(entry).is_absolute() else root / entry
        if source.is_dir():
            images += list_images(source, recursive=True)
        elif source.is_file():
            for line in source.read_text().splitlines():
                line = line.strip()
                if line.startswith("./"):
                    images.append(source.parent / line[2:])
                elif line:
                    images.append(Path(line) if Path(line).is_absolute() else root / line)
        else:
            raise FileNotFoundError(f"split source {source} does not exist")
    return images
