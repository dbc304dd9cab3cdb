"""VisDrone2019-DET: its archives, split plan and class names, and the converter of its annotation files.

A split folder VisDrone2019-DET-<split>/ holds images/ and annotations/<image stem>.txt, one
`x,y,w,h,score,category,truncation,occlusion` row per box (top-left pixel box). Kept: score 1,
categories 1..10 (-> classes 0..9, `VISDRONE_NAMES`). Dropped and counted: ignored regions (score
0), category 0 (ignored) and 11 (others), unknown categories, malformed rows, boxes with no area
left after clipping to the image.

Sources: the official links are Google Drive / Baidu pages listed at
https://github.com/VisDrone/VisDrone-Dataset (trainset 1.44 GB, valset 0.07 GB, test-dev 0.28 GB),
not scriptable; the same zips are mirrored by ultralytics (cfg/datasets/VisDrone.yaml) at
https://github.com/ultralytics/assets/releases/download/v0.0.0/VisDrone2019-DET-{train,val,test-dev}.zip,
which is what src.data.fetch downloads.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Callable

from src.data import yolo_layout as layout
from src.data.archives import Archive, FetchError, candidates, extract
from src.data.formats import NativeFormat
from src.data.images import list_images

ULTRALYTICS_ASSETS = "https://github.com/ultralytics/assets/releases/download/v0.0.0"

# Category ids 1..10 in order; conf/dataset/visdrone.yaml `names` must agree (tested).
VISDRONE_NAMES = [
    "pedestrian",
    "people",
    "bicycle",
    "car",
    "van",
    "truck",
    "tricycle",
    "awning-tricycle",
    "bus",
    "motor",
]

REASONS = {
    **layout.DROP_REASONS,
    "ignored_region": "ignored region (score 0)",
    "ignored_category": "ignored category (0)",
    "others_category": "'others' category (11)",
}


def visdrone_split_name(split_dir: Path) -> str:
    """VisDrone2019-DET-train -> train, VisDrone2019-DET-test-dev -> test-dev."""
    m = re.match(r"^VisDrone\d*-DET-(.+)$", Path(split_dir).resolve().name)
    if not m:
        raise layout.ConversionError(
            f"cannot tell the split from the folder name {Path(split_dir).name!r} "
            f"(expected VisDrone2019-DET-<split>); pass --split NAME"
        )
    return m.group(1)


def _visdrone_row(row: str) -> tuple[float, ...] | None:
    parts = [p.strip() for p in row.split(",")]
    while parts and parts[-1] == "":  # some files end rows with a comma
        parts.pop()
    if len(parts) < 6:
        return None
    try:
        return tuple(float(p) for p in parts[:6])
    except ValueError:
        return None


def visdrone_labels(text: str, img_w: int, img_h: int, dropped: Counter) -> list[str]:
    """YOLO lines of one VisDrone annotation file; dropped boxes are counted into `dropped`."""
    lines = []
    for row in text.splitlines():
        if not row.strip():
            continue
        parsed = _visdrone_row(row)
        if parsed is None:
            dropped["malformed"] += 1
            continue
        x, y, w, h, score, category = parsed
        if score == 0:
            dropped["ignored_region"] += 1
        elif category == 0:
            dropped["ignored_category"] += 1
        elif category == 11:
            dropped["others_category"] += 1
        elif category != int(category) or not 1 <= category <= 10:
            dropped["unknown_category"] += 1
        else:
            layout.append_box(lines, dropped, int(category) - 1, x, y, w, h, img_w, img_h)
    return lines


def convert_visdrone(
    split_dir: Path, out_dir: Path, split: str | None = None, *, link: str = "auto", log: Callable[[str], None] = print
) -> layout.Summary:
    """Convert one VisDrone2019-DET-<split> folder (images/, annotations/) into OUT_DIR (YOLO layout)."""
    split_dir = Path(split_dir)
    split = split or visdrone_split_name(split_dir)
    img_dir, ann_dir = split_dir / "images", split_dir / "annotations"
    for d in (img_dir, ann_dir):
        if not d.is_dir():
            raise layout.ConversionError(f"{d} not found: a VisDrone split folder holds images/ and annotations/")
    images = list_images(img_dir)
    if not images:
        raise layout.ConversionError(f"no images in {img_dir}")
    summary = layout.Summary("visdrone", split, reasons=REASONS)
    builder = layout.SplitBuilder(out_dir, split, link)

    def body() -> list[str]:
        for img in images:
            ann = ann_dir / f"{img.stem}.txt"
            if ann.is_file():
                w, h = layout.image_size(img)
                lines = visdrone_labels(ann.read_text(encoding="utf-8", errors="replace"), w, h, summary.dropped)
            else:
                summary.notes["images without an annotation file (written as background)"] += 1
                lines = []
            builder.add(img, lines, summary)
        orphans = {a.stem for a in ann_dir.glob("*.txt")} - {i.stem for i in images}
        if orphans:
            summary.notes["annotation files without an image (skipped)"] += len(orphans)
        return VISDRONE_NAMES

    return layout.build_split(builder, body, summary, log)


def _find_split_dir(base: Path, folder: str) -> Path:
    """The `folder` (e.g. VisDrone2019-DET-val) holding images/ and annotations/, wherever the zip put it."""
    for cand in candidates(base, "annotations", base / folder / "annotations"):
        if cand.is_dir() and (cand.parent / "images").is_dir():
            return cand.parent
    raise FetchError(f"no images/ + annotations/ folder found in the extracted {folder}.zip under {base}")


def unpack(split: str, zips: list[Path], work: Path, log: Callable[[str], None]) -> tuple[Path]:
    """The split folder from its extracted VisDrone2019-DET-<split>.zip."""
    (zip_path,) = zips
    log(f"extracting {zip_path}")
    base = extract(zip_path, work / split)
    return (_find_split_dir(base, f"VisDrone2019-DET-{split}"),)


def _zip(split: str) -> str:
    return f"VisDrone2019-DET-{split}.zip"


def _archive(split: str, size: str, required: bool = True) -> Archive:
    return Archive(_zip(split), f"{ULTRALYTICS_ASSETS}/{_zip(split)}", size, required)


FORMAT = NativeFormat(
    name="visdrone",
    help="a VisDrone2019-DET-<split> folder (images/, annotations/)",
    folder="VisDrone",
    page="https://github.com/VisDrone/VisDrone-Dataset",
    archives=(
        _archive("train", "1.4 GB"),
        _archive("val", "0.08 GB"),
        _archive("test-dev", "0.3 GB", required=False),
    ),  # converted when given in --archives, not downloaded
    splits={s: (_zip(s),) for s in ("val", "train", "test-dev")},  # small val first
    names=VISDRONE_NAMES,
    inputs=("split_dir",),
    convert=convert_visdrone,
    unpack=unpack,
)
