"""`Summary`: what one aggregation found and wrote; the pipeline fills it, the renderers read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from src.results import COMPLETED, CORRUPT, DRY_RUN, FAILED, MISSING

from .factorial import Factorial
from .side_by_side import SideBySide


@dataclass
class Summary:
    """What one aggregation found and wrote."""

    runs: pd.DataFrame  # one row per job (every field, metrics flattened)
    ablation: pd.DataFrame  # one row per (dataset, model, train_key, pos, attn)
    cost: pd.DataFrame  # params/GFLOPs/latency per variant, Δ vs baseline
    problems: pd.DataFrame  # failed / interrupted / missing / corrupt jobs
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per (variant, class)
    n_jobs: int = 0
    n_completed: int = 0
    n_failed: int = 0
    n_missing: int = 0
    n_interrupted: int = 0
    n_corrupt: int = 0
    n_dry_run: int = 0
    n_duplicates: int = 0  # runs merged into another (baseline at several positions)
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    terminal: str = ""  # the printed table
    paths: list[str] = field(default_factory=list)  # what was aggregated
    plot_keys: dict[tuple, list[str]] = field(default_factory=dict)  # per block, its figures in `files`
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)  # errors.csv (src.compare), one row per variant
    closing: str = ""  # the last line printed: an adaptive sweep's trainings against the fixed design's
    side_by_side: SideBySide = field(default_factory=SideBySide)  # the cost pass's devices (captions)
    factorials: list[tuple[str, Factorial]] = field(default_factory=list)  # per study block: title, tables

    @property
    def n_problems(self) -> int:
        return self.n_failed + self.n_missing + self.n_interrupted + self.n_corrupt

    @property
    def ok(self) -> bool:
        return self.n_jobs > 0 and self.n_problems == 0

    def counts(self) -> dict[str, int]:
        return {
            k: getattr(self, f"n_{k}")
            for k in ("jobs", COMPLETED, FAILED, MISSING, "interrupted", CORRUPT, DRY_RUN, "duplicates")
        }
