"""Per-split statistics of a YOLO-layout dataset: images, boxes per class, box sizes at training size.

    python -m src.data.dataset_stats DATASET_YAML [--imgsz N]

DATASET_YAML is an ultralytics data YAML (path/train/val/names, e.g. datasets/VisDrone/data.yaml)
or one of our dataset configs (conf/dataset/visdrone.yaml: root + splits, imgsz taken from it).
Box sizes use COCO's area thresholds (small < 32^2 <= medium < 96^2 <= large) measured at the
training size: the image is letterboxed to long side = imgsz, so a box's area is scaled by
(imgsz / max(w, h))^2. Image sizes are read from the file headers (PIL, no decoding).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from src.data.images import images_of, label_path
from src.data.yolo_layout import image_size
from src.files import SIZE_BINS, size_bin
from src.runtime import set_environment

SPLIT_KEYS = ("train", "val", "test")


def load_dataset_yaml(path: Path) -> dict[str, Any]:
    """{'root', 'splits': {key: [sources]}, 'names': [...], 'imgsz': int | None} from either YAML kind."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "kind" in raw and "root" in raw:  # one of our conf/dataset/*.yaml (may hold ${oc.env:...})
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        root = Path(str(cfg["root"])).expanduser().resolve()
        splits = {
            "train": [f"images/{cfg.get('train_split', 'train')}"],
            "val": [f"images/{cfg.get('val_split', 'val')}"],
        }
        if cfg.get("test_split") and (root / "images" / str(cfg["test_split"])).is_dir():  # eval.split=test's
            splits["test"] = [f"images/{cfg['test_split']}"]
        return {"root": root, "splits": splits, "names": list(cfg.get("names") or []), "imgsz": cfg.get("imgsz")}
    base = raw.get("path")
    if base is None:
        root = path.parent.resolve()
    else:
        root = Path(str(base)).expanduser()
        if not root.is_absolute():
            root = root.resolve() if root.exists() else (path.parent / root).resolve()
    names = raw.get("names") or {}
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names, key=int)]
    splits = {}
    for key in SPLIT_KEYS:
        value = raw.get(key)
        if value:
            splits[key] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return {"root": root, "splits": splits, "names": [str(n) for n in names], "imgsz": None}


def _empty_counts() -> dict[str, int]:
    return {"boxes": 0, **{s: 0 for s in SIZE_BINS}}


def split_stats(images: list[Path], names: list[str], imgsz: int, workers: int = 4) -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        sizes = list(pool.map(_safe_size, images))
    per_class: dict[str, dict[str, int]] = {n: _empty_counts() for n in names}
    totals = _empty_counts()
    notes: Counter = Counter()
    background = 0
    for img, wh in zip(images, sizes, strict=False):
        if wh is None:
            notes["unreadable images"] += 1
            continue
        lbl = label_path(img)
        if not lbl.is_file():
            notes["images without a label file"] += 1
            background += 1
            continue
        rows = [r.split() for r in lbl.read_text(encoding="utf-8").splitlines() if r.strip()]
        if not rows:
            background += 1
        w, h = wh
        r = imgsz / max(w, h)
        for row in rows:
            try:
                cls, bw, bh = int(float(row[0])), float(row[3]), float(row[4])
            except (IndexError, ValueError):
                notes["malformed label lines"] += 1
                continue
            name = names[cls] if 0 <= cls < len(names) else f"class {cls}"
            counts = per_class.setdefault(name, _empty_counts())
            size = size_bin(bw * w * r * bh * h * r)
            for c in (counts, totals):
                c["boxes"] += 1
                c[size] += 1
    return {
        "images": len(images),
        "background_images": background,
        **totals,
        "classes": per_class,
        "notes": dict(notes),
    }


def _safe_size(path: Path) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except Exception:  # unreadable or missing image: counted, not fatal
        return None


def dataset_stats(dataset_yaml: Path, imgsz: int | None = None, workers: int = 4) -> dict[str, Any]:
    """{'imgsz', 'root', 'names', 'splits': {split: {images, background_images, boxes, small, medium, large,
    classes: {name: {boxes, small, medium, large}}, notes}}}."""
    ds = load_dataset_yaml(dataset_yaml)
    imgsz = int(imgsz or ds["imgsz"] or 640)
    splits = {
        key: split_stats(images_of(src, ds["root"]), ds["names"], imgsz, workers) for key, src in ds["splits"].items()
    }
    return {"imgsz": imgsz, "root": str(ds["root"]), "names": ds["names"], "splits": splits}


def stats_frame(stats: dict[str, Any]):
    """One row per (split, class) plus an 'all' row per split: boxes, small, medium, large (pandas)."""
    import pandas as pd

    rows = []
    for split, s in stats["splits"].items():
        for name, c in s["classes"].items():
            rows.append({"split": split, "class": name, **c})
        rows.append({"split": split, "class": "all", **{k: s[k] for k in ("boxes", *SIZE_BINS)}})
    return pd.DataFrame(rows, columns=["split", "class", "boxes", *SIZE_BINS])


def format_stats(stats: dict[str, Any]) -> str:
    frame = stats_frame(stats)
    out = [f"{stats['root']}  (box sizes at imgsz {stats['imgsz']}: small < 32^2 <= medium < 96^2 <= large)"]
    for split, s in stats["splits"].items():
        out.append(f"\n{split}: {s['images']} images ({s['background_images']} without boxes), {s['boxes']} boxes")
        table = frame[frame["split"] == split].drop(columns="split")
        out.append(table.to_string(index=False))
        for k, v in s["notes"].items():
            out.append(f"  {k}: {v}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.data.dataset_stats", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset_yaml", type=Path)
    p.add_argument(
        "--imgsz", type=int, default=None, help="training image size (long side); default: the config's imgsz, else 640"
    )
    p.add_argument("--workers", type=int, default=4, help="threads reading image headers")
    args = p.parse_args(argv)
    set_environment("outputs")  # paths.outputs' default: ultralytics (asked for the label rule) keeps its files there
    try:
        stats = dataset_stats(args.dataset_yaml, args.imgsz, args.workers)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_stats(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
