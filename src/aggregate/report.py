"""report.md: the study (what ran), the findings (best variant, significant effects, seeds
needed, the capacity control) and the Results, which are sections.py's Markdown tables.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pandas as pd

from src.results.schema import FINISHED_AT, STARTED_AT, TRAIN_KEY, TRAIN_SECONDS

from .collect import load_yaml
from .sections import render_markdown_tables
from .summary import Summary
from .tables import BLOCK


def _values(series: pd.Series) -> str:
    vals = series.dropna()
    if vals.empty:
        return "?"
    uniq = sorted({(int(v) if isinstance(v, (float, np.floating)) and float(v).is_integer() else v)
                   for v in vals}, key=str)
    return ", ".join(str(v) for v in uniq)


def _study_section(s: Summary, paths: list[str]) -> str:
    r = s.runs
    lines = ["## Study", ""]
    lines.append(f"- Sources: {', '.join(f'`{p}`' for p in paths)}")
    for cmd in _sweep_commands(paths):
        lines.append(f"- Sweep: `{cmd}`")
    if r.empty:
        return "\n".join(lines + ["- No jobs found.", ""])
    counts = ", ".join(f"{v} {k.replace('_', '-')}" for k, v in s.counts().items()
                       if v and k not in ("jobs", "duplicates"))
    lines.append(f"- Jobs: {s.n_jobs} ({counts})" + (f"; {s.n_duplicates} duplicate run(s) merged" if s.n_duplicates else ""))
    for key, label in (("dataset", "Datasets"), ("model", "Models"), ("attn", "Attention modules"),
                       ("pos", "Positions"), ("epochs", "Epochs"), ("imgsz", "Image size"), ("seed", "Seeds")):
        if key in r.columns:
            lines.append(f"- {label}: {_values(r[key])}")
    if TRAIN_KEY in r.columns and r[TRAIN_KEY].notna().any():
        lines.append(f"- Training configs (train_key): {r[TRAIN_KEY].dropna().nunique()}")
    for col in (STARTED_AT, FINISHED_AT):
        if col in r.columns and r[col].notna().any():
            vals = r[col].dropna().astype(str)
            lines.append(f"- {'First start' if col == STARTED_AT else 'Last finish'}: "
                         f"{vals.min() if col == STARTED_AT else vals.max()}")
    if TRAIN_SECONDS in r.columns and r[TRAIN_SECONDS].notna().any():
        hours = r[TRAIN_SECONDS].sum() / 3600
        lines.append(f"- Total training time: {hours:.2f} h (sum of train_seconds over jobs)")
    vcols = [c for c in r.columns if c.startswith("versions.")]
    if vcols:
        lines.append("- Versions: " + "; ".join(f"{c[len('versions.'):]} {_values(r[c])}" for c in sorted(vcols)))
    lines.append("")
    return "\n".join(lines)


def _sweep_commands(paths: list[str], limit: int = 20) -> list[str]:
    """The sweep overrides from Hydra's multirun.yaml, in each PATH or one level below it."""
    found: list[str] = []
    for p in paths:
        base = Path(p)
        if not base.is_dir():
            continue
        for f in [base / "multirun.yaml", *sorted(base.glob("*/multirun.yaml"))]:
            if len(found) >= limit or not f.is_file():
                continue
            cfg = load_yaml(f)
            try:
                task = cfg["hydra"]["overrides"]["task"]
            except (TypeError, KeyError):
                continue
            if isinstance(task, list):
                found.append(" ".join(str(t) for t in task))
    return list(dict.fromkeys(found))


def render_report(s: Summary, paths: list[str], plot_keys: dict | None = None) -> str:
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = "# Attention ablation report"
    intro = (f"_Generated {when} by `python -m src.aggregate`. "
             f"Tables: `ablation.md`, `ablation.csv`, `ablation.tex`"
             f"{'; per class: `per_class.md`, `.csv`, `.tex`' if not s.per_class.empty else ''}"
             f"; one row per job in `runs.csv`._\n")
    findings = _findings(s)
    body = render_markdown_tables(s, level=3, plot_keys=plot_keys or {}, per_class=True)
    notes = ""
    if s.notes:
        notes = "## Notes\n\n" + "\n".join(f"- {n}" for n in s.notes) + "\n"
    return "\n".join([title, "", intro, _study_section(s, paths), findings, "## Results\n", body, notes])


def _findings(s: Summary) -> str:
    """A few sentences: per dataset/model the best variant and the significant effects."""
    ab = s.ablation
    if ab.empty:
        return "## Findings\n\nNo trained results yet" + (" (cost only)." if not s.cost.empty else ".") + "\n"
    lines = ["## Findings", ""]
    for (ds, model, _), blk in ab.groupby(BLOCK, sort=True):
        setup = blk["setup"].iloc[0]
        name = f"**{ds} / {model}{' ' + setup if setup else ''}**"
        var = blk[~blk["is_baseline"] & blk["delta_map50_95"].notna()]
        base = blk[blk["is_baseline"]]
        if base.empty:
            lines.append(f"- {name}: no baseline (attn=none) finished, so no Δ.")
            continue
        if var.empty:
            lines.append(f"- {name}: only the baseline finished "
                         f"(mAP50-95 {100 * base['map50_95_mean'].iloc[0]:.2f}%).")
            continue
        best = var.loc[var["delta_map50_95"].idxmax()]
        sig = var[var["significant"]]
        up = sig[sig["delta_map50_95"] > 0]
        down = sig[sig["delta_map50_95"] < 0]
        text = (f"- {name}: baseline mAP50-95 {100 * base['map50_95_mean'].iloc[0]:.2f}%; best variant "
                f"`{best['attn']} @ {best['pos']}` Δ {100 * best['delta_map50_95']:+.2f} pp "
                f"(n={int(best['n'])}, {'significant' if best['significant'] else 'not significant'}). "
                f"{len(up)} of {len(var)} variants significantly better, {len(down)} significantly worse "
                f"(Holm-adjusted over the {len(var)}).")
        lines.append(text)
        lines.extend(_capacity_finding(var))
        lines.extend(_seeds_needed_findings(var))
    return "\n".join(lines) + "\n"


def _capacity_finding(var: pd.DataFrame) -> list[str]:
    """One line when the capacity control (same params, no attention) ran beside the modules it matches."""
    lines = []
    for row in var[var["attn"] == "capacity"].itertuples(index=False):
        peers = var[(var["pos"] == row.pos) & (var["attn"] != "capacity")]
        better = peers[peers["delta_map50_95"] > row.delta_map50_95]
        lines.append(f"  - capacity control @ {row.pos} (parameters without attention): Δ {100 * row.delta_map50_95:+.2f} pp; "
                     f"{len(better)} of {len(peers)} attention variants there beat it"
                     + (f" ({', '.join(f'`{a}`' for a in better['attn'])})" if len(better) else "")
                     + ": a gain not above this line is explained by the added parameters alone.")
    return lines


def _seeds_needed_findings(var: pd.DataFrame) -> list[str]:
    lines = []
    rows = var[var["seeds_needed"].notna()] if "seeds_needed" in var else var.iloc[0:0]
    for row in rows.itertuples(index=False):
        n = row.seeds_needed
        count = "more than 1000" if np.isinf(n) else f"about {int(n)}"
        target = getattr(row, "seeds_needed_for", row.delta_map50_95)
        aim = ("to tell it from 0" if target == row.delta_map50_95
               else f"to detect a Δ of {100 * abs(target):.2f} pp")
        lines.append(f"  - {row.attn} @ {row.pos}: {100 * row.delta_map50_95:+.2f} pp (seed sd of Δ "
                     f"{100 * row.delta_sd:.2f} pp); {count} seeds would be needed {aim} at 80 % power.")
    return lines
