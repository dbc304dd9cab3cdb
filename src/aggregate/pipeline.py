"""`aggregate()`: collect -> tables -> files (csv, md, tex, plots, report.md), in that order.

Used by the CLI (`python -m src.aggregate`) and the Hydra callback. Never imports training code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from src.results import COMPLETED, DRY_RUN, FAILED, RUNNING
from src.results.schema import JOB_DIR

from . import factorial as F
from . import factorial_render as FR
from . import per_class as PC
from . import per_class_render as PCR
from . import tables as T
from .adaptive import add_columns, closing_line, read_record
from .collect import CORRUPT, MISSING, PROBLEM_STATUSES, collect
from .errors import read_errors
from .report import render_report
from .sections import render_latex_tables, render_markdown_tables, render_terminal
from .side_by_side import attach as attach_side_by_side
from .summary import Summary
from .test_set import CACHE_DIR

DEFAULT_BOOTSTRAP = 1000  # image resamples per paired test-set CI (conf: aggregate.bootstrap)


# ================================================================================ entry point
def aggregate(
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    plots: bool = True,
    curves: bool = True,
    write: bool = True,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    min_effect: float | None = None,
    rope: float | None = None,
) -> Summary:
    """Aggregate every result.json below `paths` and write the tables, plots and report.

    `out_dir` defaults to the first path when it is a directory; with no usable directory, or no
    result found, nothing is written (the Summary still holds the tables). `bootstrap`: image
    resamples of each variant's paired test-set CI (0: off); `rope` (pp, default 0.5): the region of
    practical equivalence of the verdict; `min_effect` (pp, default: the rope): the Δ seeds-needed aims at.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if out_dir is None and paths and os.path.isdir(paths[0]):
        out_dir = paths[0]
    out = Path(out_dir) if out_dir is not None else None

    collected = collect(paths)
    runs, side_by_side = attach_side_by_side(collected.runs, paths)
    ablation, n_dupes = T.build_ablation(
        runs,
        collected.metric_columns,
        bootstrap=bootstrap,
        cache_dir=out / CACHE_DIR if out is not None else None,
        min_effect=min_effect / 100 if min_effect else None,
        rope=T.DEFAULT_ROPE if rope is None else rope / 100,
    )
    record = read_record(out if out is not None else None)
    ablation = add_columns(ablation, record)
    cost = T.build_cost(runs)
    problems = _problems(runs)
    done = T.dedupe(T.prepare(runs[runs["status"] == COMPLETED]))[0] if len(runs) else runs
    status = runs["status"] if not runs.empty else pd.Series(dtype=object)
    summary = Summary(
        runs=runs,
        ablation=ablation,
        cost=cost,
        problems=problems,
        per_class=PC.build_per_class(done),
        n_jobs=len(runs),
        paths=paths,
        n_completed=int((status == COMPLETED).sum()),
        n_failed=int((status == FAILED).sum()),
        n_missing=int((status == MISSING).sum()),
        n_interrupted=int((status == RUNNING).sum()),
        n_corrupt=int((status == CORRUPT).sum()),
        n_dry_run=int((status == DRY_RUN).sum()),
        n_duplicates=n_dupes,
        out_dir=out,
        closing=closing_line(record),
        side_by_side=side_by_side,
    )
    summary.notes.extend(side_by_side.notes)
    summary.factorials = [(title, F.build_factorial(r, c, d)) for title, c, d, r in F.studies(done)]
    for p in collected.unmatched:
        summary.notes.append(f"{p}: no such file or directory (or the glob matched nothing)")
    if not len(runs):
        summary.notes.append(f"no result.json and no Hydra job dir found under: {', '.join(paths)}")
    if n_dupes:
        summary.notes.append(
            f"{n_dupes} duplicate run(s) merged (the baseline of the same seed at several "
            f"positions, or re-runs); the original training / newest result was kept"
        )

    write = write and out is not None and len(runs) > 0  # no results: nothing to write, not even empty tables
    if write:
        out.mkdir(parents=True, exist_ok=True)
        summary.files.update(_write_tables(summary, out))
        if plots:
            from .plots import plot_all

            pfiles, pnotes, summary.plot_keys = plot_all(
                ablation, done, out / "plots", curves=curves, latency_on=", ".join(side_by_side.devices)
            )
            summary.files.update(pfiles)
            summary.notes.extend(pnotes)
    if write:
        write_report(summary, images=plots)
    summary.terminal = render_terminal(summary)  # after the report: its "Wrote N file(s)" counts report.md
    return summary


def write_report(s: Summary, images: bool = True) -> Path:
    """report.md of `s` in its out_dir; with `images`, the heatmap and detection figures that
    src.visualize drew into plots/ are added to the figures first (so calling this again after
    drawing them embeds them)."""
    if images:
        from .plots import image_figures

        for key, files in image_figures(s.ablation, s.out_dir / "plots").items():
            s.files.update(files)
            keys = s.plot_keys.setdefault(key, [])
            keys.extend(k for k in files if k not in keys)
    s.errors = read_errors(s.out_dir)  # src.compare writes it after the first report
    path = s.out_dir / "report.md"
    path.write_text(render_report(s, s.paths, s.plot_keys))
    s.files["report.md"] = path
    return path


# ================================================================================ tools that add to a sweep
def sweep_problem(path: str, what: str) -> str | None:
    """Why a tool that adds files to a sweep (src.compare, src.visualize) cannot work on `path`, as
    the message its CLI prints before exiting 2; None when it can. Checked before anything writes
    caches into the directory."""
    from src.files import missing_path
    from src.results import RESULT_FILE

    problem = missing_path([path]) or (None if Path(path).is_dir() else f"error: not a directory: {path}")
    if problem is None and not any(Path(path).rglob(RESULT_FILE)):
        problem = f"no {what}: no {RESULT_FILE} under {path}"
    return problem


def finish_tool(sweep: Path, files: dict[str, Path], notes: list[str], nothing: str) -> int:
    """The end of such a tool's CLI: its notes, report.md rebuilt to show the new files, their
    paths; exit status 2 with `nothing` when it wrote none."""
    import sys

    for note in notes:
        print(f"note: {note}")
    if not files:
        print(nothing, file=sys.stderr)
        return 2
    aggregate([str(sweep)], str(sweep))
    for path in files.values():
        print(path)
    return 0


def _problems(runs: pd.DataFrame) -> pd.DataFrame:
    cols = ["status", "dataset", "model", "pos", "attn", "seed", "error", JOB_DIR]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    p = runs.loc[runs["status"].isin(PROBLEM_STATUSES), cols].copy()
    errors = []
    for status, err in zip(p["status"], p["error"], strict=False):
        err = err if isinstance(err, str) and err.strip() else ""
        if status == RUNNING and "still running" not in err:  # live jobs say so themselves (collect)
            err = "interrupted (status still 'running')" + (f": {err}" if err else "")
        elif status == FAILED and not err:
            err = "failed (no error recorded)"
        errors.append(err)
    p["error"] = errors
    return p.reset_index(drop=True)


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
    for k, (title, fac) in enumerate(s.factorials):  # a second study block writes into its own folder
        where = out if k == 0 else out / f"factorial_{k + 1}"
        FR.write_factorial(fac, where, caption=f"Factorial ablation: {title}")
        files.update({str(Path(where.name if k else "") / name): where / name for name in FR.FILES})
    files["ablation.md"] = out / "ablation.md"
    files["ablation.md"].write_text(render_markdown_tables(s))
    files["ablation.tex"] = out / "ablation.tex"
    files["ablation.tex"].write_text(render_latex_tables(s))
    if not s.per_class.empty:
        files["per_class.csv"] = out / "per_class.csv"
        PC.csv_frame(s.per_class).to_csv(files["per_class.csv"], index=False)
        files["per_class.md"] = out / "per_class.md"
        files["per_class.md"].write_text(PCR.render_markdown(s.per_class))
        files["per_class.tex"] = out / "per_class.tex"
        files["per_class.tex"].write_text(PCR.render_latex(s.per_class))
    return files
