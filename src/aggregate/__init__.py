"""Aggregate a sweep's result.json files into ablation tables, plots and a report.

    from src.aggregate import aggregate
    summary = aggregate(["multirun/2025-01-01/12-00-00"])     # writes into that directory
    summary.ablation                                          # DataFrame, one row per variant

CLI: `python -m src.aggregate PATH... [--out DIR] [--quiet] [--no-plots] [--strict]`.
Only `src.results` is imported from the project: this never pulls in torch or ultralytics.
"""
from __future__ import annotations

from .report import Summary, aggregate
from .stats import t_ppf

__all__ = ["Summary", "aggregate", "t_ppf"]
