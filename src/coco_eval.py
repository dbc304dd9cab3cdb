"""COCO-style AP by object size for any YOLO-layout dataset, with pycocotools.

ultralytics' mAP has no small/medium/large split; only with `save_json=True` does it also run a
COCO evaluation (faster-coco-eval, printed in the log, not returned by train()). Attention modules
are usually claimed to help small objects, so every job records it: the ground truth of a split is
converted to COCO JSON once (cached, keyed by the label files) and the predictions of the final
validation (`save_json=True`) are scored against it.

Areas are box areas (w*h in pixels of the original image), as in every boxes-only dataset; COCO's
own annotations use segment areas, so AP_small on COCO itself differs slightly from the official
figure.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

import yaml
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
STAT_NAMES = ("map50_95", "map50", "map75", "ap_small", "ap_medium", "ap_large")


def split_images(data_yaml: Path, split: str = "val") -> list[Path]:
    """The image files of a split, as ultralytics resolves them (a directory or a .txt list)."""
    spec = yaml.safe_load(Path(data_yaml).read_text())
    root = Path(spec.get("path") or Path(data_yaml).parent)
    entries = spec[split] if isinstance(spec[split], list) else [spec[split]]
    images: list[Path] = []
    for entry in entries:
        source = Path(entry) if Path(entry).is_absolute() else root / entry
        if source.is_dir():
            images += sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            for line in source.read_text().splitlines():
                if line.strip():
                    path = Path(line.strip())
                    images.append(path if path.is_absolute() else (source.parent / path).resolve())
    return images


def label_path(image: Path) -> Path:
    """ultralytics' rule: the last /images/ in the path becomes /labels/, the suffix .txt."""
    parts = str(image).rsplit(f"{os.sep}images{os.sep}", 1)
    return Path(f"{os.sep}labels{os.sep}".join(parts)).with_suffix(".txt")


def ground_truth(images: Iterable[Path], names: list[str]) -> dict[str, Any]:
    coco: dict[str, Any] = {"images": [], "annotations": [],
                            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]}
    for image_id, image in enumerate(images, start=1):
        with Image.open(image) as im:
            width, height = im.size
        coco["images"].append({"id": image_id, "file_name": image.name, "stem": image.stem,
                               "width": width, "height": height})
        labels = label_path(image)
        rows = labels.read_text().split("\n") if labels.exists() else []
        for row in rows:
            values = row.split()
            if len(values) < 5:
                continue
            cls, cx, cy, w, h = int(values[0]), *map(float, values[1:5])
            bw, bh = w * width, h * height
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id, "category_id": cls + 1,
                "bbox": [cx * width - bw / 2, cy * height - bh / 2, bw, bh], "area": bw * bh, "iscrowd": 0,
            })
    return coco


def cached_ground_truth(data_yaml: Path, names: list[str], cache_dir: Path, split: str = "val") -> Path:
    """GT JSON for a split, rebuilt only when the split's files change."""
    images = split_images(data_yaml, split)
    fingerprint = hashlib.sha256()
    for image in images:
        labels = label_path(image)
        stat = labels.stat() if labels.exists() else None
        fingerprint.update(f"{image}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode())
    fingerprint.update(json.dumps(names).encode())
    path = Path(cache_dir) / "coco_gt" / f"{split}-{fingerprint.hexdigest()[:16]}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(ground_truth(images, names)))
        os.replace(tmp, path)
    return path


def evaluate(gt_json: Path, predictions: list[dict[str, Any]]) -> dict[str, float | None]:
    """COCOeval bbox stats; a size bucket with no ground truth is None (undefined), never 0."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        by_stem = {img["stem"]: img["id"] for img in gt.dataset["images"]}
        dets = [{**p, "image_id": by_stem[str(p["image_id"])]} for p in predictions if str(p["image_id"]) in by_stem]
        if not dets:  # nothing detected: AP 0 wherever there is ground truth, undefined elsewhere
            present = {_size_bin(a["area"]) for a in gt.dataset["annotations"]}
            return {name: 0.0 if name.startswith("map") or name.removeprefix("ap_") in present else None
                    for name in STAT_NAMES}
        evaluator = COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats  # AP, AP50, AP75, AP_small, AP_medium, AP_large, ...
    return {name: (None if stats[i] < 0 else round(float(stats[i]), 5)) for i, name in enumerate(STAT_NAMES)}


def _size_bin(area: float) -> str:
    """COCO's area ranges: small < 32^2 <= medium < 96^2 <= large."""
    return "small" if area < 32 ** 2 else "medium" if area < 96 ** 2 else "large"
