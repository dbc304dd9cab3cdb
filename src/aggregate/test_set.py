"""Test-set uncertainty for the ablation table: each variant's paired bootstrap Δ against its
baseline at the same seed, from the two jobs' `matches.npz`, cached so a re-aggregation is free.

The bootstrap resamples validation images (the same images for both models in each replicate,
see `src.metrics.paired_bootstrap_delta`); it measures how much Δ depends on which images are in
the validation set, not how it varies with the training seed.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src import metrics
from src.files import atomic_write_json
from src.results.schema import JOB_DIR, MATCHES_FILE_KEY

CACHE_DIR = ".cache/bootstrap"      # under the aggregation's output dir


def matches_path(run: Any) -> Path | None:
    """A run's matches.npz (a row of the runs frame), None when it kept none."""
    name, job_dir = getattr(run, MATCHES_FILE_KEY, None), getattr(run, JOB_DIR, None)
    if not isinstance(name, str) or not isinstance(job_dir, str):
        return None
    path = Path(name) if os.path.isabs(name) else Path(job_dir) / name
    return path if path.is_file() else None


def paired_deltas(pairs: pd.DataFrame, n_resamples: int, seed: int = 0,
                  cache_dir: Path | None = None) -> pd.DataFrame:
    """For each row of `pairs` (columns `matches`, `matches_base`: paths), the 95% percentile CI of
    the paired bootstrap Δ mAP50-95 (`boot_low`, `boot_high`; NaN where either file is missing)."""
    lows, highs = [], []
    for a, b in zip(pairs["matches_base"], pairs["matches"]):
        ci = _cached_delta(a, b, n_resamples, seed, cache_dir) if a is not None and b is not None else None
        lows.append(ci[0] if ci else np.nan)
        highs.append(ci[1] if ci else np.nan)
    return pairs.assign(boot_low=lows, boot_high=highs)


def _cached_delta(base: Path, variant: Path, n_resamples: int, seed: int,
                  cache_dir: Path | None) -> list[float] | None:
    key = hashlib.sha256(json.dumps([_fingerprint(base), _fingerprint(variant), n_resamples, seed]).encode())
    cached = Path(cache_dir) / f"{key.hexdigest()[:24]}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return json.loads(cached.read_text())["ci"]
        except (OSError, ValueError, KeyError):
            pass
    try:
        out = metrics.paired_bootstrap_delta(metrics.load_matches(base), metrics.load_matches(variant),
                                             n_resamples=n_resamples, seed=seed)
    except (OSError, ValueError):  # unreadable, or not the same validation images: no test-set CI
        return None
    ci = out["map50_95"]["ci"] if out else None
    if cached is not None and ci is not None:
        atomic_write_json(cached, {"ci": ci, "base": str(base), "variant": str(variant)})
    return ci


def _fingerprint(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
