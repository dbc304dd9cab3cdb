"""An aggregation's tables, dataset by dataset: the terminal printout, ablation.md and ablation.tex
(report.md's Results are the Markdown ones, with per-class tables and plots).

Every format walks the same per-dataset sections (`sections`), built once from the Summary; each
table inside is written by render.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.results import FAILED, RUNNING
from src.results.schema import JOB_DIR, SIDE_BY_SIDE

from . import errors as E
from . import factorial_render as FR
from . import per_class_render as PCR
from . import render as R
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
    tail = f"  [{_short_dir(r.get(JOB_DIR))}]"
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

    out = [
        Section(ds, rows(s.ablation, ds), rows(s.cost, ds), rows(s.problems, ds))
        for ds in sorted(str(n) for n in names)
    ]
    orphans = rows(s.problems, None)
    if not orphans.empty:
        out.append(Section(None, s.ablation.iloc[0:0], s.cost.iloc[0:0], orphans))
    return out


def render_terminal(s: Summary) -> str:
    out: list[str] = []
    counts = ", ".join(
        f"{v} {k.replace('_', '-')}" for k, v in s.counts().items() if v and k not in ("jobs", "duplicates")
    )
    out.append(f"Aggregated {s.n_jobs} job(s): {counts or 'nothing found'}")
    for sec in sections(s):
        out.append("")
        if sec.dataset is None:
            out.append(f"-- {len(sec.problems)} unidentified job(s) without results --")
            out.extend(problem_line(r) for r in sec.problems.to_dict("records"))
            continue
        if not sec.ablation.empty:
            out.append(f"== {sec.dataset}{_one_model(sec.ablation)}: ablation (mAP in %, mean±std over seeds) ==")
            out.append(R.eval_caption(sec.ablation))
            out.extend(_cost_caption(s, sec.ablation))
            out.append(R.render_terminal(sec.ablation))
            out.append(_wrap(R.footnote(sec.ablation, "*"), 118))
            classes = _per_class_of(s, sec.dataset)
            if not classes.empty:
                out += ["", PCR.render_terminal(classes)]
        elif not sec.cost.empty:
            out.append(f"== {sec.dataset}{_one_model(sec.cost)}: cost only (no trained results) ==")
            out.extend(_cost_caption(s, sec.cost))
            out.append(R.render_terminal(sec.cost, cost=True))
        else:
            out.append(f"== {sec.dataset}: no usable results ==")
        if not sec.problems.empty:
            out.append(f"-- {len(sec.problems)} job(s) without results --")
            out.extend(problem_line(r) for r in sec.problems.to_dict("records"))
    for title, fac in s.factorials:
        md = FR.render_markdown(fac).replace("\\_", "_").rstrip().splitlines()  # Markdown, read as text
        out += ["", f"== {title}: factorial study =="] + [x if x.startswith("|") else _wrap(x, 118) for x in md]
    if s.notes:
        import textwrap

        out += ["", "Notes:"]
        for n in s.notes:
            out += textwrap.wrap(n, 118, initial_indent="  - ", subsequent_indent="    ")
    if s.files:
        out += ["", f"Wrote {len(s.files)} file(s) to {s.out_dir}"]
    if s.closing:
        out += [s.closing]
    return "\n".join(out)


def _cost_caption(s: Summary, table: pd.DataFrame) -> list[str]:
    """The side-by-side pass's device, for a table that shows its columns (else nothing)."""
    shown = any(c in table.columns and table[c].notna().any() for c in SIDE_BY_SIDE)
    return [s.side_by_side.caption] if shown and s.side_by_side.caption else []


def _one_model(table: pd.DataFrame) -> str:
    models = table["model"].unique()
    return f" · {models[0]}" if len(models) == 1 else ""


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _per_class_of(s: Summary, dataset: str) -> pd.DataFrame:
    table = s.per_class
    return table[table["dataset"] == dataset] if not table.empty else table


def render_markdown_tables(s: Summary, level: int = 2, plot_keys: dict | None = None, per_class: bool = False) -> str:
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
            out.append(R.md_escape(" ".join([R.eval_caption(ab), *_cost_caption(s, ab)])) + "\n")
            out.append(R.render_markdown(ab))
            out.append("\n" + R.md_escape(R.footnote(ab, "bold")) + "\n")
        if not cost.empty:
            out.append(f"{h}# Cost{' (dry run only: no trained results)' if ab.empty else ''}\n")
            out.append(R.render_markdown(cost, cost=True))
            out.append(
                "\nMean over jobs that measured the model; Δ against the baseline 'none' of the same "
                "dataset, model and image size; best (lowest) value per model in bold. "
                + R.md_escape(" ".join(_cost_caption(s, cost)))
                + "\n"
            )
        if ab.empty and cost.empty:
            out.append("No usable results.\n")
        if per_class and not _per_class_of(s, sec.dataset).empty:
            out.append(PCR.render_markdown(_per_class_of(s, sec.dataset), level=level + 1))
        if per_class and not s.errors.empty and (s.errors["dataset"] == sec.dataset).any():
            out.append(E.render_markdown(s.errors[s.errors["dataset"] == sec.dataset], level=level + 1))
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
    for (dataset, model, _train_key), keys in sorted(plot_keys.items()):
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
            notes = " ".join([R.footnote(sec.ablation, "bold"), *_cost_caption(s, sec.ablation)])
            out += [R.render_latex(sec.ablation, sec.dataset, notes=notes), ""]
        if not sec.cost.empty:
            out += [R.render_latex(sec.cost, sec.dataset, cost=True, notes=" ".join(_cost_caption(s, sec.cost))), ""]
    return "\n".join(out)
