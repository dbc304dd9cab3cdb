"""PNG plots per (dataset, model[, setup]) block: accuracy vs cost with the Pareto front,
learning curves with a band over seeds, Δ mAP50-95 with its CI, and the PR curves at IoU 0.5.

Colour encodes the attention module, the marker (or line style) its position; the baseline is a
black star / line (figure_style.py). Every function returns the files written and notes for plots
it skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from src.results.schema import LATENCY_MS, PR_CURVE_FILE_KEY, variant_label

from .figure_style import IMAGE_FIGURES, Style, block_stem, pyplot, save
from .job_curves import CURVE_COLUMN, read_curve, read_pr_curve
from .stats import pareto_front
from .tables import BASELINE, BLOCK
from .uncertainty import BETTER, EQUIVALENT, UNDECIDED, WORSE

VERDICT_COLOURS = {BETTER: "tab:green", WORSE: "tab:red", EQUIVALENT: "tab:blue", UNDECIDED: "0.65"}


# --------------------------------------------------------------------------- accuracy vs cost
def plot_tradeoff(block: pd.DataFrame, cost_col: str, xlabel: str, title: str, path: Path, style: Style) -> Path | None:
    data = block[np.isfinite(block[cost_col].astype(float)) & np.isfinite(block["map50_95_mean"].astype(float))]
    if data.empty:
        return None
    plt = pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    x = data[cost_col].to_numpy(float)
    y = 100 * data["map50_95_mean"].to_numpy(float)
    err = 100 * data["map50_95_std"].astype(float).fillna(0.0).to_numpy()
    colours = np.empty(len(data), dtype=object)
    colours[:] = [style.colour.get(a, "grey") for a in data["attn"]]
    extra = []
    front = pareto_front(x, y)
    if len(front):
        fx, fy = x[front], y[front]
        # staircase: the best accuracy reachable at each cost
        ax.step(fx, fy, where="post", color="0.55", lw=1.2, ls="--", zorder=1)
        ax.scatter(fx, fy, s=190, facecolors="none", edgecolors="0.55", lw=1.0, zorder=2)
        extra.append(Line2D([], [], color="0.55", ls="--", marker="o", mfc="none", ms=10, label="Pareto front"))
        mid = (np.nanmin(x) + np.nanmax(x)) / 2
        for i in front:  # name the variants on the front: they are the ones worth reading about
            r = data.iloc[i]
            if r["attn"] != BASELINE:
                right = x[i] <= mid  # label towards the middle, never across the axes' edge
                ax.annotate(
                    variant_label(r["attn"], r["pos"]),
                    (x[i], y[i]),
                    xytext=(8 if right else -8, -12),
                    textcoords="offset points",
                    fontsize=7,
                    color="0.25",
                    ha="left" if right else "right",
                )
    e = err > 0
    if e.any():  # one collection for all error bars, plus their caps
        ax.vlines(x[e], (y - err)[e], (y + err)[e], colors=list(colours[e]), lw=1.0, zorder=2)
        ax.scatter(
            np.r_[x[e], x[e]],
            np.r_[(y - err)[e], (y + err)[e]],
            marker="_",
            s=40,
            lw=1.0,
            c=list(colours[e]) * 2,
            zorder=2,
        )
    pos = data["pos"].to_numpy()
    for p in pd.unique(pos):
        sel = pos == p
        ax.scatter(
            x[sel],
            y[sel],
            marker=style.marker.get(p, "o"),
            s=160 if p == "-" else 55,
            c=list(colours[sel]),
            edgecolors="white",
            linewidths=0.6,
            zorder=3,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mAP50-95 (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.12)
    style.legend(ax, lines=False, extra=extra, title="error bars: ±1 std over seeds")
    return save(fig, path)


# --------------------------------------------------------------------------- learning curves
def plot_curves(runs: pd.DataFrame, title: str, path: Path, style: Style) -> Path | None:
    """Mean mAP50-95 per epoch per variant with a ±1 std band over seeds; the right panel zooms
    into the last third of training, where the variants separate."""
    curves: dict[tuple[str, str], list[pd.Series]] = {}
    for r in runs.itertuples(index=False):
        c = read_curve(r.job_dir, getattr(r, "curve", None))
        if c is not None:
            s = pd.Series(c[1], index=c[0])
            curves.setdefault((r.pos, r.attn), []).append(s[~s.index.duplicated(keep="last")])
    if not curves:
        return None
    plt = pyplot()
    order = sorted(curves, key=lambda k: (k[1] != BASELINE, k[1], k[0]))
    stats = {}
    for key in order:
        frame = pd.concat(curves[key], axis=1).sort_index()
        stats[key] = (100 * frame.mean(axis=1), 100 * frame.std(axis=1) if frame.shape[1] > 1 else None)
    epochs = np.unique(np.concatenate([m.index.to_numpy(float) for m, _ in stats.values()]))
    zoom = len(epochs) >= 6
    fig, axes = plt.subplots(
        1,
        2 if zoom else 1,
        figsize=(12.5 if zoom else 8.5, 5.0),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.3, 1]} if zoom else None,
    )
    axes = axes[0]
    alpha = 0.15 if len(order) <= 10 else 0.07
    start = epochs[int(len(epochs) * 2 / 3)] if zoom else epochs[0]
    for ax in axes:
        for pos, attn in order:
            mean, std = stats[(pos, attn)]
            if ax is not axes[0]:
                keep = mean.index >= start
                mean, std = mean[keep], (std[keep] if std is not None else None)
            colour = style.colour.get(attn, "grey")
            ax.plot(
                mean.index,
                mean.to_numpy(),
                color=colour,
                ls=style.line.get(pos, "-"),
                lw=2.0 if attn == BASELINE else 1.3,
                zorder=3 if attn == BASELINE else 2,
            )
            if std is not None and (ax is axes[0] or len(order) <= 12):  # zoom: bands only when few
                ax.fill_between(
                    mean.index, (mean - std).to_numpy(), (mean + std).to_numpy(), color=colour, alpha=alpha, lw=0
                )
        ax.set_xlabel("Epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mAP50-95 (%) on val")
    axes[0].set_title(title, fontsize=10)
    if zoom:
        axes[1].set_title(f"last third (epoch ≥ {start:g})", fontsize=10)
        axes[0].axvspan(start, epochs[-1], color="0.9", zorder=0)
    n_seeds = sorted({len(v) for v in curves.values()})
    seeds = f"n={n_seeds[0]}" if len(n_seeds) == 1 else f"n={n_seeds[0]}-{n_seeds[-1]}"
    style.legend(axes[-1], lines=True, title=f"mean, band ±1 std over seeds ({seeds})")
    return save(fig, path)


# --------------------------------------------------------------------------- PR curves
def plot_pr(block: pd.DataFrame, runs: pd.DataFrame, title: str, path: Path, style: Style) -> Path | None:
    """One line per variant: precision against recall at IoU 0.5, averaged over classes (as
    ultralytics' own 'all classes' line) and over seeds; the legend gives each variant's mAP50."""
    curves: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for r in runs.itertuples(index=False):
        c = read_pr_curve(r.job_dir, getattr(r, PR_CURVE_FILE_KEY, None))
        if c is not None:
            curves.setdefault((r.pos, r.attn), []).append(c)
    if not curves:
        return None
    plt = pyplot()
    map50 = {(r["pos"], r["attn"]): r.get("map50_mean") for r in block.to_dict("records")}
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    for pos, attn in sorted(curves, key=lambda k: (k[1] != BASELINE, k[1], k[0])):
        seeds = curves[(pos, attn)]
        grid = seeds[0][0]
        precision = np.mean([np.interp(grid, x, y) for x, y in seeds], axis=0)
        score = map50.get((pos, attn))
        label = style.label(pos, attn)
        if score is not None and np.isfinite(score):
            label += f"  mAP50 {100 * score:.1f}"
        if len(seeds) > 1:
            label += f"  (n={len(seeds)})"
        ax.plot(
            grid,
            100 * precision,
            color=style.colour.get(attn, "grey"),
            ls=style.line.get(pos, "-"),
            lw=2.0 if attn == BASELINE else 1.4,
            label=label,
            zorder=3 if attn == BASELINE else 2,
        )
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision (%), mean over classes")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 101)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8, ncol=1 if len(curves) <= 24 else 2
    )
    return save(fig, path)


# --------------------------------------------------------------------------- Δ with CI
def plot_delta(block: pd.DataFrame, title: str, path: Path) -> Path | None:
    data = block[~block["is_baseline"] & np.isfinite(block["delta_map50_95"].astype(float))]
    if data.empty:
        return None
    data = data.sort_values(["pos", "attn"], ascending=False)
    plt = pyplot()
    from matplotlib.patches import Patch

    height = max(2.6, 0.42 * len(data) + 1.4)
    fig, ax = plt.subplots(figsize=(8.5, height))
    d = 100 * data["delta_map50_95"].to_numpy(float)
    lo = 100 * data["delta_seeds_images_low"].to_numpy(float)  # the table's interval (seeds and images)
    hi = 100 * data["delta_seeds_images_high"].to_numpy(float)
    colours = data["verdict"].map(VERDICT_COLOURS).fillna(VERDICT_COLOURS[UNDECIDED]).to_numpy()
    ypos = np.arange(len(data))
    ax.barh(ypos, d, color=colours, height=0.6, zorder=2)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if has_ci.any():
        xerr = np.vstack([d - lo, hi - d])[:, has_ci]
        ax.errorbar(d[has_ci], ypos[has_ci], xerr=xerr, fmt="none", ecolor="black", capsize=3, lw=1, zorder=3)
    labels = []
    for r, ok in zip(data.to_dict("records"), has_ci, strict=False):
        test = "" if r["test"] == "paired" else " †"
        labels.append(f"{variant_label(r['attn'], r['pos'])} (n={int(r['n'])}{'' if ok else ', no CI'}){test}")
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set_ylim(-0.7, len(data) - 0.3)
    ax.axvline(0, color="black", lw=0.8, zorder=1)
    rope = 100 * float(data["rope"].iloc[0])
    ax.axvspan(-rope, rope, color="tab:blue", alpha=0.08, zorder=0)
    ax.set_xlabel(
        f"Δ mAP50-95 vs baseline (percentage points), 95% CI over seeds and images; shaded: ±{rope:g} pp (equivalent)"
    )
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3, zorder=0)
    span = np.nanmax(np.abs(np.r_[d, lo[has_ci], hi[has_ci]])) if len(d) else 1.0
    span = span if np.isfinite(span) and span > 0 else 1.0
    ax.set_xlim(-1.15 * span, 1.15 * span)
    handles = [Patch(color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    if (data["test"] == "welch").any():
        handles.append(Patch(color="white", label="† Welch (seeds unmatched)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    return save(fig, path)


# --------------------------------------------------------------------------- per block
def plot_block(
    block: pd.DataFrame,
    block_runs: pd.DataFrame,
    out_dir: Path,
    *,
    dataset: str,
    model: str,
    setup: str = "",
    curves: bool = True,
    latency_on: str = "",
) -> tuple[dict[str, Path], list[str]]:
    """All plots of one (dataset, model, train_key) block; `latency_on`: the cost pass's device."""
    files: dict[str, Path] = {}
    notes: list[str] = []
    name = f"{dataset} · {model}" + (f" ({setup})" if setup else "")
    stem = block_stem(dataset, model, setup)
    style = Style(block["attn"], block["pos"])
    # GFLOPs: ultralytics' figure at 640 px; latency: the side-by-side cost pass's (costs.json), on one device
    specs = [
        ("map_vs_gflops", "gflops", "GFLOPs (10⁹ FLOPs per image)"),
        ("map_vs_latency", LATENCY_MS, "Latency (ms per image" + (f", {latency_on})" if latency_on else ")")),
    ]
    for kind, col, xlabel in specs:
        what = "GFLOPs" if col == "gflops" else "latency"
        if col not in block.columns or not np.isfinite(block[col].astype(float)).any():
            why = "no side-by-side cost pass" if col == LATENCY_MS else f"no {what} measured"
            notes.append(f"{name}: skipped mAP50-95 vs {what} ({why})")
            continue
        p = plot_tradeoff(
            block,
            col,
            xlabel,
            f"{name}: mAP50-95 vs {what} (mean ± std over seeds)",
            out_dir / f"{stem}_{kind}.png",
            style,
        )
        if p is None:
            notes.append(f"{name}: skipped mAP50-95 vs {what} (no variant has both)")
        else:
            files[f"{stem}_{kind}"] = p
    if curves:
        p = plot_curves(block_runs, f"{name}: mAP50-95 per epoch", out_dir / f"{stem}_curves.png", style)
        if p is None:
            notes.append(f"{name}: skipped learning curves (no results.csv with '{CURVE_COLUMN}')")
        else:
            files[f"{stem}_curves"] = p
    p = plot_delta(block, f"{name}: Δ mAP50-95 vs baseline 'none' (95% CI)", out_dir / f"{stem}_delta.png")
    if p is None:
        notes.append(f"{name}: skipped Δ plot (no variant with a baseline to compare)")
    else:
        files[f"{stem}_delta"] = p
    p = plot_pr(
        block, block_runs, f"{name}: precision-recall at IoU 0.5 (final validation)", out_dir / f"{stem}_pr.png", style
    )
    if p is None:
        notes.append(f"{name}: skipped PR curves (no job kept a pr_curve.csv)")
    else:
        files[f"{stem}_pr"] = p
    return files, notes


def image_figures(ablation: pd.DataFrame, out_dir: Path) -> dict[tuple, dict[str, Path]]:
    """Per block, the figures src.visualize drew into `out_dir` (keyed like the plots)."""
    found: dict[tuple, dict[str, Path]] = {}
    for key, block in ablation.groupby(BLOCK, sort=True):
        stem = block_stem(key[0], key[1], str(block["setup"].iloc[0]) if "setup" in block.columns else "")
        files = {f"{stem}_{kind}": out_dir / f"{stem}_{kind}.png" for kind, _ in IMAGE_FIGURES}
        files = {k: p for k, p in files.items() if p.is_file()}
        if files:
            found[key] = files
    return found


def plot_all(
    ablation: pd.DataFrame, runs: pd.DataFrame, out_dir: Path, curves: bool = True, latency_on: str = ""
) -> tuple[dict[str, Path], list[str], dict[tuple, list[str]]]:
    """Plots for every block; also returns, per (dataset, model, train_key), the plot keys."""
    files: dict[str, Path] = {}
    notes: list[str] = []
    per_block: dict[tuple, list[str]] = {}
    if ablation.empty:
        return files, ["no completed runs with metrics: no plots"], per_block
    run_groups = {k: v for k, v in runs.groupby(BLOCK, sort=False)} if not runs.empty else {}
    for key, block in ablation.groupby(BLOCK, sort=True):
        dataset, model, _ = key
        setup = str(block["setup"].iloc[0]) if "setup" in block.columns else ""
        try:
            f, n = plot_block(
                block,
                run_groups.get(key, runs.iloc[0:0]),
                out_dir,
                dataset=dataset,
                model=model,
                setup=setup,
                curves=curves,
                latency_on=latency_on,
            )
        except Exception as exc:  # a plot must never sink the tables
            f, n = {}, [f"{dataset} · {model}: plotting failed ({type(exc).__name__}: {exc})"]
        files.update(f)
        notes.extend(n)
        per_block[key] = list(f)
    return files, notes, per_block
