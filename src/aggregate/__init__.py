"""Aggregate a sweep's result.json files into ablation tables, plots and a report.

    from src.aggregate import aggregate
    summary = aggregate(["multirun/2025-01-01/12-00-00"])     # writes into that directory
    summary.ablation                                          # DataFrame, one row per variant

CLI: `python -m src.aggregate PATH... [--out DIR] [--quiet] [--no-plots] [--strict]`.
Only `src.results` is imported from the project: this never pulls in torch or ultralytics.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Summary", "aggregate", "t_ppf"]
_HOME = {"Summary": ".summary", "aggregate": ".pipeline", "t_ppf": ".stats"}


def __getattr__(name: str) -> Any:
    """Exports load on first use, so the Hydra callback (src.aggregate.hydra_callback), which
    every job process instantiates, does not import pandas into jobs that never aggregate."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name], __name__), name)
