"""Convert VisDrone-DET and COCO detection annotations to the YOLO layout ultralytics trains on.

    python -m src.data.convert visdrone SPLIT_DIR OUT_DIR [--split NAME] [--link MODE]
    python -m src.data.convert coco INSTANCES_JSON IMAGES_DIR OUT_DIR [--split NAME] [--link MODE]

Both write OUT_DIR/images/<split>/<image> (linked, never re-encoded) and
OUT_DIR/labels/<split>/<image stem>.txt with one `class cx cy w h` line per box, normalized to the
image size with 6 decimals; an image without boxes gets an empty label file (a background image).
Boxes are clipped to the image and dropped when nothing is left; every dropped box is counted by
reason in the printed summary.

Safety: a split is built in OUT_DIR/.tmp.<split>.XXXX (same file system, so moving it into place
is a rename), then swapped in. OUT_DIR/.convert/<split>.partial is present while the swap happens
and OUT_DIR/.convert/<split>.done.json (the summary) is written last, so an interrupted conversion
never leaves a split that looks complete (`is_split_complete`), and an existing complete split is
left as it was unless the new one is entirely built. Running a converter twice gives byte-identical
labels and markers. OUT_DIR/data.yaml (path, train, val[, test], names) is (re)written whenever a
train and a val split are both complete.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

# Same list as ultralytics' IMG_FORMATS (lower-case suffixes it trains on).
IMG_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm",
                          ".heic"})
STATE_DIR = ".convert"
LINK_MODES = ("auto", "hardlink", "symlink", "copy")

VISDRONE_NAMES = ["pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle", "awning-tricycle", "bus",
                  "motor"]

# Reason key -> wording of the summary.
DROP_REASONS = {
    "ignored_region": "ignored region (score 0)",
    "ignored_category": "ignored category (0)",
    "others_category": "'others' category (11)",
    "unknown_category": "unknown category id",
    "crowd": "crowd (iscrowd=1)",
    "zero_area": "zero area after clipping",
    "malformed": "malformed row / bbox",
    "missing_image": "image file missing",
    "unknown_image": "image id not in the json's images",
}

_SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class ConversionError(RuntimeError):
    """The input is not what the converter expects; the message says what and where."""


@dataclass
class Summary:
    dataset: str
    split: str
    out_dir: str = ""
    images: int = 0
    background: int = 0                                   # images written with an empty label file
    boxes: int = 0
    per_class: Counter = field(default_factory=Counter)  # class index -> boxes written
    dropped: Counter = field(default_factory=Counter)    # DROP_REASONS key -> boxes dropped
    notes: Counter = field(default_factory=Counter)      # other per-image events, e.g. no annotation file
    linked: Counter = field(default_factory=Counter)     # hardlink / symlink / copy -> images

    def add_image(self, lines: list[str]) -> None:
        self.images += 1
        self.boxes += len(lines)
        if not lines:
            self.background += 1
        for line in lines:
            self.per_class[int(line.split(" ", 1)[0])] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "images": self.images,
            "background_images": self.background,
            "boxes": self.boxes,
            "boxes_per_class": {str(k): v for k, v in sorted(self.per_class.items())},
            "dropped": dict(sorted(self.dropped.items())),
            "notes": dict(sorted(self.notes.items())),
        }

    def format(self, names: list[str] | None = None) -> str:
        out = [f"{self.dataset} {self.split}: {self.images} images ({self.background} without boxes), "
               f"{self.boxes} boxes -> {self.out_dir}"]
        if self.per_class:
            def label(k: int) -> str:
                return names[k] if names and 0 <= k < len(names) else str(k)
            out.append("  boxes per class: " + ", ".join(f"{label(k)} {v}" for k, v in sorted(self.per_class.items())))
        total = sum(self.dropped.values())
        if total:
            parts = ", ".join(f"{DROP_REASONS.get(k, k)} {v}" for k, v in sorted(self.dropped.items()))
            out.append(f"  boxes dropped: {total} ({parts})")
        else:
            out.append("  boxes dropped: 0")
        for k, v in sorted(self.notes.items()):
            out.append(f"  {k}: {v}")
        if self.linked:
            out.append("  images: " + ", ".join(f"{v} {k}" for k, v in sorted(self.linked.items())))
        return "\n".join(out)


# --------------------------------------------------------------------------------------------- helpers

def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as stored in the file, from its header only (PIL opens lazily)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def yolo_line(cls: int, x: float, y: float, w: float, h: float, img_w: float, img_h: float) -> str | None:
    """`cls cx cy w h` for a top-left (x, y, w, h) pixel box clipped to the image; None if no area is left."""
    x1, y1 = min(max(x, 0.0), img_w), min(max(y, 0.0), img_h)
    x2, y2 = min(max(x + w, 0.0), img_w), min(max(y + h, 0.0), img_h)
    if x2 <= x1 or y2 <= y1:
        return None
    cx, cy = (x1 + x2) / 2 / img_w, (y1 + y2) / 2 / img_h
    nw, nh = (x2 - x1) / img_w, (y2 - y1) / img_h
    if round(nw, 6) == 0 or round(nh, 6) == 0:  # would be written as a zero-size box
        return None
    return f"{cls} {cx:.6f} {cy:.6f} {nw:.6f} {nh:.6f}\n"


def link_file(src: Path, dst: Path, mode: str = "auto") -> str:
    """Put `src` at `dst` without re-encoding: hardlink, else symlink (auto), else copy. Returns the method."""
    if mode in ("auto", "hardlink"):
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError:
            pass
    if mode in ("auto", "symlink"):
        try:
            os.symlink(Path(src).resolve(), dst)
            return "symlink"
        except OSError:
            if mode == "symlink":
                raise
    shutil.copy2(src, dst)
    return "copy"


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + rename (readers never see half a file; umask applies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_split(split: str) -> str:
    if not _SPLIT_RE.match(split or ""):
        raise ConversionError(f"invalid split name {split!r}: use letters, digits, '-' and '_' (e.g. train, val2017)")
    return split


def marker_path(out_dir: Path, split: str) -> Path:
    return Path(out_dir) / STATE_DIR / f"{split}.done.json"


def partial_path(out_dir: Path, split: str) -> Path:
    return Path(out_dir) / STATE_DIR / f"{split}.partial"


def _non_empty_dir(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return any(True for _ in it)
    except OSError:  # missing, or not a directory
        return False


def split_problem(out_dir: Path, split: str) -> str | None:
    """Why images/<split> + labels/<split> under `out_dir` are not a usable split; None when they are.

    The converter's marker is not required (a YOLO-layout copy made elsewhere is accepted), but a
    conversion that was interrupted while swapping the split in is never taken as complete.
    """
    out_dir = Path(out_dir)
    if partial_path(out_dir, split).exists():
        return f"the conversion of split {split!r} was interrupted ({partial_path(out_dir, split)} exists)"
    for kind in ("images", "labels"):
        d = out_dir / kind / split
        if not d.is_dir():
            return f"{d} is missing"
        if not _non_empty_dir(d):
            return f"{d} is empty"
    return None


def is_split_complete(out_dir: Path, split: str) -> bool:
    return split_problem(out_dir, split) is None


def converted_splits(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Splits this converter finished under `out_dir` and that are still complete: split -> marker content."""
    state = Path(out_dir) / STATE_DIR
    found = {}
    for marker in sorted(state.glob("*.done.json")) if state.is_dir() else []:
        split = marker.name[: -len(".done.json")]
        if is_split_complete(out_dir, split):
            try:
                found[split] = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
    return found


def _pick(splits: Iterable[str], prefix: str, preferred: tuple[str, ...]) -> str | None:
    splits = sorted(splits)
    for p in preferred:
        if p in splits:
            return p
    return next((s for s in splits if s.startswith(prefix)), None)


def write_data_yaml(out_dir: Path, log: Callable[[str], None] = print) -> Path | None:
    """OUT_DIR/data.yaml from the complete converted splits; None (and nothing written) without train + val."""
    out_dir = Path(out_dir).resolve()
    splits = converted_splits(out_dir)
    train = _pick(splits, "train", ("train", "train2017"))
    val = _pick(splits, "val", ("val", "val2017"))
    if not train or not val:
        have = ", ".join(sorted(splits)) or "none"
        log(f"  data YAML not written yet: needs a complete train and val split (complete: {have})")
        return None
    names = splits[val].get("names") or splits[train].get("names")
    if splits[train].get("names") != splits[val].get("names"):
        log(f"  data YAML not written: class names of {train!r} and {val!r} differ")
        return None
    data: dict[str, Any] = {"path": str(out_dir), "train": f"images/{train}", "val": f"images/{val}"}
    test = _pick(splits, "test", ("test-dev", "test", "test2017"))
    if test:
        data["test"] = f"images/{test}"
    data["names"] = {i: n for i, n in enumerate(names)}
    path = out_dir / "data.yaml"
    _atomic_write(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


class _SplitBuilder:
    """Builds one split in a temp dir next to its target and swaps it in at the end (see module doc)."""

    def __init__(self, out_dir: Path, split: str, link: str = "auto"):
        if link not in LINK_MODES:
            raise ConversionError(f"unknown link mode {link!r}; valid choices: {', '.join(LINK_MODES)}")
        self.out = Path(out_dir).resolve()
        self.split = _check_split(split)
        self.link = link
        self.out.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp.{split}.", dir=self.out))
        (self.tmp / "images").mkdir()
        (self.tmp / "labels").mkdir()
        self.stems: set[str] = set()

    def _remove_stale(self) -> None:
        """Temp dirs of this split left by a killed conversion."""
        pattern = re.compile(rf"^\.tmp\.{re.escape(self.split)}\.[^.]+$")
        for p in self.out.iterdir():
            if pattern.match(p.name) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def add(self, image: Path, lines: list[str], summary: Summary) -> None:
        stem = image.stem
        if stem in self.stems:
            raise ConversionError(f"two images named {stem}.* in split {self.split!r}: their labels would collide")
        self.stems.add(stem)
        method = link_file(image, self.tmp / "images" / image.name, self.link)
        if method == "copy" and self.link == "auto":
            self.link = "copy"  # links fail for every file alike (other file system): stop trying
        elif method == "symlink" and self.link == "auto":
            self.link = "symlink"
        summary.linked[method] += 1
        (self.tmp / "labels" / f"{stem}.txt").write_text("".join(lines), encoding="utf-8")
        summary.add_image(lines)

    def commit(self, summary: Summary, names: list[str]) -> None:
        marker = marker_path(self.out, self.split)
        partial = partial_path(self.out, self.split)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("a conversion of this split is being swapped in; if it stays, re-run the converter\n",
                           encoding="utf-8")
        marker.unlink(missing_ok=True)
        for kind in ("images", "labels"):
            self._swap_in(kind)
        payload = {**summary.to_dict(), "names": list(names)}
        _atomic_write(marker, json.dumps(payload, indent=1) + "\n")
        partial.unlink()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _swap_in(self, kind: str) -> None:
        final = self.out / kind / self.split
        final.parent.mkdir(exist_ok=True)
        if final.exists() or final.is_symlink():
            os.rename(final, self.tmp / f"old-{kind}")
        os.rename(self.tmp / kind, final)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _run(builder: _SplitBuilder, body: Callable[[], list[str]], summary: Summary,
         log: Callable[[str], None]) -> Summary:
    try:
        names = body()
        builder.commit(summary, names)
    except BaseException:
        builder.abort()
        raise
    summary.out_dir = str(builder.out)
    log(summary.format(names))
    data_yaml = write_data_yaml(builder.out, log)
    if data_yaml:
        log(f"  data YAML: {data_yaml}")
    return summary


# --------------------------------------------------------------------------------------------- VisDrone

def visdrone_split_name(split_dir: Path) -> str:
    """VisDrone2019-DET-train -> train, VisDrone2019-DET-test-dev -> test-dev."""
    m = re.match(r"^VisDrone\d*-DET-(.+)$", Path(split_dir).resolve().name)
    if not m:
        raise ConversionError(f"cannot tell the split from the folder name {Path(split_dir).name!r} "
                              f"(expected VisDrone2019-DET-<split>); pass --split NAME")
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
            line = yolo_line(int(category) - 1, x, y, w, h, img_w, img_h)
            if line is None:
                dropped["zero_area"] += 1
            else:
                lines.append(line)
    return lines


def convert_visdrone(split_dir: Path, out_dir: Path, split: str | None = None, *, link: str = "auto",
                     log: Callable[[str], None] = print) -> Summary:
    """Convert one VisDrone2019-DET-<split> folder (images/, annotations/) into OUT_DIR (YOLO layout)."""
    split_dir = Path(split_dir)
    split = split or visdrone_split_name(split_dir)
    img_dir, ann_dir = split_dir / "images", split_dir / "annotations"
    for d in (img_dir, ann_dir):
        if not d.is_dir():
            raise ConversionError(f"{d} not found: a VisDrone split folder holds images/ and annotations/")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMG_SUFFIXES and p.is_file())
    if not images:
        raise ConversionError(f"no images in {img_dir}")
    summary = Summary("visdrone", split)
    builder = _SplitBuilder(out_dir, split, link)

    def body() -> list[str]:
        for img in images:
            ann = ann_dir / f"{img.stem}.txt"
            if ann.is_file():
                w, h = image_size(img)
                lines = visdrone_labels(ann.read_text(encoding="utf-8", errors="replace"), w, h, summary.dropped)
            else:
                summary.notes["images without an annotation file (written as background)"] += 1
                lines = []
            builder.add(img, lines, summary)
        orphans = {a.stem for a in ann_dir.glob("*.txt")} - {i.stem for i in images}
        if orphans:
            summary.notes["annotation files without an image (skipped)"] += len(orphans)
        return VISDRONE_NAMES

    return _run(builder, body, summary, log)


# --------------------------------------------------------------------------------------------- COCO

def coco_split_name(instances_json: Path) -> str:
    """instances_val2017.json -> val2017."""
    m = re.match(r"^instances_(.+)\.json$", Path(instances_json).name)
    if not m:
        raise ConversionError(f"cannot tell the split from {Path(instances_json).name!r} "
                              f"(expected instances_<split>.json); pass --split NAME")
    return m.group(1)


def coco_classes(categories: list[dict[str, Any]]) -> tuple[dict[int, int], list[str]]:
    """COCO category id -> contiguous class index (ids sorted ascending), and the class names in that order."""
    cats = sorted(categories, key=lambda c: int(c["id"]))
    return {int(c["id"]): i for i, c in enumerate(cats)}, [str(c["name"]) for c in cats]


def coco_labels(anns: list[dict[str, Any]], cat_to_cls: dict[int, int], img_w: float, img_h: float,
                dropped: Counter) -> list[str]:
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
        line = yolo_line(cls, x, y, w, h, img_w, img_h)
        if line is None:
            dropped["zero_area"] += 1
        else:
            lines.append(line)
    return lines


def convert_coco(instances_json: Path, images_dir: Path, out_dir: Path, split: str | None = None, *,
                 link: str = "auto", log: Callable[[str], None] = print) -> Summary:
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
    summary = Summary("coco", split)
    known = {im.get("id") for im in images}
    summary.dropped["unknown_image"] += sum(len(v) for k, v in by_image.items() if k not in known)
    builder = _SplitBuilder(out_dir, split, link)

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

    return _run(builder, body, summary, log)


# --------------------------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.data.convert", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="dataset", required=True)
    v = sub.add_parser("visdrone", help="a VisDrone2019-DET-<split> folder (images/, annotations/)")
    v.add_argument("split_dir", type=Path)
    v.add_argument("out_dir", type=Path)
    c = sub.add_parser("coco", help="a COCO instances_<split>.json and its images folder")
    c.add_argument("instances_json", type=Path)
    c.add_argument("images_dir", type=Path)
    c.add_argument("out_dir", type=Path)
    for s in (v, c):
        s.add_argument("--split", default=None, help="split name (default: from the folder / json name)")
        s.add_argument("--link", default="auto", choices=LINK_MODES,
                       help="how images are placed: auto = hardlink, else symlink, else copy")
    args = p.parse_args(argv)
    try:
        if args.dataset == "visdrone":
            convert_visdrone(args.split_dir, args.out_dir, args.split, link=args.link)
        else:
            convert_coco(args.instances_json, args.images_dir, args.out_dir, args.split, link=args.link)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
