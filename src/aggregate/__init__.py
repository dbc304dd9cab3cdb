"""Aggregate a sweep's result.json files into ablation tables, plots and a report.

    from src.aggregate import aggregate
    summary = aggregate(["multirun/2025-01-01/12-00-00"])     # writes into that directory
    summary.ablation                                          # DataFrame, one row per variant

CLI: `python -m src.aggregate PATH... [--out DIR] [--quiet] [--no-plots] [--strict]`.
The flow is collect -> tables (build) -> columns/render (text, md, LaTeX) -> plots -> report.
From the project it imports only torch-free modules: the result contract (src.results,
src.files), the liveness of running jobs (src.sweep.state), mAP from matches (src.metrics),
ultralytics' results.csv names (src.ultralytics_glue.names, in job_curves.py only) and the
output locations (src.runtime); the Hydra callback alone also reaches W&B (src.tracking) and,
after the table, src.visualize's figures. Importing it never pulls in torch or ultralytics.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Summary", "aggregate", "t_ppf"]
_HOME = {"Summary": ".summary", "aggregate": ".pipeline", "t_ppf": ".stats"}


def __getattr__(name: str) -> Any:
    """Exports load on first use, so the end-of-sweep Hydra callback (src/sweep_end.py), which
    every job process instantiates, does not import pandas into jobs that never aggregate."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name], __name__), name)
