"""Test-set uncertainty for the ablation table: each variant's paired bootstrap Δ against its
baseline at the same seed, from the two jobs' `matches.npz`, cached so a re-aggregation is free.

The bootstrap resamples evaluation images (the same images for both models in each replicate,
see `src.metrics.paired_replicates`); it measures how much Δ depends on which images were
evaluated, not how it varies with the training seed. The replicates themselves are kept (not only
a CI): the table averages them over seeds and combines them with the seed level.
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
from src.files import atomic_write
from src.results.schema import JOB_DIR, MATCHES_FILE_KEY

CACHE_DIR = ".cache/bootstrap"  # under the aggregation's output dir


def matches_path(run: Any) -> Path | None:
    """A run's matches.npz (a row of the runs frame), None when it kept none."""
    name, job_dir = getattr(run, MATCHES_FILE_KEY, None), getattr(run, JOB_DIR, None)
    if not isinstance(name, str) or not isinstance(job_dir, str):
        return None
    path = Path(name) if os.path.isabs(name) else Path(job_dir) / name
    return path if path.is_file() else None


def paired_replicates(
    pairs: pd.DataFrame, n_resamples: int, seed: int = 0, cache_dir: Path | None = None
) -> pd.DataFrame:
    """For each row of `pairs` (columns `matches`, `matches_base`: paths), the paired image bootstrap
    of Δ mAP50-95: `boot_point` (Δ on all images), `boot_reps` (the replicate Δs, an array; None
    where either file is missing or unreadable) and `boot_images` (n_images, which replicates of
    different seeds must share to be averaged)."""
    out = [
        _cached_replicates(a, b, n_resamples, seed, cache_dir) if a is not None and b is not None else None
        for a, b in zip(pairs["matches_base"], pairs["matches"], strict=True)
    ]
    return pairs.assign(
        boot_point=[o[0] if o else np.nan for o in out],
        boot_reps=[o[1] if o else None for o in out],
        boot_images=[o[2] if o else -1 for o in out],
    )


def _cached_replicates(
    base: Path, variant: Path, n_resamples: int, seed: int, cache_dir: Path | None
) -> tuple[float, np.ndarray, int] | None:
    key = hashlib.sha256(
        json.dumps(["replicates", _fingerprint(base), _fingerprint(variant), n_resamples, seed]).encode()
    )
    cached = Path(cache_dir) / f"{key.hexdigest()[:24]}.npy" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            row = np.load(cached)  # [point, n_images, replicate Δs...]
            return float(row[0]), row[2:], int(row[1])
        except (OSError, ValueError):
            pass
    try:
        a, b = metrics.load_matches(base), metrics.load_matches(variant)
        point, reps = metrics.paired_replicates(a, b, n_resamples=n_resamples, seed=seed)
    except (OSError, ValueError):  # unreadable, or not the same validation images: no test-set CI
        return None
    if cached is not None:
        atomic_write(cached, lambda fh: np.save(fh, np.r_[point[0], a.n_images, reps[:, 0]]), binary=True)
    return float(point[0]), reps[:, 0], int(a.n_images)


def _fingerprint(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
