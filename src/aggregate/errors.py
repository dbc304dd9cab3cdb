"""What a variant changes beyond mAP, as tables: its TIDE error breakdown with the Δ against the
baseline (errors.md / errors.csv, a bar plot, two findings per variant), and each evaluated image's
score against the baseline's at the same seed (images.csv, the won and lost images the figures show).

The per-job numbers come from src.metrics.errors (computed at the end of a sweep by src.compare,
which reads each job's predictions.json and the split's labels); this module only arranges them, so
the report can be rebuilt from errors.csv alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from src.metrics.errors import ERROR_LABELS, ERROR_TYPES, SCORE_CONF
from src.results import BASELINE
from src.results.schema import variant_label

from .tables import BLOCK

ERRORS_CSV, ERRORS_MD, IMAGES_CSV = "errors.csv", "errors.md", "images.csv"
VARIANT_KEYS = [*BLOCK, "setup", "pos", "attn"]
TYPES = list(ERROR_TYPES)
SCORE_NAME = f"TP - FP at conf >= {SCORE_CONF:g} (IoU >= 0.5, same class, one-to-one)"
WON, LOST = "won", "lost"
_HATCHES = ("", "//", "..", "xx", "\\\\")  # one per position, as the line plots' markers


# ============================================================================ error breakdown
def error_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per variant from one row per job (VARIANT_KEYS, seed, ap50 and the error types):
    the means over seeds, and `d_<type>` / `d_ap50`: the mean over seeds of variant minus the
    baseline of the same block and seed (NaN where no baseline of that seed exists)."""
    if jobs.empty:
        return pd.DataFrame(columns=[*VARIANT_KEYS, "n", "ap50", *TYPES, "d_ap50", *[f"d_{t}" for t in TYPES]])
    values = ["ap50", *TYPES]
    base = jobs[jobs["attn"] == BASELINE].set_index([*BLOCK, "seed"])[values]
    rows = []
    for key, grp in jobs.groupby(VARIANT_KEYS, sort=True, dropna=False):
        row = dict(zip(VARIANT_KEYS, key, strict=True))
        row["n"] = len(grp)
        row.update(grp[values].mean().to_dict())
        paired = grp.join(base, on=[*BLOCK, "seed"], rsuffix="_base", how="inner")
        for v in values:
            row[f"d_{v}"] = (paired[v] - paired[f"{v}_base"]).mean() if len(paired) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    table["_base_first"] = table["attn"] != BASELINE
    return table.sort_values([*BLOCK, "_base_first", "pos", "attn"]).drop(columns="_base_first").reset_index(drop=True)


def render_markdown(table: pd.DataFrame, level: int = 2) -> str:
    """Per block, variants (rows) by error type (columns): dAP50, and (Δ) against the baseline."""
    out = []
    for key, blk in table.groupby(BLOCK, sort=True):
        setup = blk["setup"].iloc[0]
        out.append(f"{'#' * level} {key[0]} · {key[1]}{f' ({setup})' if setup else ''}: TIDE errors\n")
        out.append(
            "dAP50 that fixing each error type would add (TIDE, foreground IoU 0.5, background 0.1; "
            "mean over seeds), (Δ) against the baseline of the same seeds.\n"
        )
        head = ["variant", "n", "AP50", *[ERROR_LABELS[t] for t in TYPES]]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
        for r in blk.to_dict("records"):
            cells = [_label(r), str(int(r["n"]))]
            for v in ["ap50", *TYPES]:
                d = r[f"d_{v}"]
                delta = "" if r["attn"] == BASELINE or pd.isna(d) else f" ({d if round(d, 2) else 0.0:+.2f})"
                cells.append(f"{r[v]:.2f}{delta}")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def findings(table: pd.DataFrame) -> dict[tuple, list[str]]:
    """Per block, one line per variant: its two largest error changes against the baseline
    ("`ema @ neck`: localisation -1.80 dAP, background +0.60 dAP")."""
    lines: dict[tuple, list[str]] = {}
    for key, blk in table.groupby(BLOCK, sort=True):
        for r in blk[blk["attn"] != BASELINE].to_dict("records"):
            deltas = {t: r[f"d_{t}"] for t in TYPES if pd.notna(r[f"d_{t}"])}
            if not deltas:
                continue
            changed = [t for t in deltas if round(abs(deltas[t]), 2) > 0]  # as printed: +0.00 is no change
            top = sorted(changed, key=lambda t: (-abs(deltas[t]), TYPES.index(t)))[:2]
            said = ", ".join(f"{ERROR_LABELS[t]} {deltas[t]:+.2f} dAP" for t in top) or "no error type changed"
            lines.setdefault(key, []).append(f"`{variant_label(r['attn'], r['pos'])}`: {said} (TIDE, vs the baseline)")
    return lines


def write_errors(table: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / ERRORS_CSV, out_dir / ERRORS_MD
    table.to_csv(csv, index=False)
    md.write_text(render_markdown(table))
    return {ERRORS_CSV: csv, ERRORS_MD: md}


def read_errors(out_dir: Path | None) -> pd.DataFrame:
    """errors.csv of an aggregation dir; empty when there is none (no predictions to analyse)."""
    return read_table(out_dir, ERRORS_CSV)


def read_table(out_dir: Path | None, name: str) -> pd.DataFrame:
    """errors.csv or images.csv of an aggregation dir, keys as written (train_key a string, no setup
    an empty string); empty when there is none."""
    path = None if out_dir is None else Path(out_dir) / name
    if path is None or not path.is_file():
        return pd.DataFrame(columns=VARIANT_KEYS)
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    table["setup"] = table["setup"].fillna("").astype(str)
    table[BLOCK[-1]] = table[BLOCK[-1]].astype(str)
    return table


def plot_errors(table: pd.DataFrame, plots: Path) -> dict[str, Path]:
    """Per block, `<stem>_errors.png`: each variant's dAP50 per error type, and its Δ against the baseline."""
    from .figure_style import Style, block_stem, pyplot, save

    plt = pyplot()
    files = {}
    for key, blk in table.groupby(BLOCK, sort=True):
        setup = blk["setup"].iloc[0]
        style = Style(blk["attn"], blk["pos"])
        rows = blk.to_dict("records")
        variants = [r for r in rows if r["attn"] != BASELINE]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
        x = np.arange(len(TYPES))
        for ax, what, shown in ((axes[0], "dAP50", rows), (axes[1], "Δ dAP50 vs baseline", variants)):
            width = 0.8 / max(len(shown), 1)
            for i, r in enumerate(shown):
                col = "d_" if ax is axes[1] else ""
                heights = [r[f"{col}{t}"] for t in TYPES]
                ax.bar(
                    x - 0.4 + width * (i + 0.5),
                    heights,
                    width,
                    color=style.colour[r["attn"]],
                    hatch=_HATCHES[style.poss.index(r["pos"]) % len(_HATCHES)] if r["pos"] in style.poss else None,
                    edgecolor="white",
                    label=Style.label(r["pos"], r["attn"]),
                )
            ax.set_xticks(x, [ERROR_LABELS[t] for t in TYPES], rotation=25, ha="right", fontsize=8)
            ax.set_ylabel(what, fontsize=9)
            ax.axhline(0, color="0.3", lw=0.8)
            ax.grid(axis="x", visible=False)  # the style's vertical lines would run through the bars
            ax.grid(axis="y", alpha=0.3)
        axes[0].set_title("error breakdown (lower is better)", fontsize=9)
        axes[1].set_title("change against the baseline (below 0: fewer errors)", fontsize=9)
        handles, labels = axes[0].get_legend_handles_labels()  # the baseline too
        axes[1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        fig.suptitle(
            f"{key[0]} · {key[1]}{f' ({setup})' if setup else ''}: TIDE errors (fg IoU 0.5, bg 0.1), mean over seeds",
            fontsize=10,
        )
        fig.tight_layout()
        stem = block_stem(key[0], key[1], setup)
        files[f"{stem}_errors"] = save(fig, plots / f"{stem}_errors.png")
    return files


def _label(r: dict) -> str:
    return "baseline (none)" if r["attn"] == BASELINE else variant_label(r["attn"], r["pos"])


# ============================================================================ images won and lost
def image_deltas(scores: pd.DataFrame) -> pd.DataFrame:
    """images.csv from one row per (job, image) (VARIANT_KEYS, seed, image, score): each variant's
    score next to the baseline's on the same image at the same seed, and their difference."""
    cols = [*VARIANT_KEYS, "seed", "image", "score", "baseline_score", "delta"]
    if scores.empty:
        return pd.DataFrame(columns=cols)
    base = scores[scores["attn"] == BASELINE].set_index([*BLOCK, "seed", "image"])["score"].rename("baseline_score")
    out = scores[scores["attn"] != BASELINE].join(base, on=[*BLOCK, "seed", "image"], how="inner")
    out["delta"] = out["score"] - out["baseline_score"]
    return out[cols].sort_values([*VARIANT_KEYS, "seed", "delta", "image"]).reset_index(drop=True)


def won_and_lost(deltas: pd.DataFrame) -> dict[tuple, list[tuple[str, str, str, float]]]:
    """Per block: (variant label, WON or LOST, image, Δ) for each variant at its lowest seed (the
    one the figures show): the image it gains most on and the one it loses most on against the
    baseline (ties: the image path decides). An image only counts as won with Δ > 0, lost with Δ < 0."""
    chosen: dict[tuple, list[tuple[str, str, str, float]]] = {}
    if deltas.empty:
        return chosen
    for key, grp in deltas.groupby([*BLOCK, "setup", "pos", "attn"], sort=True):
        rows = grp[grp["seed"] == grp["seed"].min()].sort_values(["delta", "image"])
        label = variant_label(key[-1], key[-2])
        picks = chosen.setdefault(tuple(key[:3]), [])
        best = rows.sort_values(["delta", "image"], ascending=[False, True]).iloc[0]
        worst = rows.iloc[0]
        if best["delta"] > 0:
            picks.append((label, WON, str(best["image"]), float(best["delta"])))
        if worst["delta"] < 0:
            picks.append((label, LOST, str(worst["image"]), float(worst["delta"])))
    return chosen
