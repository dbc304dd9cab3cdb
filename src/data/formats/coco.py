"""COCO 2017 detection: its archives, split plan and class names, and the converter of instances JSON.

An instances_<split>.json lists images, categories and annotations (top-left pixel `bbox`). Class
indices are the categories sorted by id (-> 0..79 on COCO 2017, the standard order; the names come
from the json, and conf/dataset/coco.yaml lists the same 80, tested against ultralytics' coco.yaml).
Dropped and counted: crowd boxes, unknown categories, malformed boxes, boxes with no area left after
clipping, boxes of images missing on disk or not in the json.

Sources (https://cocodataset.org/#download): http://images.cocodataset.org/zips/train2017.zip
(18 GB, 118,287 images), .../zips/val2017.zip (0.8 GB, 5,000 images),
http://images.cocodataset.org/annotations/annotations_trainval2017.zip (0.24 GB).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

from src.data.archives import Archive, FetchError, candidates, extract, find_dir
from src.data.formats import NativeFormat
from src.data.yolo_layout import (
    DROP_REASONS,
    ConversionError,
    SplitBuilder,
    Summary,
    append_box,
    build_split,
    image_size,
)

COCO_IMAGES = "http://images.cocodataset.org"
ANNOTATIONS_ZIP = "annotations_trainval2017.zip"

REASONS = {
    **DROP_REASONS,
    "crowd": "crowd (iscrowd=1)",
    "missing_image": "image file missing",
    "unknown_image": "image id not in the json's images",
}


def coco_split_name(instances_json: Path) -> str:
    """instances_val2017.json -> val2017."""
    m = re.match(r"^instances_(.+)\.json$", Path(instances_json).name)
    if not m:
        raise ConversionError(
            f"cannot tell the split from {Path(instances_json).name!r} "
            f"(expected instances_<split>.json); pass --split NAME"
        )
    return m.group(1)


def coco_classes(categories: list[dict[str, Any]]) -> tuple[dict[int, int], list[str]]:
    """COCO category id -> contiguous class index (ids sorted ascending), and the class names in that order."""
    cats = sorted(categories, key=lambda c: int(c["id"]))
    return {int(c["id"]): i for i, c in enumerate(cats)}, [str(c["name"]) for c in cats]


def coco_labels(
    anns: list[dict[str, Any]], cat_to_cls: dict[int, int], img_w: float, img_h: float, dropped: Counter
) -> list[str]:
    lines = []
    for a in sorted(anns, key=lambda a: (a.get("id") is None, a.get("id", 0))):
        if a.get("iscrowd"):
            dropped["crowd"] += 1
            continue
        cls = cat_to_cls.get(a.get("category_id"))
        if cls is None:
            dropped["unknown_category"] += 1
            continue
        bbox = a.get("bbox")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            dropped["malformed"] += 1
            continue
        append_box(lines, dropped, cls, x, y, w, h, img_w, img_h)
    return lines


def convert_coco(
    instances_json: Path,
    images_dir: Path,
    out_dir: Path,
    split: str | None = None,
    *,
    link: str = "auto",
    log: Callable[[str], None] = print,
) -> Summary:
    """Convert a COCO instances_<split>.json + its image folder into OUT_DIR (YOLO layout)."""
    instances_json, images_dir = Path(instances_json), Path(images_dir)
    if not instances_json.is_file():
        raise ConversionError(f"{instances_json} not found")
    if not images_dir.is_dir():
        raise ConversionError(f"{images_dir} not found (the folder of the split's images)")
    split = split or coco_split_name(instances_json)
    with open(instances_json, encoding="utf-8") as f:
        data = json.load(f)
    try:
        cat_to_cls, names = coco_classes(data["categories"])
        images = sorted(data["images"], key=lambda im: str(im["file_name"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{instances_json} is not a COCO instances file: {exc!r}") from None
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for a in data.get("annotations") or []:
        by_image[a.get("image_id")].append(a)
    del data
    summary = Summary("coco", split, reasons=REASONS)
    known = {im.get("id") for im in images}
    summary.dropped["unknown_image"] += sum(len(v) for k, v in by_image.items() if k not in known)
    builder = SplitBuilder(out_dir, split, link)

    def body() -> list[str]:
        for im in images:
            src = images_dir / str(im["file_name"])
            anns = by_image.get(im.get("id"), [])
            if not src.is_file():
                summary.notes["images listed in the json but missing on disk (skipped)"] += 1
                summary.dropped["missing_image"] += len(anns)
                continue
            w, h = im.get("width"), im.get("height")
            if not w or not h:
                w, h = image_size(src)
            builder.add(src, coco_labels(anns, cat_to_cls, float(w), float(h), summary.dropped), summary)
        if summary.images == 0:
            raise ConversionError(f"none of the {len(images)} images listed in {instances_json} is in {images_dir}")
        return names

    return build_split(builder, body, summary, log)


def _find_file(base: Path, name: str) -> Path:
    for cand in candidates(base, name, base / "annotations" / name):
        if cand.is_file():
            return cand
    raise FetchError(f"{name} not found in the extracted annotations archive under {base}")


def unpack(split: str, zips: list[Path], work: Path, log: Callable[[str], None]) -> tuple[Path, Path]:
    """instances_<split>.json from the annotations zip, and the image folder from <split>.zip."""
    ann_zip, img_zip = zips
    json_name = f"instances_{split}.json"
    log(f"extracting {json_name} from {ann_zip}, and {img_zip}")
    ann = extract(ann_zip, work / f"annotations-{split}", lambda n: Path(n).name == json_name)
    base = extract(img_zip, work / split)
    return _find_file(ann, json_name), find_dir(base, split)


FORMAT = NativeFormat(
    name="coco",
    help="a COCO instances_<split>.json and its images folder",
    folder="coco",
    page="https://cocodataset.org/#download",
    archives=(
        Archive(ANNOTATIONS_ZIP, f"{COCO_IMAGES}/annotations/{ANNOTATIONS_ZIP}", "0.24 GB"),
        Archive("val2017.zip", f"{COCO_IMAGES}/zips/val2017.zip", "0.8 GB"),
        Archive("train2017.zip", f"{COCO_IMAGES}/zips/train2017.zip", "18 GB"),
    ),
    splits={s: (ANNOTATIONS_ZIP, f"{s}.zip") for s in ("val2017", "train2017")},  # small val first
    names=None,  # from the json's categories
    inputs=("instances_json", "images_dir"),
    convert=convert_coco,
    unpack=unpack,
)
