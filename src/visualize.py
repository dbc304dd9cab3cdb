"""Side-by-side figures of a sweep's checkpoints: LayerCAM heatmaps, the attention modules' own
heatmaps and detections against the ground truth.

    python -m src.visualize SWEEP_DIR [--images N] [--no-cams]

For each (dataset, model[, setup]) block: one row per chosen image and one column per variant
(seed 0, the checkpoint its table scored: `eval.checkpoint`, best.pt by default), after a
ground-truth column. The rows: where src.compare wrote images.csv,
per variant the evaluated image it wins most on against the baseline and the one it loses most on
(`won` / `lost` rows, labelled with the Δ); otherwise N validation images (default 4, the ones with
the most COCO-small objects). `<stem>_cam.png` shows ultralytics' LayerCAM
overlays (`predict(visualize=True)`, `utils/plotting.class_activation_map`); `<stem>_module.png`
what the attention modules themselves change (ultralytics_glue/explain.py `effect_map`: the channel
mean of |a layer's output - its output with its modules made identities|); `<stem>_detections.png`
each variant's detections (conf >= 0.25; on images of the evaluated split those of the evaluation
pass, its predictions.json, else a predict()) split by ultralytics' own matcher (`ConfusionMatrix`: greedy,
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

from src.data.images import ground_truth, split_images
from src.files import size_bin
from src.results import JobDir
from src.results.schema import (
    AP_BY_SIZE_FROM,
    EVAL_CHECKPOINT,
    EVAL_DEFAULTS,
    EVAL_SPLIT,
    FINAL_VALIDATION,
    JOB_DIR,
    evaluated_with,
)

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 4
_COLOURS = {"gt": "#ffffff", "TP": "#2ca02c", "FP": "#d62728", "FN": "#ff9f1c"}


@dataclass
class Variant:
    label: str  # "cot @ neck", "baseline (none)"
    weights: Path
    imgsz: int
    seed: int | None
    predictions: Path | None = None  # its evaluation pass's predictions.json, where the job kept one


@dataclass
class Block:
    stem: str  # file-name stem of the block's figures (src.aggregate.figure_style.block_stem)
    title: str
    data_yaml: Path
    variants: list[Variant]
    key: tuple = ()  # (dataset, model, train_key): its rows in images.csv
    split: str = "val"  # the split its jobs were evaluated on (images.csv's images)


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
            weights = JobDir(run[JOB_DIR]).checkpoint(evaluated_with(run, EVAL_CHECKPOINT))
            if not weights.is_file():
                notes.append(f"{title}: {attn} @ {pos} has no {weights.relative_to(run[JOB_DIR])}; left out")
                continue
            split = evaluated_with(run, EVAL_SPLIT)
            scored = JobDir(run[JOB_DIR]).predictions(split, run.get(AP_BY_SIZE_FROM) == FINAL_VALIDATION)
            variants.append(
                Variant(
                    Style.label(pos, attn),
                    weights,
                    int(run["imgsz"]),
                    None if run["seed"] is None else int(run["seed"]),
                    scored if scored.is_file() else None,
                )
            )
            data_yaml = data_yaml or _existing(run.get("data_yaml"))
        if not variants:
            continue
        if data_yaml is None:
            notes.append(f"{title}: no data YAML of its jobs exists here; no figures")
            continue
        split = next((s for s in grp.get(EVAL_SPLIT, []) if isinstance(s, str)), EVAL_DEFAULTS[EVAL_SPLIT])
        blocks.append(
            Block(block_stem(dataset, model, setup), title, data_yaml, variants, (dataset, model, train_key), split)
        )
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


def choose_images(data_yaml: Path, n: int) -> list[Path]:
    """N validation images, the ones with most COCO-small objects (box area < 32^2 px at the
    original size) first, then by path: the same images every time, for every variant."""

    def key(image: Path):
        _, boxes = ground_truth(image)
        small = sum(size_bin((x2 - x1) * (y2 - y1)) == "small" for _, x1, y1, x2, y2 in boxes)
        return -small, str(image)

    return sorted(split_images(data_yaml, "val"), key=key)[:n]


@dataclass
class Row:
    image: Path
    label: str  # the y label: the file name, and why it is shown


def choose_rows(block: Block, n: int, out_dir: Path) -> tuple[list[Row], str]:
    """The images a block's figures show, and how they were chosen (for the title): per variant the
    one it wins most and the one it loses most against the baseline (images.csv, written by
    src.compare), else N validation images with the most small objects."""
    from src.aggregate import errors as E

    picks = E.won_and_lost(E.read_table(out_dir, E.IMAGES_CSV)).get(tuple(map(str, block.key)), [])
    if picks:
        by_name = {p.name: p for p in split_images(block.data_yaml, block.split)}
        rows: dict[str, list[str]] = {}
        for label, kind, image, delta in picks:
            if image in by_name:
                rows.setdefault(image, []).append(f"{kind} by {label} ({delta:+g})")
        if rows:
            how = (
                f"per variant the {block.split} image it wins and the one it loses most on against the baseline "
                f"(Δ of {E.SCORE_NAME}, seed as shown)"
            )
            return [Row(by_name[name], f"{name}\n" + "\n".join(why)) for name, why in rows.items()], how
    return [Row(p, p.name) for p in choose_images(block.data_yaml, n)], (
        f"{n} validation images with the most small objects"
    )


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
    rows, how = choose_rows(block, n_images, plots.parent)
    if not rows:
        return {}
    chosen = [r.image for r in rows]
    truth = [ground_truth(p) for p in chosen]
    plots.mkdir(parents=True, exist_ok=True)
    from src.aggregate.figure_style import safe_name
    from src.ultralytics_glue import explain

    work = Path(tempfile.mkdtemp(prefix=".visualize-", dir=plots))  # ultralytics writes its overlays here
    try:
        preds = [explain.predict(v.weights, chosen, v.imgsz, work / safe_name(v.label), cams) for v in block.variants]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if cams:
        for v, per_image in zip(block.variants, preds, strict=True):
            for pred, effect in zip(per_image, explain.module_effect(v.weights, chosen, v.imgsz), strict=True):
                pred["module"] = effect
    scored = _scored_detections(block, chosen, preds)
    names = preds[0][0]["names"]
    figure = _Figure(block, rows, truth, preds, names, how)
    files = {}
    if cams:
        files[f"{block.stem}_cam"] = figure.draw(
            plots / f"{block.stem}_cam.png", "LayerCAM heatmap (ultralytics class_activation_map)", _cam_panel
        )
        files[f"{block.stem}_module"] = figure.draw(
            plots / f"{block.stem}_module.png",
            "attention module heatmap: channel mean of |output - output without the module| at its position "
            "(inside a block: of the block's output), mean over positions, upsampled; colour from each panel's "
            "min to max",
            _module_panel,
        )
    source = {
        0: "predict()",
        len(chosen) * len(block.variants): "the evaluation pass (predictions.json)",
    }.get(scored, "the evaluation pass (predictions.json) where the job kept it, else predict()")
    files[f"{block.stem}_detections"] = figure.draw(
        plots / f"{block.stem}_detections.png",
        f"detections of {source} at conf ≥ {explain.CONF}: true positive (green), false positive (red), missed "
        f"ground truth (orange, dashed)",
        _detection_panel,
    )
    return files


def _scored_detections(block: Block, chosen: list[Path], preds: list[list[dict]]) -> int:
    """Put the evaluation pass's own detections (its predictions.json) in place of predict()'s for
    the chosen images of the evaluated split, so the detection panels show what was scored (ultralytics'
    validation letterboxes differently from predict: `rect` batches padded by half a stride). Returns
    how many panels changed."""
    import torch

    from src.compare import read_predictions

    evaluated = set(split_images(block.data_yaml, block.split))
    if not evaluated.intersection(chosen):  # e.g. the small-object choice of val images
        return 0
    changed = 0
    for v, per_image in zip(block.variants, preds, strict=True):
        if v.predictions is None:
            continue
        by_image: dict[str, list] = {}
        for b in read_predictions(v.predictions):
            by_image.setdefault(b.image, []).append(b)
        for image, pred in zip(chosen, per_image, strict=True):
            if image not in evaluated:
                continue
            boxes = by_image.get(image.name, [])
            pred["boxes"] = torch.tensor([[b.x, b.y, b.x + b.w, b.y + b.h] for b in boxes]).reshape(-1, 4)
            pred["conf"] = torch.tensor([b.score for b in boxes])
            pred["cls"] = torch.tensor([float(b.cls) for b in boxes])
            changed += 1
    return changed


@dataclass
class _Figure:
    """One grid of a block: a row per chosen image, the ground truth then one column per variant."""

    block: Block
    rows: list[Row]
    truth: list
    preds: list
    names: dict
    how: str

    def draw(self, path: Path, what: str, panel) -> Path:
        from src.aggregate.figure_style import pyplot, save

        plt = pyplot()
        block, rows = self.block, self.rows
        cols = 1 + len(block.variants)
        fig, axes = plt.subplots(len(rows), cols, figsize=(2.4 * cols, 2.5 * len(rows) + 0.8), squeeze=False)
        for i, (row, (size, gt)) in enumerate(zip(rows, self.truth, strict=True)):
            _gt_panel(axes[i][0], row.image, size, gt, self.names)
            axes[i][0].set_ylabel(row.label, fontsize=7)
            for j in range(len(block.variants)):
                panel(axes[i][j + 1], row.image, size, gt, self.preds[j][i], self.names)
        titles = ["ground truth"] + [
            v.label + ("" if v.seed in (0, None) else f" (seed {v.seed})") for v in block.variants
        ]
        for j, title in enumerate(titles):
            axes[0][j].set_title(title, fontsize=9)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        weights = "/".join(sorted({v.weights.name for v in block.variants}))
        fig.suptitle(f"{block.title}: {what}; {weights} of seed 0; rows: {self.how}", fontsize=9, wrap=True)
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


def _module_panel(ax, image, size, gt, pred, names):
    heat = pred.get("module")
    if heat is None:
        ax.imshow(_image(image).mean(-1), cmap="gray")
        _corner_label(ax, "no module")
        return
    ax.imshow(_image(image).mean(-1), cmap="gray")
    low, high = float(heat.min()), float(heat.max())
    ax.imshow(heat, cmap="jet", alpha=0.5, vmin=low, vmax=high if high > low else low + 1e-12)
    _corner_label(ax, f"|Δ| {low:.3g} (blue) to {high:.3g} (red)")


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
    parser.add_argument("sweep", metavar="SWEEP_DIR", help="a sweep directory (its jobs' result.json and checkpoints)")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="validation images (rows) per figure")
    parser.add_argument("--no-cams", action="store_true", help="detections only, no heatmaps")
    args = parser.parse_args(argv)
    sweep = Path(args.sweep)
    from src.aggregate.pipeline import finish_tool, sweep_problem

    problem = sweep_problem(args.sweep, "figures")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from src.runtime import outputs_of, set_environment, ultralytics_home

    outputs = outputs_of(sweep)
    set_environment(outputs)  # before ultralytics and matplotlib load
    from src.ultralytics_glue import settings

    settings.configure(ultralytics_home(outputs))
    files, notes = draw_sweep(sweep, images=max(1, args.images), cams=not args.no_cams)
    return finish_tool(sweep, files, notes, f"no figures: no completed job with a checkpoint under {sweep}")


if __name__ == "__main__":
    sys.exit(main())
