"""Build and check datasets in the YOLO layout ultralytics trains on, whatever format they came from.

A converted dataset OUT_DIR holds OUT_DIR/images/<split>/<image> (linked, never re-encoded) and
OUT_DIR/labels/<split>/<image stem>.txt with one `class cx cy w h` line per box, normalized to the
image size with 6 decimals (`yolo_line`); an image without boxes gets an empty label file (a
background image). The native formats (src/data/formats/) decide which boxes go in; this module
writes them, counts what was dropped (`Summary`) and keeps the layout safe.

Safety: a split is built in OUT_DIR/.tmp.<split>.XXXX (same file system, so moving it into place
is a rename), then swapped in. OUT_DIR/.convert/<split>.partial is present while the swap happens
and OUT_DIR/.convert/<split>.done.json (the summary) is written last, so an interrupted conversion
never leaves a split that looks complete (`is_split_complete`), and an existing complete split is
left as it was unless the new one is entirely built. Converting twice gives byte-identical labels
and markers. OUT_DIR/data.yaml (path, train, val[, test], names) is (re)written whenever a train
and a val split are both complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from src.files import atomic_write_text

STATE_DIR = ".convert"
LINK_MODES = ("auto", "hardlink", "symlink", "copy")

# Reasons any converter drops a box for (key -> wording of the summary); formats add their own.
DROP_REASONS = {
    "unknown_category": "unknown category id",
    "zero_area": "zero area after clipping",
    "malformed": "malformed row / bbox",
}

# Split names taken for each role of data.yaml, before any other name starting with the role.
_ROLE_NAMES = {"train": ("train", "train2017"), "val": ("val", "val2017"), "test": ("test-dev", "test", "test2017")}

_SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class ConversionError(RuntimeError):
    """The input is not what the converter expects; the message says what and where."""


@dataclass
class Summary:
    dataset: str
    split: str
    out_dir: str = ""
    images: int = 0
    background: int = 0  # images written with an empty label file
    boxes: int = 0
    per_class: Counter = field(default_factory=Counter)  # class index -> boxes written
    dropped: Counter = field(default_factory=Counter)  # reason key -> boxes dropped
    notes: Counter = field(default_factory=Counter)  # other per-image events, e.g. no annotation file
    linked: Counter = field(default_factory=Counter)  # hardlink / symlink / copy -> images
    reasons: Mapping[str, str] = field(default_factory=lambda: dict(DROP_REASONS))  # reason key -> wording

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
        out = [
            f"{self.dataset} {self.split}: {self.images} images ({self.background} without boxes), "
            f"{self.boxes} boxes -> {self.out_dir}"
        ]
        if self.per_class:

            def label(k: int) -> str:
                return names[k] if names and 0 <= k < len(names) else str(k)

            out.append("  boxes per class: " + ", ".join(f"{label(k)} {v}" for k, v in sorted(self.per_class.items())))
        total = sum(self.dropped.values())
        if total:
            parts = ", ".join(f"{self.reasons.get(k, k)} {v}" for k, v in sorted(self.dropped.items()))
            out.append(f"  boxes dropped: {total} ({parts})")
        else:
            out.append("  boxes dropped: 0")
        for k, v in sorted(self.notes.items()):
            out.append(f"  {k}: {v}")
        if self.linked:
            out.append("  images: " + ", ".join(f"{v} {k}" for k, v in sorted(self.linked.items())))
        return "\n".join(out)


# --------------------------------------------------------------------------------------------- boxes, images


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


def append_box(
    lines: list[str], dropped: Counter, cls: int, x: float, y: float, w: float, h: float, img_w: float, img_h: float
) -> None:
    """Append the `yolo_line` of a pixel box to `lines`, or count it in `dropped` when clipping leaves no area."""
    line = yolo_line(cls, x, y, w, h, img_w, img_h)
    if line is None:
        dropped["zero_area"] += 1
    else:
        lines.append(line)


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


# --------------------------------------------------------------------------------------------- completeness


def check_split(split: str) -> str:
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
    """Splits a converter finished under `out_dir` and that are still complete: split -> marker content."""
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


def _pick(splits: Iterable[str], role: str) -> str | None:
    splits = sorted(splits)
    for p in _ROLE_NAMES[role]:
        if p in splits:
            return p
    return next((s for s in splits if s.startswith(role)), None)


def write_data_yaml(out_dir: Path, log: Callable[[str], None] = print) -> Path | None:
    """OUT_DIR/data.yaml from the complete converted splits; None (and nothing written) without train + val."""
    out_dir = Path(out_dir).resolve()
    splits = converted_splits(out_dir)
    train, val = _pick(splits, "train"), _pick(splits, "val")
    if not train or not val:
        have = ", ".join(sorted(splits)) or "none"
        log(f"  data YAML not written yet: needs a complete train and val split (complete: {have})")
        return None
    names = splits[val].get("names") or splits[train].get("names")
    if splits[train].get("names") != splits[val].get("names"):
        log(f"  data YAML not written: class names of {train!r} and {val!r} differ")
        return None
    data: dict[str, Any] = {"path": str(out_dir), "train": f"images/{train}", "val": f"images/{val}"}
    test = _pick(splits, "test")
    if test:
        data["test"] = f"images/{test}"
    data["names"] = {i: n for i, n in enumerate(names)}
    path = out_dir / "data.yaml"
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


# --------------------------------------------------------------------------------------------- building a split


class SplitBuilder:
    """Builds one split in a temp dir next to its target and swaps it in at the end (see module doc)."""

    def __init__(self, out_dir: Path, split: str, link: str = "auto"):
        if link not in LINK_MODES:
            raise ConversionError(f"unknown link mode {link!r}; valid choices: {', '.join(LINK_MODES)}")
        self.out = Path(out_dir).resolve()
        self.split = check_split(split)
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
        partial.write_text(
            "a conversion of this split is being swapped in; if it stays, re-run the converter\n", encoding="utf-8"
        )
        marker.unlink(missing_ok=True)
        for kind in ("images", "labels"):
            self._swap_in(kind)
        payload = {**summary.to_dict(), "names": list(names)}
        atomic_write_text(marker, json.dumps(payload, indent=1) + "\n")
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


def build_split(
    builder: SplitBuilder, body: Callable[[], list[str]], summary: Summary, log: Callable[[str], None]
) -> Summary:
    """Run a converter's `body` (it adds every image to `builder`, returns the class names), swap the
    split in, print the summary and (re)write data.yaml; on any failure the split is left as it was."""
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
