"""Side-by-side figures of a sweep's checkpoints: LayerCAM heatmaps and detections against the ground truth.

    python -m src.visualize SWEEP_DIR [--images N] [--no-cams]

For each (dataset, model[, setup]) block: one row per validation image (N, default 4, chosen
deterministically, images with the most COCO-small objects first) and one column per variant
(seed 0, its best.pt), after a ground-truth column. `<stem>_cam.png` shows ultralytics' LayerCAM
overlays (`predict(visualize=True)`, `utils/plotting.class_activation_map`); `<stem>_detections.png`
each variant's detections (conf >= 0.25) split by ultralytics' own matcher (`ConfusionMatrix`: greedy,
one-to-one, IoU > 0.45; a match of the wrong class is a false positive and a miss) into true
positives, false positives and missed ground truth (the ultralytics calls: ultralytics_glue/explain.py).
Both go to <sweep>/plots/ and report.md is rebuilt to show them; nothing else is written (results
stay as they are). The end of a multirun calls it after the table (the Hydra callback), and it
re-draws any finished sweep later.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.data.images import label_path, split_images
from src.files import missing_path, size_bin
from src.results import RESULT_FILE, JobDir
from src.results.schema import JOB_DIR

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 4
_COLOURS = {"gt": "#ffffff", "TP": "#2ca02c", "FP": "#d62728", "FN": "#ff9f1c"}


@dataclass
class Variant:
    label: str  # "cot @ neck", "baseline (none)"
    weights: Path
    imgsz: int
    seed: int | None


@dataclass
class Block:
    stem: str  # file-name stem of the block's figures (src.aggregate.figure_style.block_stem)
    title: str
    data_yaml: Path
    variants: list[Variant]


# ======================================================================== what to draw (torch-free)
def blocks_of(sweep_dir: Path) -> tuple[list[Block], list[str]]:
    """The blocks of a sweep that have a checkpoint to show, and notes on what was left out."""
    from src.aggregate import tables as T
    from src.aggregate.collect import collect
    from src.aggregate.figure_style import Style, block_stem
    from src.results import COMPLETED

    runs = collect([str(sweep_dir)]).runs
    notes: list[str] = []
    if runs.empty:
        return [], notes
    done = T.dedupe(T.prepare(runs[runs["status"] == COMPLETED]))[0]
    labels = T.setup_labels(done)
    blocks = []
    for (dataset, model, train_key), grp in done.groupby(T.BLOCK, sort=True):
        setup = labels.get((dataset, model, train_key), "")
        title = f"{dataset} · {model}" + (f" ({setup})" if setup else "")
        variants, data_yaml = [], None
        order = sorted(grp.groupby(["pos", "attn"], sort=False), key=lambda kv: (kv[0][1] != T.BASELINE, kv[0]))
        for (pos, attn), runs_of in order:
            run = _seed_zero(runs_of)
            weights = JobDir(run[JOB_DIR]).best
            if not weights.is_file():
                notes.append(f"{title}: {attn} @ {pos} has no {weights.relative_to(run[JOB_DIR])}; left out")
                continue
            variants.append(
                Variant(
                    Style.label(pos, attn),
                    weights,
                    int(run["imgsz"]),
                    None if run["seed"] is None else int(run["seed"]),
                )
            )
            data_yaml = data_yaml or _existing(run.get("data_yaml"))
        if not variants:
            continue
        if data_yaml is None:
            notes.append(f"{title}: no data YAML of its jobs exists here; no figures")
            continue
        blocks.append(Block(block_stem(dataset, model, setup), title, data_yaml, variants))
    return blocks, notes


def _seed_zero(runs_of) -> dict[str, Any]:
    """The variant's seed-0 run, else its lowest seed."""
    rows = runs_of.assign(_seed=runs_of["seed"].astype("Float64").fillna(float("inf"))).sort_values("_seed")
    rows = rows.to_dict("records")
    row = next((r for r in rows if r["_seed"] == 0), rows[0])
    row["seed"] = None if row["_seed"] == float("inf") else row["_seed"]
    return row


def _existing(path: Any) -> Path | None:
    return Path(path) if isinstance(path, str) and Path(path).is_file() else None


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


def choose_images(data_yaml: Path, n: int) -> list[Path]:
    """N validation images, the ones with most COCO-small objects (box area < 32^2 px at the
    original size) first, then by path: the same images every time, for every variant."""

    def key(image: Path):
        _, boxes = ground_truth(image)
        small = sum(size_bin((x2 - x1) * (y2 - y1)) == "small" for _, x1, y1, x2, y2 in boxes)
        return -small, str(image)

    return sorted(split_images(data_yaml, "val"), key=key)[:n]


# ======================================================================== figures
def draw_sweep(
    sweep_dir: str | Path, images: int = DEFAULT_IMAGES, cams: bool = True, out_dir: str | Path | None = None
) -> tuple[dict[str, Path], list[str]]:
    """Both figures for every block of the sweep into <out_dir, default the sweep>/plots/;
    returns (files, notes)."""
    sweep_dir = Path(sweep_dir)
    blocks, notes = blocks_of(sweep_dir)
    files: dict[str, Path] = {}
    plots = Path(out_dir or sweep_dir) / "plots"
    for block in blocks:
        try:
            files.update(draw_block(block, plots, images, cams))
        except Exception as exc:  # a figure must never sink the others
            log.exception("figures of %s failed", block.title)
            notes.append(f"{block.title}: figures failed ({type(exc).__name__}: {exc})")
    return files, notes


def draw_block(block: Block, plots: Path, n_images: int, cams: bool) -> dict[str, Path]:
    chosen = choose_images(block.data_yaml, n_images)
    if not chosen:
        return {}
    truth = [ground_truth(p) for p in chosen]
    plots.mkdir(parents=True, exist_ok=True)
    from src.aggregate.figure_style import safe_name
    from src.ultralytics_glue import explain

    work = Path(tempfile.mkdtemp(prefix=".visualize-", dir=plots))  # ultralytics writes its overlays here
    try:
        preds = [explain.predict(v.weights, chosen, v.imgsz, work / safe_name(v.label), cams) for v in block.variants]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = preds[0][0]["names"]
    files = {}
    if cams:
        files[f"{block.stem}_cam"] = _figure(
            block,
            chosen,
            truth,
            preds,
            names,
            plots / f"{block.stem}_cam.png",
            "LayerCAM heatmap (ultralytics class_activation_map)",
            _cam_panel,
        )
    files[f"{block.stem}_detections"] = _figure(
        block,
        chosen,
        truth,
        preds,
        names,
        plots / f"{block.stem}_detections.png",
        f"detections at conf ≥ {explain.CONF}: true positive (green), false positive (red), missed ground truth "
        f"(orange, dashed)",
        _detection_panel,
    )
    return files


def _figure(block: Block, chosen, truth, preds, names, path: Path, what: str, panel) -> Path:
    from src.aggregate.figure_style import pyplot, save

    plt = pyplot()
    cols = 1 + len(block.variants)
    fig, axes = plt.subplots(len(chosen), cols, figsize=(2.4 * cols, 2.5 * len(chosen) + 0.6), squeeze=False)
    for i, (image, (size, gt)) in enumerate(zip(chosen, truth, strict=False)):
        _gt_panel(axes[i][0], image, size, gt, names)
        axes[i][0].set_ylabel(image.name, fontsize=7)
        for j in range(len(block.variants)):
            panel(axes[i][j + 1], image, size, gt, preds[j][i], names)
    for j, title in enumerate(
        ["ground truth"] + [v.label + ("" if v.seed in (0, None) else f" (seed {v.seed})") for v in block.variants]
    ):
        axes[0][j].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"{block.title}: {what}; best.pt of seed 0, {len(chosen)} validation images with the most small objects",
        fontsize=9,
        wrap=True,
    )
    fig.tight_layout()
    return save(fig, path)


def _image(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _box(ax, x1, y1, x2, y2, colour, dashed=False, lw=1.2):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=lw, ls="--" if dashed else "-"))


def _corner_label(ax, text: str) -> None:
    """A panel's count, white on black in its lower-left corner."""
    ax.text(
        0.02,
        0.02,
        text,
        transform=ax.transAxes,
        color="white",
        fontsize=6,
        bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0},
    )


def _gt_panel(ax, image, size, gt, names):
    ax.imshow(_image(image))
    for c, x1, y1, x2, y2 in gt:
        _box(ax, x1, y1, x2, y2, _COLOURS["gt"], lw=1.0)
        ax.text(x1, y1 - 1, str(names.get(c, c))[:3], color="white", fontsize=5, va="bottom")
    _corner_label(ax, f"{len(gt)} objects")


def _cam_panel(ax, image, size, gt, pred, names):
    if pred["cam"] is None:
        ax.text(0.5, 0.5, "no heatmap", ha="center", va="center", transform=ax.transAxes, fontsize=7)
        return
    ax.imshow(pred["cam"])


def _detection_panel(ax, image, size, gt, pred, names):
    from src.ultralytics_glue.explain import matches

    ax.imshow(_image(image))
    kinds = matches(pred, gt)
    for kind in ("FN", "FP", "TP"):
        for x1, y1, x2, y2, _ in kinds[kind]:
            _box(ax, x1, y1, x2, y2, _COLOURS[kind], dashed=kind == "FN")
    _corner_label(ax, f"TP {len(kinds['TP'])}  FP {len(kinds['FP'])}  miss {len(kinds['FN'])}")


# ======================================================================== CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.visualize", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", metavar="SWEEP_DIR", help="a sweep directory (its jobs' result.json and best.pt)")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="validation images (rows) per figure")
    parser.add_argument("--no-cams", action="store_true", help="detections only, no heatmaps")
    args = parser.parse_args(argv)
    sweep = Path(args.sweep)
    problem = missing_path([args.sweep]) or (None if sweep.is_dir() else f"error: not a directory: {sweep}")
    if problem is None and not any(sweep.rglob(RESULT_FILE)):  # before anything writes caches into it
        problem = f"no figures: no {RESULT_FILE} under {sweep}"
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from src.runtime import outputs_of, set_environment, ultralytics_home

    outputs = outputs_of(sweep)
    set_environment(outputs)  # before ultralytics and matplotlib load
    from src.ultralytics_glue import settings

    settings.configure(ultralytics_home(outputs))
    files, notes = draw_sweep(sweep, images=max(1, args.images), cams=not args.no_cams)
    for note in notes:
        print(f"note: {note}")
    if not files:
        print(f"no figures: no completed job with a checkpoint under {sweep}", file=sys.stderr)
        return 2
    from src.aggregate import aggregate

    aggregate([str(sweep)], str(sweep))  # report.md embeds the figures
    for path in files.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
