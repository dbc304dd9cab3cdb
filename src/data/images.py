"""Which files are a split's images and where their labels are, for every reader of a YOLO-layout
split (datasets, figures, benchmarks).

The image suffixes and the label rule are ultralytics' own (src/ultralytics_glue/dataset_rules.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from src.ultralytics_glue.dataset_rules import image_suffixes, label_path

__all__ = ["ground_truth", "image_suffixes", "images_of", "is_image", "label_path", "list_images", "split_images"]


def is_image(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in image_suffixes()


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


def ground_truth(image: Path) -> tuple[tuple[int, int], list[tuple[int, float, float, float, float]]]:
    """(width, height) and the image's boxes as (class, x1, y1, x2, y2) in pixels."""
    from src.data.yolo_layout import image_size

    w, h = image_size(image)
    labels = label_path(image)
    boxes = []
    for row in labels.read_text().splitlines() if labels.is_file() else []:
        values = row.split()
        if len(values) >= 5:
            c, cx, cy, bw, bh = int(float(values[0])), *(float(v) for v in values[1:5])
            boxes.append((c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
    return (w, h), boxes
