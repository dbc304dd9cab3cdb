"""`kind: yolo` datasets: a dataset already in YOLO layout (COCO, VisDrone after `make data-...`).

    ROOT/images/<split>/*.jpg   ROOT/labels/<split>/*.txt   for the train and val splits

`prepare(cfg, cache_root)` checks the dataset is there and complete (before any model is built),
and writes the ultralytics data YAML it returns under `cache_root`, never into the dataset root.
`fraction` / `max_images` train on a deterministic subset of the train split: a seeded shuffle
of the sorted image list, written as a txt list of image paths next to the data YAML. The val
split is always used whole, so results of different subsets stay comparable.

Roles: `val` (selects best.pt) is `val_split`, or with `minival: true` a carve-out of `minival_size`
train images (its own fixed seed) that training never sees; `test` is `test_split` when that split
is there (eval.split=test needs it: `check_complete(cfg, ("test",))`).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Mapping

import yaml

from src.data.images import list_images
from src.data.yolo_layout import split_problem
from src.files import atomic_write_text

SUBSET_SEED = 0  # the subset does not follow the job's seed: every run of a study sees the same images
MINIVAL_SEED = 1  # the minival carve-out's, fixed, and apart from the subset's shuffle


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is missing or incomplete; the message names the expected path and how to get it."""

    def __init__(self, message: str, path: Path | None = None, make_target: str | None = None):
        super().__init__(message)
        self.path = path
        self.make_target = make_target

    def __str__(self) -> str:
        return str(self.args[0])


def dataset_root(cfg: Mapping[str, Any]) -> Path:
    root = cfg.get("root")
    if not root:
        raise ValueError(f"dataset {cfg.get('name')!r}: dataset.root is not set")
    return Path(str(root)).expanduser().resolve()


def check_complete(cfg: Mapping[str, Any], roles: tuple[str, ...] = ("train", "val")) -> Path:
    """The dataset root when the splits of `roles` (`<role>_split` in the config) are there and
    non-empty; else DatasetNotFoundError."""
    root = dataset_root(cfg)
    name = cfg.get("name", "?")
    target = cfg.get("make_target")
    problems = [p for p in (split_problem(root, split_name(cfg, role)) for role in roles) if p]
    if problems:
        how = (
            f"Get it ready with `make {target}` (downloads the official archives), or "
            f"`make {target} ARCHIVES=DIR` with the archives already in DIR"
            if target
            else "Convert it to YOLO layout first (python -m src.data.convert)"
        )
        raise DatasetNotFoundError(
            f"dataset {name!r} is not ready at {root}: {'; '.join(problems)}.\n"
            f"{how}; or point dataset.root=PATH at a copy in YOLO layout "
            f"(images/<split>, labels/<split>). The default location is $DATASETS_DIR (default ./datasets).",
            path=root,
            make_target=target,
        )
    return root


def split_name(cfg: Mapping[str, Any], role: str) -> str:
    """The dataset's own split for a role (`val_split: val2017`); the role's name where unset."""
    return str(cfg.get(f"{role}_split") or role)


def check_subset_args(fraction: Any, max_images: Any) -> None:
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ValueError(f"dataset.fraction must be in (0, 1], got {fraction!r}")
    if max_images is not None and (not isinstance(max_images, int) or isinstance(max_images, bool) or max_images < 1):
        raise ValueError(f"dataset.max_images must be a positive integer or null, got {max_images!r}")


def subset(
    images: list[Path], fraction: float = 1.0, max_images: int | None = None, seed: int = SUBSET_SEED
) -> list[Path]:
    """A deterministic subset: seeded shuffle of the sorted list, first max(1, int(N * fraction)) (capped at
    max_images), returned sorted. The same inputs give the same subset on any machine."""
    check_subset_args(fraction, max_images)
    ordered = sorted(images, key=lambda p: Path(p).name)
    n = max(1, int(len(ordered) * fraction)) if ordered else 0
    if max_images is not None:
        n = min(n, max_images)
    if n >= len(ordered):
        return ordered
    random.Random(seed).shuffle(ordered)
    return sorted(ordered[:n], key=lambda p: Path(p).name)


def prepare(cfg: Mapping[str, Any], cache_root: Path) -> Path:
    """Check the dataset, write its data YAML (and subset list) under cache_root, return the YAML path."""
    root = check_complete(cfg)
    train_split, val_split = split_name(cfg, "train"), split_name(cfg, "val")
    test_split = cfg.get("test_split")
    test_split = str(test_split) if test_split and split_problem(root, str(test_split)) is None else None
    minival = _minival_size(cfg)
    fraction = cfg.get("fraction", 1.0)
    fraction = 1.0 if fraction is None else fraction
    max_images = cfg.get("max_images")
    check_subset_args(fraction, max_images)
    seed = cfg.get("subset_seed", SUBSET_SEED)
    names = list(cfg.get("names") or [])
    if not names:
        raise ValueError(f"dataset {cfg.get('name')!r}: dataset.names is empty")

    key = [str(root), train_split, val_split, fraction, max_images, seed, names]
    key += [test_split, minival] if test_split or minival else []  # data YAMLs from before keep their place
    digest = hashlib.sha1(json.dumps(key).encode()).hexdigest()[:12]
    out = Path(cache_root).resolve() / "yolo" / f"{cfg.get('name', 'dataset')}-{digest}"
    out.mkdir(parents=True, exist_ok=True)

    train: str = f"images/{train_split}"
    val: str = f"images/{val_split}"
    if fraction != 1.0 or max_images is not None or minival:
        pool = list_images(root / "images" / train_split)
        if minival:
            held_out = carve_out(pool, minival, cfg)
            val = _write_listing(out / f"minival-{train_split}.txt", held_out)
            pool = sorted(set(pool) - set(held_out))
        chosen = subset(pool, fraction, max_images, seed)
        if not chosen:
            raise DatasetNotFoundError(
                f"dataset {cfg.get('name')!r}: no images in {root / 'images' / train_split}",
                path=root,
                make_target=cfg.get("make_target"),
            )
        train = _write_listing(out / f"{train_split}.txt", chosen)
    data = {"path": str(root), "train": train, "val": val}
    if test_split:
        data["test"] = f"images/{test_split}"
    data["names"] = {i: str(n) for i, n in enumerate(names)}
    path = out / "data.yaml"
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def _minival_size(cfg: Mapping[str, Any]) -> int:
    """Images carved out of the train split for selection; 0 without `minival`."""
    if not cfg.get("minival"):
        return 0
    size = cfg.get("minival_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"dataset.minival_size must be a positive integer, got {size!r}")
    return size


def carve_out(images: list[Path], size: int, cfg: Mapping[str, Any]) -> list[Path]:
    """The minival: `size` train images chosen by a fixed seed, sorted; the same on every machine."""
    if size >= len(images):
        raise ValueError(
            f"dataset.minival_size={size} leaves no training image: the train split "
            f"{split_name(cfg, 'train')!r} has {len(images)}"
        )
    return subset(images, 1.0, size, MINIVAL_SEED)


def _write_listing(path: Path, images: list[Path]) -> str:
    """A txt list of image paths, as ultralytics reads a split; returns its path for the data YAML."""
    atomic_write_text(path, "".join(f"{p}\n" for p in images))
    return str(path)
