"""`aggregate()`: collect -> tables -> files (csv, md, tex, plots, report.md).

Used by the CLI (`python -m src.aggregate`) and the Hydra callback. Never imports training code.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from src.results import COMPLETED, DRY_RUN, FAILED, RUNNING

from . import tables as T
from .collect import CORRUPT, MISSING, PROBLEM_STATUSES, collect

PROBLEM_LABEL = {FAILED: "FAILED", RUNNING: "INTERRUPTED", MISSING: "MISSING", CORRUPT: "CORRUPT"}


@dataclass
class Summary:
    """What one aggregation found and wrote."""
    runs: pd.DataFrame                      # one row per job (every field, metrics flattened)
    ablation: pd.DataFrame                  # one row per (dataset, model, train_key, pos, attn)
    cost: pd.DataFrame                      # params/GFLOPs/latency per variant, Δ vs baseline
    problems: pd.DataFrame                  # failed / interrupted / missing / corrupt jobs
    n_jobs: int = 0
    n_completed: int = 0
    n_failed: int = 0
    n_missing: int = 0
    n_interrupted: int = 0
    n_corrupt: int = 0
    n_dry_run: int = 0
    n_duplicates: int = 0                   # runs merged into another (baseline at several positions)
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    terminal: str = ""                      # the printed table

    @property
    def n_problems(self) -> int:
        return self.n_failed + self.n_missing + self.n_interrupted + self.n_corrupt

    @property
    def ok(self) -> bool:
        return self.n_jobs > 0 and self.n_problems == 0

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, f"n_{k}") for k in
                ("jobs", "completed", "failed", "missing", "interrupted", "corrupt", "dry_run", "duplicates")}


# ================================================================================ entry point
def aggregate(paths: Iterable[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike | None = None,
              *, plots: bool = True, curves: bool = True, write: bool = True) -> Summary:
    """Aggregate every result.json below `paths` and write the tables, plots and report.

    `out_dir` defaults to the first path when it is a directory; with no usable directory nothing
    is written (the Summary still holds the tables).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if out_dir is None and paths and os.path.isdir(paths[0]):
        out_dir = paths[0]
    out = Path(out_dir) if out_dir is not None else None

    collected = collect(paths)
    runs = collected.runs
    ablation, n_dupes = T.build_ablation(runs, collected.metric_columns)
    cost = T.build_cost(runs)
    problems = _problems(runs)
    status = runs["status"] if not runs.empty else pd.Series(dtype=object)
    summary = Summary(runs=runs, ablation=ablation, cost=cost, problems=problems, n_jobs=len(runs),
                      n_completed=int((status == COMPLETED).sum()), n_failed=int((status == FAILED).sum()),
                      n_missing=int((status == MISSING).sum()), n_interrupted=int((status == RUNNING).sum()),
                      n_corrupt=int((status == CORRUPT).sum()), n_dry_run=int((status == DRY_RUN).sum()),
                      n_duplicates=n_dupes, out_dir=out)
    for p in collected.unmatched:
        summary.notes.append(f"{p}: no such file or directory (or the glob matched nothing)")
    if not len(runs):
        summary.notes.append(f"no result.json and no Hydra job dir found under: {', '.join(paths)}")
    if n_dupes:
        summary.notes.append(f"{n_dupes} duplicate run(s) merged (the baseline of the same seed at several "
                             f"positions, or re-runs); the original training / newest result was kept")

    plot_keys: dict[tuple, list[str]] = {}
    if write and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        summary.files.update(_write_tables(summary, out))
        if plots:
            from .plots import plot_all
            done, _ = T.dedupe(T.prepare(runs[runs["status"] == COMPLETED])) if len(runs) else (runs, 0)
            pfiles, pnotes, plot_keys = plot_all(ablation, done, out / "plots", curves=curves)
            summary.files.update(pfiles)
            summary.notes.extend(pnotes)
    summary.terminal = render_terminal(summary)
    if write and out is not None:
        path = out / "report.md"
        path.write_text(render_report(summary, paths, plot_keys))
        summary.files["report.md"] = path
    return summary


def _problems(runs: pd.DataFrame) -> pd.DataFrame:
    cols = ["status", "dataset", "model", "pos", "attn", "seed", "error", "job_dir"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    p = runs.loc[runs["status"].isin(PROBLEM_STATUSES), cols].copy()
    errors = []
    for status, err in zip(p["status"], p["error"]):
        err = err if isinstance(err, str) and err.strip() else ""
        if status == RUNNING:
            err = "interrupted (status still 'running')" + (f": {err}" if err else "")
        elif status == FAILED and not err:
            err = "failed (no error recorded)"
        errors.append(err)
    p["error"] = errors
    return p.reset_index(drop=True)


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


# ================================================================================ files
def _write_tables(s: Summary, out: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    ab = s.ablation.copy()
    csv_ab = ab.drop(columns=[c for c in ("is_baseline",) if c in ab.columns])
    files["ablation.csv"] = out / "ablation.csv"
    csv_ab.to_csv(files["ablation.csv"], index=False)
    files["runs.csv"] = out / "runs.csv"
    s.runs.to_csv(files["runs.csv"], index=False)
    if not s.cost.empty:
        files["cost.csv"] = out / "cost.csv"
        s.cost.drop(columns=["is_baseline"], errors="ignore").to_csv(files["cost.csv"], index=False)
    if not s.problems.empty:
        files["problems.csv"] = out / "problems.csv"
        s.problems.to_csv(files["problems.csv"], index=False)
    files["ablation.md"] = out / "ablation.md"
    files["ablation.md"].write_text(render_markdown_tables(s))
    files["ablation.tex"] = out / "ablation.tex"
    files["ablation.tex"].write_text(render_latex_tables(s))
    return files


def _datasets(s: Summary) -> list[str]:
    names = set(s.ablation["dataset"].dropna())
    if not s.cost.empty:
        names |= set(s.cost["dataset"].dropna())
    if not s.problems.empty:
        names |= set(s.problems["dataset"].dropna())
    return sorted(str(n) for n in names)


def _ds_problems(s: Summary, dataset: str | None) -> pd.DataFrame:
    if s.problems.empty:
        return s.problems
    if dataset is None:
        return s.problems[s.problems["dataset"].isna()]
    return s.problems[s.problems["dataset"] == dataset]


def _has_metrics(s: Summary, dataset: str) -> bool:
    return not s.ablation.empty and (s.ablation["dataset"] == dataset).any()


def _ds_cost(s: Summary, dataset: str) -> pd.DataFrame:
    return s.cost[s.cost["dataset"] == dataset] if not s.cost.empty else s.cost


def render_terminal(s: Summary) -> str:
    out: list[str] = []
    counts = ", ".join(f"{v} {k.replace('_', '-')}" for k, v in s.counts().items() if v and k not in ("jobs", "duplicates"))
    out.append(f"Aggregated {s.n_jobs} job(s): {counts or 'nothing found'}")
    for ds in _datasets(s):
        ab = s.ablation[s.ablation["dataset"] == ds] if not s.ablation.empty else s.ablation
        out.append("")
        if not ab.empty:
            out.append(f"== {ds}{_one_model(ab)}: ablation (mAP in %, mean±std over seeds) ==")
            out.append(T.render_terminal(ab))
            out.append(_wrap(T.footnote(ab, "*"), 118))
        else:
            cost = _ds_cost(s, ds)
            if not cost.empty:
                out.append(f"== {ds}{_one_model(cost)}: cost only (no trained results) ==")
                out.append(T.render_terminal(cost, cost=True))
            else:
                out.append(f"== {ds}: no usable results ==")
        probs = _ds_problems(s, ds)
        if not probs.empty:
            out.append(f"-- {len(probs)} job(s) without results --")
            out.extend(problem_line(r) for r in probs.to_dict("records"))
    orphans = _ds_problems(s, None)
    if not orphans.empty:
        out += ["", f"-- {len(orphans)} unidentified job(s) without results --"]
        out.extend(problem_line(r) for r in orphans.to_dict("records"))
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


def render_markdown_tables(s: Summary, level: int = 2, plot_keys: dict | None = None) -> str:
    h = "#" * level
    out: list[str] = []
    for ds in _datasets(s):
        ab = s.ablation[s.ablation["dataset"] == ds] if not s.ablation.empty else s.ablation
        cost = _ds_cost(s, ds)
        out.append(f"{h} {T._md_escape(ds)}\n")
        if not ab.empty:
            out.append(T.render_markdown(ab))
            out.append("\n" + T._md_escape(T.footnote(ab, "bold")) + "\n")
        if not cost.empty:
            out.append(f"{h}# Cost{' (dry run only: no trained results)' if ab.empty else ''}\n")
            out.append(T.render_markdown(cost, cost=True))
            out.append("\nMean over jobs that measured the model; Δ against the baseline 'none' of the same "
                       "dataset, model and image size; best (lowest) value per model in bold.\n")
        if ab.empty and cost.empty:
            out.append("No usable results.\n")
        if plot_keys is not None:
            out.append(_md_plots(s, ds, plot_keys, h + "#"))
        probs = _ds_problems(s, ds)
        if not probs.empty:
            out.append(f"{h}# Jobs without results ({len(probs)})\n")
            out.extend(f"- `{problem_line(r, 300)}`" for r in probs.to_dict("records"))
            out.append("")
    orphans = _ds_problems(s, None)
    if not orphans.empty:
        out.append(f"{h} Unidentified jobs without results ({len(orphans)})\n")
        out.extend(f"- `{problem_line(r, 300)}`" for r in orphans.to_dict("records"))
        out.append("")
    if not out:
        out.append("No results found.\n")
    return "\n".join(out).rstrip() + "\n"


def _md_plots(s: Summary, ds: str, plot_keys: dict, h: str = "####") -> str:
    lines = []
    for (dataset, model, train_key), keys in sorted(plot_keys.items()):
        if dataset != ds or not keys:
            continue
        lines.append(f"{h} Plots: {T._md_escape(model)}\n")
        for k in keys:
            rel = os.path.relpath(s.files[k], s.out_dir) if s.out_dir else str(s.files[k])
            lines.append(f"![{k}]({Path(rel).as_posix()})\n")
    return "\n".join(lines)


def render_latex_tables(s: Summary) -> str:
    out = ["% Generated by `python -m src.aggregate`. Needs \\usepackage{booktabs}.", ""]
    for ds in _datasets(s):
        ab = s.ablation[s.ablation["dataset"] == ds] if not s.ablation.empty else s.ablation
        if not ab.empty:
            out += [T.render_latex(ab, ds, notes=T.footnote(ab, "bold")), ""]
        cost = _ds_cost(s, ds)
        if not cost.empty:
            out += [T.render_latex(cost, ds, cost=True), ""]
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
             f"Tables: `ablation.md`, `ablation.csv`, `ablation.tex`; one row per job in `runs.csv`._\n")
    findings = _findings(s)
    body = render_markdown_tables(s, level=3, plot_keys=plot_keys or {})
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
    for (ds, model, _), blk in ab.groupby(T.BLOCK, sort=True):
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
                f"{len(up)} of {len(var)} variants significantly better, {len(down)} significantly worse.")
        lines.append(text)
    return "\n".join(lines) + "\n"
