"""The side-by-side cost figures (a sweep's costs.json, written by src/costs) onto the runs frame.

Each job gets its variant's latency, throughput, ONNX Runtime latency and inference memory under
the table's column names (src.results.schema.SIDE_BY_SIDE); the tables, Δ columns and plots read
them from there. Nothing else fills those columns: a sweep without costs.json shows none, and the
notes say so and how to measure them, instead of putting the jobs' own timings (taken on
different machines at different moments: diagnostics, `latency_ms_job` in runs.csv) side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from src.results import COMPLETED, DRY_RUN
from src.results import costs as C
from src.results.schema import JOB_DIR, REUSED_FROM, SIDE_BY_SIDE


@dataclass
class SideBySide:
    """What the cost passes of the aggregated sweeps gave: the devices and what to tell the reader."""

    devices: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def caption(self) -> str:
        """One line for the tables: where latency, throughput and memory were measured (or why not)."""
        if not self.devices:
            return ""
        where = " | ".join(self.devices)
        return f"Latency, throughput, ONNX CPU and memory measured side by side on {where} ({C.COSTS_FILE})."


def attach(runs: pd.DataFrame, paths: list[str]) -> tuple[pd.DataFrame, SideBySide]:
    """`runs` with the SIDE_BY_SIDE columns (and their spreads) from the costs.json of each sweep."""
    found = SideBySide()
    runs = runs.drop(columns=[c for c in (*SIDE_BY_SIDE, *C.SPREAD) if c in runs.columns])
    if runs.empty:
        return runs, found
    measured = runs["status"].isin([COMPLETED, DRY_RUN])
    sweeps = {Path(p).resolve() for p in paths if os.path.isdir(p)}
    sweeps |= {Path(str(d)).resolve().parent for d in runs.loc[measured, JOB_DIR].dropna()}
    figures: dict[Path, dict[str, Any]] = {}
    for sweep in sorted(sweeps):
        figures.update(_read(sweep, found))
    jobs = [Path(str(d)).resolve() for d in runs[JOB_DIR]]
    owners = runs[REUSED_FROM] if REUSED_FROM in runs.columns else pd.Series([None] * len(runs), index=runs.index)
    rows = [
        figures.get(j) or (figures.get(Path(str(o)).resolve()) if isinstance(o, str) else None)
        for j, o in zip(jobs, owners, strict=True)
    ]
    for key in (*SIDE_BY_SIDE, *C.SPREAD):
        runs[key] = pd.to_numeric(
            pd.Series([r.get(key) if r else None for r in rows], index=runs.index), errors="coerce"
        )
    missing = measured & pd.Series([r is None for r in rows], index=runs.index)
    if missing.any():
        without = sorted({str(Path(str(d)).parent) for d in runs.loc[missing, JOB_DIR]})
        found.notes.append(
            f"{int(missing.sum())} job(s) have no side-by-side cost figures, so their latency, throughput, ONNX "
            f"and memory cells are empty (the jobs' own timings, taken apart, are diagnostics only: "
            f"latency_ms_job in runs.csv); to measure them: " + "; ".join(f"python -m src.costs {d}" for d in without)
        )
    return runs, found


def _read(sweep: Path, found: SideBySide) -> dict[Path, dict[str, Any]]:
    """Job dir -> its variant's figures, from `sweep`'s costs.json (none: {})."""
    try:
        costs = C.read_costs(sweep)
    except ValueError as exc:
        found.notes.append(f"side-by-side cost figures not used: {exc}")
        return {}
    if costs is None:
        return {}
    found.files.append(C.costs_path(sweep))
    if costs.get(C.PASS_ERROR):
        found.notes.append(f"the cost pass of {sweep} did not run: {costs[C.PASS_ERROR]}")
    for skipped in costs.get(C.SKIPPED) or []:
        found.notes.append(f"cost pass left out {skipped.get(C.JOB)}: {skipped.get(C.REASON)}")
    if costs.get(C.VARIANTS) and costs.get(C.DEVICE) not in found.devices:
        found.devices.append(str(costs.get(C.DEVICE)))
    out: dict[Path, dict[str, Any]] = {}
    for variant in costs.get(C.VARIANTS) or []:
        values = {k: variant.get(k) for k in (*SIDE_BY_SIDE, *C.SPREAD)}
        for job in variant.get(C.JOBS) or []:
            out[(sweep / job).resolve()] = values
    return out
