"""The embedded detection dataset (`dataset=shapes`): coloured shapes on cluttered, noisy backgrounds.

Nothing to download: `prepare()` generates it deterministically from the config's `generator`
section on first use, into `<cache_root>/shapes-<hash of the generation params>/` in YOLO layout
(images/{train,val,test}, labels/{train,val,test}, data.yaml), and later runs reuse that directory.
The `test` split (`n_test` images, by default twice `n_val`; 0 for none) is drawn like the others from its own random
stream: it shares nothing with train or val, and adding it left their images unchanged.

Completeness: a dataset is generated into a temporary sibling directory whose data.yaml is written
last, and the directory is renamed into place in one `os.rename`. Only a target whose data.yaml
lists every split the params ask for counts as complete; a temp dir left by a killed run is never
looked at (and removed after a day), and an incomplete target is moved aside and replaced. If
another process renamed its copy into place first, ours is discarded.

Content: every image holds `min_objects..max_objects` objects, mostly non-overlapping, from a
catalogue of shapes (circle, square, triangle, cross, ring, star), each class with its own hue
(jittered) and shape; squares, triangles, crosses and stars are rotated. Object sizes are drawn
relative to COCO's size bins at the generated image size: `small` (bounding box area < 32^2 px),
`medium` (< 96^2 px) and, where the image is large enough, `large`, in the proportions given.
Backgrounds are a random low-saturation gradient with grey clutter (irregular blobs and lines) and
Gaussian pixel noise. Each image is rendered at 3x and box-filtered down (anti-aliased edges).
Images are PNGs; same params and same library versions give byte-identical files.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml
from PIL import Image, ImageDraw

from src.files import MEDIUM_MAX_AREA, SMALL_MAX_AREA, size_bin

# Bump when the generator's output changes for the same params: cached datasets get a new hash.
GENERATOR_VERSION = 2
DATA_YAML = "data.yaml"

# shape -> hue in degrees (each class has its own colour, jittered by `hue_jitter`)
CATALOGUE: dict[str, float] = {
    "circle": 0.0,  # red
    "square": 120.0,  # green
    "triangle": 225.0,  # blue
    "cross": 50.0,  # yellow
    "ring": 295.0,  # magenta
    "star": 180.0,  # cyan
}

SMALL, MEDIUM = math.isqrt(SMALL_MAX_AREA), math.isqrt(MEDIUM_MAX_AREA)  # box sides at COCO's size-bin areas
_SS = 3  # supersampling factor of the renderer

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "n_train": 256,
    "n_val": 64,
    "n_test": None,  # None: twice n_val
    "min_objects": 4,
    "max_objects": 10,
    "small": 0.5,  # share of objects with box area < 32^2 px (at the generated size)
    "medium": 0.42,  # share with 32^2 <= area < 96^2
    "large": 0.08,  # share with area >= 96^2 (only where the image allows)
    "min_size": 10,  # smallest box side in px
    "max_size_frac": 0.75,  # largest box side as a fraction of the image size
    "hue_jitter": 12.0,  # degrees
    "clutter": 6,  # max grey blobs + lines per image
    "noise": 8.0,  # std of the Gaussian pixel noise (0-255 scale)
    "overlap": 0.0,  # allowed overlap: max intersection / area of the smaller box
}


# --------------------------------------------------------------------------------------------
# prepare: config -> cached dataset -> data YAML
# --------------------------------------------------------------------------------------------


def prepare(cfg: Mapping[str, Any], cache_root: Path) -> Path:
    """Return the data YAML of the dataset `cfg` describes, generating it on first use."""
    params = generation_params(cfg)
    cache_root = Path(cache_root).resolve()
    target = cache_root / f"shapes-{params_hash(params)}"
    data_yaml = target / DATA_YAML
    if _complete(target, params):
        return data_yaml
    cache_root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(cache_root, target.name)
    tmp = cache_root / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        generate(tmp, **params)
        # the data YAML names the final location and is written last: it marks the copy complete
        _write_data_yaml(tmp, target, params["names"], _splits(params))
        _move_into_place(tmp, target, params)
    finally:
        if tmp.exists():  # failed, or another process won the race: ours is not needed
            shutil.rmtree(tmp, ignore_errors=True)
    if not _complete(target, params):
        raise RuntimeError(f"{target}: generated, but {DATA_YAML} is missing or incomplete")
    return data_yaml


def _splits(params: Mapping[str, Any]) -> list[str]:
    """The splits a dataset of these params has: train and val, and test unless n_test is 0."""
    return ["train", "val"] + (["test"] if int(params.get("n_test") or 0) > 0 else [])


def _complete(target: Path, params: Mapping[str, Any]) -> bool:
    """Whether `target` holds a finished copy: its data YAML (written last) lists every split."""
    data_yaml = target / DATA_YAML
    if not data_yaml.is_file():
        return False
    try:
        listed = yaml.safe_load(data_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(listed, dict) and all(split in listed for split in _splits(params))


def _move_into_place(tmp: Path, target: Path, params: Mapping[str, Any]) -> None:
    """rename tmp -> target, unless a complete target appeared meanwhile (then tmp is left to discard).

    A target without a complete data YAML is a leftover (nothing ever writes into the target in
    place: every process generates in its own temp dir), so it is moved aside atomically and replaced.
    """
    for _ in range(5):
        try:
            os.rename(tmp, target)  # fails while target is a non-empty directory
            return
        except OSError:
            if _complete(target, params):
                return  # lost the race to a complete copy: use that one
            stale = target.with_name(f".{target.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(target, stale)
            except FileNotFoundError:  # another process moved it aside first
                continue
            shutil.rmtree(stale, ignore_errors=True)
    raise RuntimeError(f"could not move {tmp} into place at {target}")


def _remove_stale_temps(cache_root: Path, name: str, max_age_s: float = 24 * 3600) -> None:
    """Temp dirs of runs killed mid-generation (older than a day: surely not in progress)."""
    now = time.time()
    for p in list(cache_root.glob(f".{name}.tmp-*")) + list(cache_root.glob(f".{name}.stale-*")):
        try:
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except FileNotFoundError:
            pass


def generation_params(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The generate() keyword arguments a dataset config implies (plain python values)."""
    gen = _plain(cfg.get("generator") or {})
    unknown = set(gen) - set(DEFAULTS) - {"imgsz"}
    if unknown:
        raise ValueError(
            f"dataset.generator: unknown key(s) {sorted(unknown)}; valid: {sorted(set(DEFAULTS) | {'imgsz'})}"
        )
    params = {**DEFAULTS, **gen}
    params["imgsz"] = int(gen.get("imgsz") or cfg["imgsz"])
    if params["n_test"] is None:  # a test-set CI narrower than val's would be, whatever n_val is
        params["n_test"] = 2 * int(params["n_val"])
    params["names"] = [str(n) for n in _plain(cfg["names"])]
    return params


def params_hash(params: Mapping[str, Any]) -> str:
    blob = json.dumps({"version": GENERATOR_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _write_data_yaml(root: Path, final: Path, names: Sequence[str], splits: Sequence[str]) -> None:
    lines = [f"path: {json.dumps(str(final))}", *(f"{split}: images/{split}" for split in splits), "names:"]
    lines += [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
    (root / DATA_YAML).write_text("\n".join(lines) + "\n")


def _plain(obj: Any) -> Any:
    """dict / OmegaConf DictConfig / ListConfig -> plain dicts and lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------
# generate: params -> images and labels
# --------------------------------------------------------------------------------------------


def generate(
    out_dir: Path,
    *,
    seed: int,
    n_train: int,
    n_val: int,
    imgsz: int,
    n_test: int = 0,
    names: Sequence[str] = ("circle", "square", "triangle", "cross", "ring"),
    **options: Any,
) -> dict[str, Any]:
    """Write images/<split> and labels/<split> for train, val and (n_test > 0) test under out_dir;
    return per-split statistics.

    Image i of a split depends only on (seed, split, i): the same arguments give byte-identical
    files, and a split's images do not depend on the sizes of the others. `options` are the other
    keys of DEFAULTS.
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"generate(): unknown option(s) {sorted(unknown)}")
    opts = {**DEFAULTS, **options}
    names = list(names)
    bad = [n for n in names if n not in CATALOGUE]
    if bad or not names:
        raise ValueError(f"shape names {bad or names} not in the catalogue {list(CATALOGUE)}")
    if imgsz < 32:
        raise ValueError(f"imgsz={imgsz}: at least 32 px")
    if not 0 < opts["min_objects"] <= opts["max_objects"]:
        raise ValueError("need 0 < min_objects <= max_objects")
    out_dir = Path(out_dir)
    stats = {}
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val), ("test", n_test))):
        if split == "test" and int(n) <= 0:
            continue
        img_dir, lbl_dir = out_dir / "images" / split, out_dir / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        counts = {"images": 0, "objects": 0, "small": 0, "medium": 0, "large": 0}
        for i in range(int(n)):
            rng = np.random.default_rng([int(seed), split_id, i])
            image, boxes = render_image(rng, imgsz, names, opts)
            stem = f"{split}_{i:05d}"
            image.save(img_dir / f"{stem}.png", format="PNG", optimize=False, compress_level=1)
            (lbl_dir / f"{stem}.txt").write_text("".join(_label_line(b, imgsz) for b in boxes))
            counts["images"] += 1
            for b in boxes:
                counts["objects"] += 1
                counts[size_bin((b[3] - b[1]) * (b[4] - b[2]))] += 1
        stats[split] = counts
    return stats


def _label_line(box: tuple[int, float, float, float, float], imgsz: int) -> str:
    c, x1, y1, x2, y2 = box
    xc, yc, w, h = (x1 + x2) / 2 / imgsz, (y1 + y2) / 2 / imgsz, (x2 - x1) / imgsz, (y2 - y1) / imgsz
    return f"{c} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}\n"


def render_image(rng: np.random.Generator, imgsz: int, names: Sequence[str], opts: Mapping[str, Any]):
    """One image and its boxes [(class, x1, y1, x2, y2) in px], all drawn from `rng`."""
    S = imgsz * _SS
    canvas = _background(rng, S)
    draw = ImageDraw.Draw(canvas)
    _clutter(rng, draw, S, int(opts["clutter"]))

    n = int(rng.integers(opts["min_objects"], opts["max_objects"] + 1))
    sizes = [_sample_side(rng, imgsz, opts) for _ in range(n)]
    sizes.sort(key=lambda s: -s[0] * s[1])  # place the big ones first
    boxes: list[tuple[int, float, float, float, float]] = []
    for w, h in sizes:
        cls = int(rng.integers(len(names)))
        shape = names[cls]
        poly, kind = _shape_outline(rng, shape, w, h)
        xs, ys = poly[:, 0], poly[:, 1]
        bw, bh = xs.max() - xs.min(), ys.max() - ys.min()
        for _ in range(40):
            x0 = rng.uniform(1, imgsz - 1 - bw)
            y0 = rng.uniform(1, imgsz - 1 - bh)
            box = (x0, y0, x0 + bw, y0 + bh)
            if all(_overlap(box, b[1:]) <= opts["overlap"] for b in boxes):
                break
        else:
            continue  # no room left for this one
        pts = np.stack([xs - xs.min() + x0, ys - ys.min() + y0], axis=1)
        _draw_shape(rng, draw, kind, pts, shape, opts)
        boxes.append((cls, *box))

    img = np.asarray(canvas.resize((imgsz, imgsz), Image.BOX), dtype=np.float32)
    if opts["noise"] > 0:
        img = img + rng.normal(0.0, float(opts["noise"]), img.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)), boxes


def _sample_side(rng: np.random.Generator, imgsz: int, opts: Mapping[str, Any]) -> tuple[float, float]:
    """A box (w, h) in px whose area falls in a COCO size bin chosen by the configured shares."""
    lo = float(opts["min_size"])
    hi = max(lo + 1, float(opts["max_size_frac"]) * imgsz)
    bins = [("small", lo, min(SMALL - 2, hi)), ("medium", SMALL + 1, min(MEDIUM - 3, hi)), ("large", MEDIUM + 1, hi)]
    bins = [(name, a, b) for name, a, b in bins if b > a]
    weights = np.array([float(opts[name]) for name, _, _ in bins])
    if weights.sum() <= 0:
        weights = np.ones(len(bins))
    _, a, b = bins[int(rng.choice(len(bins), p=weights / weights.sum()))]
    side = math.exp(rng.uniform(math.log(a), math.log(b)))  # log-uniform within the bin
    aspect = math.exp(rng.uniform(-0.2, 0.2))  # area side**2, w/h = aspect**2
    return side * aspect, side / aspect


def _overlap(a, b) -> float:
    """Intersection over the smaller box's area (boxes expanded by 1 px so they do not touch)."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 2
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 2
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-6)


def _shape_outline(rng: np.random.Generator, shape: str, w: float, h: float):
    """Outline points (in px, any origin) whose extent fits inside w x h, and how to draw them."""
    if shape in ("circle", "ring"):
        return np.array([[0.0, 0.0], [w, h]]), "ellipse"
    if shape == "square":
        unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    elif shape == "triangle":
        unit = np.array([[math.cos(a), math.sin(a)] for a in np.deg2rad([-90, 30, 150])])
    elif shape == "cross":
        t = rng.uniform(0.28, 0.4)
        unit = np.array(
            [
                [-t, -1],
                [t, -1],
                [t, -t],
                [1, -t],
                [1, t],
                [t, t],
                [t, 1],
                [-t, 1],
                [-t, t],
                [-1, t],
                [-1, -t],
                [-t, -t],
            ],
            dtype=float,
        )
    elif shape == "star":
        r_in = rng.uniform(0.42, 0.5)
        ang = np.deg2rad(-90 + 36 * np.arange(10))
        rad = np.where(np.arange(10) % 2 == 0, 1.0, r_in)
        unit = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    else:  # pragma: no cover - names are checked in generate()
        raise ValueError(shape)
    theta = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    pts = unit @ rot.T
    ext = pts.max(axis=0) - pts.min(axis=0)
    pts = pts * min(w / ext[0], h / ext[1])  # uniform scale: the shape keeps its proportions
    return pts - pts.min(axis=0), "polygon"


def _class_colour(rng: np.random.Generator, shape: str, opts: Mapping[str, Any]) -> tuple[int, int, int]:
    hue = (CATALOGUE[shape] + rng.uniform(-1, 1) * float(opts["hue_jitter"])) % 360
    r, g, b = colorsys.hsv_to_rgb(hue / 360, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _draw_shape(rng, draw: ImageDraw.ImageDraw, kind: str, pts: np.ndarray, shape: str, opts) -> None:
    colour = _class_colour(rng, shape, opts)
    p = pts * _SS
    if kind == "ellipse":
        (x1, y1), (x2, y2) = p
        if shape == "ring":
            width = max(2 * _SS, int(round(min(x2 - x1, y2 - y1) * rng.uniform(0.14, 0.22))))
            draw.ellipse([x1, y1, x2, y2], outline=colour, width=width)
        else:
            draw.ellipse([x1, y1, x2, y2], fill=colour)
    else:
        draw.polygon([tuple(q) for q in p], fill=colour)


def _background(rng: np.random.Generator, S: int) -> Image.Image:
    """A low-saturation linear gradient between two random colours, S x S px."""
    c0, c1 = (
        np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.25), rng.uniform(0.25, 0.85))) * 255
        for _ in range(2)
    )
    theta = rng.uniform(0, 2 * math.pi)
    n = S // _SS  # computed at the output size; the nearest upscale is undone exactly by the box downscale
    yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
    t = xx * math.cos(theta) + yy * math.sin(theta)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    return Image.fromarray(np.rint(img).astype(np.uint8)).resize((S, S), Image.NEAREST)


def _grey(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.3), rng.uniform(0.1, 0.95))
    return int(r * 255), int(g * 255), int(b * 255)


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, S: int, most: int) -> None:
    """Low-saturation distractors: irregular blobs and thin lines, behind the objects."""
    for _ in range(int(rng.integers(0, most + 1)) if most > 0 else 0):
        if rng.uniform() < 0.5:
            k = int(rng.integers(5, 9))
            r = rng.uniform(0.02, 0.12) * S
            cx, cy = rng.uniform(0, S, 2)
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = r * rng.uniform(0.4, 1.0, k)
            draw.polygon(
                [(cx + a * math.cos(t), cy + a * math.sin(t)) for a, t in zip(rad, ang, strict=False)], fill=_grey(rng)
            )
        else:
            x1, y1, x2, y2 = rng.uniform(0, S, 4)
            draw.line([(x1, y1), (x2, y2)], fill=_grey(rng), width=int(rng.integers(1, 3)) * _SS)
