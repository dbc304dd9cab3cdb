"""Rendering an aggregation: the terminal table, ablation.md / .tex and report.md.

Every format walks the same per-dataset sections (`sections`), built once from the Summary.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.results import FAILED, RUNNING

from . import per_class as PC
from . import render as R
from .tables import BLOCK
from .collect import CORRUPT, MISSING
from .summary import Summary

PROBLEM_LABEL = {FAILED: "FAILED", RUNNING: "INTERRUPTED", MISSING: "MISSING", CORRUPT: "CORRUPT"}


def problem_line(r, width: int = 120) -> str:
    """One line: STATUS  dataset model attn@pos seed=S: the error's key line  [job dir].

    The error is shortened so the line fits `width` characters (the full text is in problems.csv).
    """
    what = " ".join(str(v) for v in (r.get("dataset"), r.get("model")) if _known(v))
    attn, pos = r.get("attn"), r.get("pos")
    if _known(attn):
        what += f" {attn}@{pos if _known(pos) else '?'}"
    seed = r.get("seed")
    if _known(seed):
        what += f" seed={int(seed)}"
    err = str(r.get("error") or "").strip()
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    # the last line of a traceback is the informative one
    msg = lines[-1] if lines and lines[0].startswith("Traceback") else (lines[0] if lines else "")
    label = PROBLEM_LABEL.get(r.get("status"), str(r.get("status")).upper())
    if r.get("status") == RUNNING and "still running" in err:
        label = "RUNNING"
    head = f"{label:<11} {what.strip() or '(unknown job)'}: "
    tail = f"  [{_short_dir(r.get('job_dir'))}]"
    room = max(40, width - len(head) - len(tail))
    if len(msg) > room:
        msg = msg[: room - 1] + "…"
    return head + msg + tail


def _known(v) -> bool:
    try:
        return not pd.isna(v)
    except (TypeError, ValueError):
        return True


def _short_dir(path) -> str:
    if not isinstance(path, str):
        return "?"
    parts = Path(path).parts
    return os.path.join(*parts[-2:]) if len(parts) >= 2 else path


@dataclass(frozen=True)
class Section:
    """One dataset's share of an aggregation (dataset None: jobs that could not be identified)."""
    dataset: str | None
    ablation: pd.DataFrame
    cost: pd.DataFrame
    problems: pd.DataFrame


def sections(s: Summary) -> list[Section]:
    """Per dataset (sorted), its ablation rows, cost rows and jobs without results; then, if any,
    the unidentified jobs without results."""
    names = set(s.ablation["dataset"].dropna())
    for frame in (s.cost, s.problems):
        if not frame.empty:
            names |= set(frame["dataset"].dropna())

    def rows(frame: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
        if frame.empty:
            return frame
        return frame[frame["dataset"].isna()] if dataset is None else frame[frame["dataset"] == dataset]

    out = [Section(ds, rows(s.ablation, ds), rows(s.cost, ds), rows(s.problems, ds))
           for ds in sorted(str(n) for n in names)]
    orphans = rows(s.problems, None)
    if not orphans.empty:
        out.append(Section(None, s.ablation.iloc[0:0], s.cost.iloc[0:0], orphans))
    return out


def render_terminal(s: Summary) -> str:
    out: list[str] = []
    counts = ", ".join(f"{v} {k.replace('_', '-')}" for k, v in s.counts().items() if v and k not in ("jobs", "duplicates"))
    out.append(f"Aggregated {s.n_jobs} job(s): {counts or 'nothing found'}")
    for sec in sections(s):
        out.append("")
        if sec.dataset is None:
            out.append(f"-- {len(sec.problems)} unidentified job(s) without results --")
            out.extend(problem_line(r) for r in sec.problems.to_dict("records"))
            continue
        if not sec.ablation.empty:
            out.append(f"== {sec.dataset}{_one_model(sec.ablation)}: ablation (mAP in %, mean±std over seeds) ==")
            out.append(R.render_terminal(sec.ablation))
            out.append(_wrap(R.footnote(sec.ablation, "*"), 118))
            classes = _per_class_of(s, sec.dataset)
            if not classes.empty:
                out += ["", PC.render_terminal(classes)]
        elif not sec.cost.empty:
            out.append(f"== {sec.dataset}{_one_model(sec.cost)}: cost only (no trained results) ==")
            out.append(R.render_terminal(sec.cost, cost=True))
        else:
            out.append(f"== {sec.dataset}: no usable results ==")
        if not sec.problems.empty:
            out.append(f"-- {len(sec.problems)} job(s) without results --")
            out.extend(problem_line(r) for r in sec.problems.to_dict("records"))
    if s.notes:
        import textwrap
        out += ["", "Notes:"]
        for n in s.notes:
            out += textwrap.wrap(n, 118, initial_indent="  - ", subsequent_indent="    ")
    if s.files:
        out += ["", f"Wrote {len(s.files)} file(s) to {s.out_dir}"]
    return "\n".join(out)


def _one_model(table: pd.DataFrame) -> str:
    models = table["model"].unique()
    return f" · {models[0]}" if len(models) == 1 else ""


def _wrap(text: str, width: int) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(text, width))


def _per_class_of(s: Summary, dataset: str) -> pd.DataFrame:
    table = s.per_class
    return table[table["dataset"] == dataset] if not table.empty else table


def render_markdown_tables(s: Summary, level: int = 2, plot_keys: dict | None = None,
                           per_class: bool = False) -> str:
    h = "#" * level
    out: list[str] = []
    for sec in sections(s):
        if sec.dataset is None:
            out.append(f"{h} Unidentified jobs without results ({len(sec.problems)})\n")
            out.extend(f"- `{problem_line(r, 300)}`" for r in sec.problems.to_dict("records"))
            out.append("")
            continue
        ab, cost = sec.ablation, sec.cost
        out.append(f"{h} {R.md_escape(sec.dataset)}\n")
        if not ab.empty:
            out.append(R.render_markdown(ab))
            out.append("\n" + R.md_escape(R.footnote(ab, "bold")) + "\n")
        if not cost.empty:
            out.append(f"{h}# Cost{' (dry run only: no trained results)' if ab.empty else ''}\n")
            out.append(R.render_markdown(cost, cost=True))
            out.append("\nMean over jobs that measured the model; Δ against the baseline 'none' of the same "
                       "dataset, model and image size; best (lowest) value per model in bold.\n")
        if ab.empty and cost.empty:
            out.append("No usable results.\n")
        if per_class and not _per_class_of(s, sec.dataset).empty:
            out.append(PC.render_markdown(_per_class_of(s, sec.dataset), level=level + 1))
        if plot_keys is not None:
            out.append(_md_plots(s, sec.dataset, plot_keys, h + "#"))
        if not sec.problems.empty:
            out.append(f"{h}# Jobs without results ({len(sec.problems)})\n")
            out.extend(f"- `{problem_line(r, 300)}`" for r in sec.problems.to_dict("records"))
            out.append("")
    if not out:
        out.append("No results found.\n")
    return "\n".join(out).rstrip() + "\n"


def _md_plots(s: Summary, ds: str, plot_keys: dict, h: str = "####") -> str:
    lines = []
    for (dataset, model, train_key), keys in sorted(plot_keys.items()):
        if dataset != ds or not keys:
            continue
        lines.append(f"{h} Plots: {R.md_escape(model)}\n")
        for k in keys:
            rel = os.path.relpath(s.files[k], s.out_dir) if s.out_dir else str(s.files[k])
            lines.append(f"![{k}]({Path(rel).as_posix()})\n")
    return "\n".join(lines)


def render_latex_tables(s: Summary) -> str:
    out = ["% Generated by `python -m src.aggregate`. Needs \\usepackage{booktabs}.", ""]
    for sec in sections(s):
        if not sec.ablation.empty:
            out += [R.render_latex(sec.ablation, sec.dataset, notes=R.footnote(sec.ablation, "bold")), ""]
        if not sec.cost.empty:
            out += [R.render_latex(sec.cost, sec.dataset, cost=True), ""]
    return "\n".join(out)


# ================================================================================ report.md
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
    if "train_key" in r.columns and r["train_key"].notna().any():
        lines.append(f"- Training configs (train_key): {r['train_key'].dropna().nunique()}")
    for col in ("started_at", "finished_at"):
        if col in r.columns and r[col].notna().any():
            vals = r[col].dropna().astype(str)
            lines.append(f"- {'First start' if col == 'started_at' else 'Last finish'}: "
                         f"{vals.min() if col == 'started_at' else vals.max()}")
    if "train_seconds" in r.columns and r["train_seconds"].notna().any():
        hours = r["train_seconds"].sum() / 3600
        lines.append(f"- Total training time: {hours:.2f} h (sum of train_seconds over jobs)")
    vcols = [c for c in r.columns if c.startswith("versions.")]
    if vcols:
        lines.append("- Versions: " + "; ".join(f"{c[len('versions.'):]} {_values(r[c])}" for c in sorted(vcols)))
    lines.append("")
    return "\n".join(lines)


def _sweep_commands(paths: list[str], limit: int = 20) -> list[str]:
    """The sweep overrides from Hydra's multirun.yaml, in each PATH or one level below it."""
    from .collect import _load_yaml
    found: list[str] = []
    for p in paths:
        base = Path(p)
        if not base.is_dir():
            continue
        for f in [base / "multirun.yaml", *sorted(base.glob("*/multirun.yaml"))]:
            if len(found) >= limit or not f.is_file():
                continue
            cfg = _load_yaml(f)
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
