"""report.md: the study (what ran), the findings (each variant's verdict, the seeds an undecided
one would need, the capacity control) and the Results, which are sections.py's Markdown tables.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pandas as pd

from src.results.schema import FINISHED_AT, STARTED_AT, TRAIN_KEY, TRAIN_SECONDS, variant_label

from . import errors as E
from . import factorial_render as FR
from .collect import load_yaml
from .sections import render_markdown_tables
from .summary import Summary
from .tables import ALPHA, BLOCK
from .uncertainty import BETTER, EQUIVALENT, IMAGES, UNDECIDED, WORSE


def _values(series: pd.Series) -> str:
    vals = series.dropna()
    if vals.empty:
        return "?"
    uniq = sorted(
        {(int(v) if isinstance(v, (float, np.floating)) and float(v).is_integer() else v) for v in vals}, key=str
    )
    return ", ".join(str(v) for v in uniq)


def _study_section(s: Summary, paths: list[str]) -> str:
    r = s.runs
    lines = ["## Study", ""]
    lines.append(f"- Sources: {', '.join(f'`{p}`' for p in paths)}")
    for cmd in _sweep_commands(paths):
        lines.append(f"- Sweep: `{cmd}`")
    if r.empty:
        return "\n".join(lines + ["- No jobs found.", ""])
    counts = ", ".join(
        f"{v} {k.replace('_', '-')}" for k, v in s.counts().items() if v and k not in ("jobs", "duplicates")
    )
    lines.append(
        f"- Jobs: {s.n_jobs} ({counts})" + (f"; {s.n_duplicates} duplicate run(s) merged" if s.n_duplicates else "")
    )
    for key, label in (
        ("dataset", "Datasets"),
        ("model", "Models"),
        ("attn", "Attention modules"),
        ("pos", "Positions"),
        ("epochs", "Epochs"),
        ("imgsz", "Image size"),
        ("seed", "Seeds"),
    ):
        if key in r.columns:
            lines.append(f"- {label}: {_values(r[key])}")
    if TRAIN_KEY in r.columns and r[TRAIN_KEY].notna().any():
        lines.append(f"- Training configs (train_key): {r[TRAIN_KEY].dropna().nunique()}")
    for col in (STARTED_AT, FINISHED_AT):
        if col in r.columns and r[col].notna().any():
            vals = r[col].dropna().astype(str)
            lines.append(
                f"- {'First start' if col == STARTED_AT else 'Last finish'}: "
                f"{vals.min() if col == STARTED_AT else vals.max()}"
            )
    if TRAIN_SECONDS in r.columns and r[TRAIN_SECONDS].notna().any():
        hours = r[TRAIN_SECONDS].sum() / 3600
        lines.append(f"- Total training time: {hours:.2f} h (sum of train_seconds over jobs)")
    vcols = [c for c in r.columns if c.startswith("versions.")]
    if vcols:
        lines.append("- Versions: " + "; ".join(f"{c[len('versions.') :]} {_values(r[c])}" for c in sorted(vcols)))
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
    intro = (
        f"_Generated {when} by `python -m src.aggregate`. "
        f"Tables: `ablation.md`, `ablation.csv`, `ablation.tex`"
        f"{'; per class: `per_class.md`, `.csv`, `.tex`' if not s.per_class.empty else ''}"
        f"; one row per job in `runs.csv`._\n"
    )
    findings = _findings(s)
    if not s.errors.empty:
        intro = intro.replace("._\n", "; TIDE errors per variant: `errors.md`, `.csv`; per image: `images.csv`._\n")
    body = render_markdown_tables(s, level=3, plot_keys=plot_keys or {}, per_class=True)
    notes = ""
    if s.notes:
        notes = "## Notes\n\n" + "\n".join(f"- {n}" for n in s.notes) + "\n"
    adaptive = f"{s.closing}\n" if s.closing else ""  # an adaptive sweep: its trainings against the fixed design's
    factorial = "".join(
        f"## Factorial study: {t}\n\nFiles: `factorial.md`, `.csv`, `.tex`, `factorial_effects.csv`.\n\n"
        + FR.render_markdown(f)
        + "\n"
        for t, f in s.factorials
    )
    parts = [title, "", intro, _study_section(s, paths), findings, factorial, "## Results\n", body, adaptive, notes]
    return "\n".join(parts)


def _findings(s: Summary) -> str:
    """Per dataset/model: the baseline, how the variants' verdicts came out, one line per variant
    written from its verdict, and the capacity control."""
    ab = s.ablation
    if ab.empty:
        return "## Findings\n\nNo trained results yet" + (" (cost only)." if not s.cost.empty else ".") + "\n"
    lines = ["## Findings", ""]
    error_lines = {} if s.errors.empty else {tuple(map(str, k)): v for k, v in E.findings(s.errors).items()}
    for key, blk in ab.groupby(BLOCK, sort=True):
        ds, model, _ = key
        setup = blk["setup"].iloc[0]
        name = f"**{ds} / {model}{' ' + setup if setup else ''}**"
        var = blk[~blk["is_baseline"] & blk["delta_map50_95"].notna()]
        base = blk[blk["is_baseline"]]
        if base.empty:
            lines.append(f"- {name}: no baseline (attn=none) finished, so no Δ.")
            continue
        if var.empty:
            lines.append(f"- {name}: only the baseline finished (mAP50-95 {100 * base['map50_95_mean'].iloc[0]:.2f}%).")
            continue
        counts = var["verdict"].replace("", "no interval").value_counts()
        said = ", ".join(f"{n} {v}" for v, n in counts.items())
        lines.append(
            f"- {name}: baseline mAP50-95 {100 * base['map50_95_mean'].iloc[0]:.2f}%; of {len(var)} "
            f"variant(s): {said} (95 % CIs over seeds and images, ±{100 * var['rope'].iloc[0]:g} pp "
            f"of no practical interest); {int(var['significant'].sum())} significant after Holm."
        )
        lines.extend(
            f"  - {_verdict_line(r)}" for r in var.sort_values("delta_map50_95", ascending=False).to_dict("records")
        )
        lines.extend(_capacity_finding(var))
        lines.extend(f"  - {line}" for line in error_lines.get(tuple(map(str, key)), []))
    return "\n".join(lines) + "\n"


def _verdict_line(r: dict) -> str:
    """One variant in words, from its verdict: "ema @ neck: equivalent to the baseline within ±0.5 pp"."""
    what = f"`{variant_label(r['attn'], r['pos'])}`"
    ci = (
        f"CI [{100 * r['delta_seeds_images_low']:+.2f}, {100 * r['delta_seeds_images_high']:+.2f}]"
        if np.isfinite(r["delta_seeds_images_low"])
        else "no CI"
    )
    delta = f"Δ {100 * r['delta_map50_95']:+.2f} pp, {ci}"
    rope = f"±{100 * r['rope']:g} pp"
    if r["verdict"] in (BETTER, WORSE):
        sig = (
            {True: "significant", False: "not significant"}[bool(r["significant"])]
            if np.isfinite(r["p_holm"])
            else "no test"
        )
        return (
            f"{what}: {r['verdict']} than the baseline beyond {rope} ({delta}, P(Δ>0) {r['p_improve']:.2f}; "
            f"Holm: {sig})."
        )
    if r["verdict"] == EQUIVALENT:
        return f"{what}: equivalent to the baseline within {rope} ({delta})."
    if r["verdict"] == UNDECIDED:
        return f"{what}: undecided, {ci} ({delta.split(',')[0]}, P(Δ>0) {r['p_improve']:.2f}){_more_seeds(r)}."
    if r["delta_ci_covers"] == IMAGES:
        return f"{what}: {delta} over the images only; no verdict (one seed: a new seed can move Δ more)."
    return f"{what}: {delta}; no verdict (n = {int(r['n'])})."


def _more_seeds(r: dict) -> str:
    """ "; about N more seeds (...)": the plan of seeds_needed, in words that say what it assumes."""
    needed = r.get("seeds_needed")
    if needed is None or np.isnan(needed):
        return ""
    m = round(ALPHA / r["seeds_needed_alpha"])
    plan = (
        f"80 % power to detect ±{100 * r['seeds_needed_for']:.2f} pp at α = {ALPHA:g}/{m} = "
        f"{r['seeds_needed_alpha']:.2g} (Bonferroni over the {m} variant(s): the first Holm step), two-sided, "
        f"if the true sd equals the observed one ({100 * r['delta_sd']:.2f} pp)"
    )
    if np.isinf(needed):
        return f"; more than 1000 seeds would be needed ({plan})"
    low, high = r.get("seeds_needed_low"), r.get("seeds_needed_high")
    spread = "" if np.isnan(low) or np.isnan(high) else f"; {_count(low)}-{_count(high)} over the sd's 95 % CI"
    more = int(needed) - int(r["n"])
    head = f"about {more} more seeds ({int(needed)} in all" if more > 0 else f"no more seeds ({int(needed)} suffice"
    return f"; {head} for {plan}{spread})"


def _count(n: float) -> str:
    return "over 1000" if np.isinf(n) else str(int(n))


def _capacity_finding(var: pd.DataFrame) -> list[str]:
    """One line when the capacity control (same params, no attention) ran beside the modules it matches."""
    lines = []
    for row in var[var["attn"] == "capacity"].itertuples(index=False):
        peers = var[(var["pos"] == row.pos) & (var["attn"] != "capacity")]
        better = peers[peers["delta_map50_95"] > row.delta_map50_95]
        lines.append(
            f"  - capacity control @ {row.pos} (parameters without attention): Δ {100 * row.delta_map50_95:+.2f} pp; "
            f"{len(better)} of {len(peers)} attention variants there beat it"
            + (f" ({', '.join(f'`{a}`' for a in better['attn'])})" if len(better) else "")
            + ": a gain not above this line is explained by the added parameters alone."
        )
    return lines
