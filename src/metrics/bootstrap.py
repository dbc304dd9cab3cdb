"""Image bootstrap of mAP from one validation's matches: resample the validation images with
replacement and recompute mAP50-95 / mAP50 (engine.py), nothing re-evaluated.

It measures how much the score depends on which images happen to be in the validation set; it
says nothing about training-seed variation. `bootstrap_ci` gives one run's CI (the job's
`metrics_ci`), `paired_bootstrap_delta` the CI of Δ between two runs scored on the same resamples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .engine import Plan, map_from_matches
from .matches import Matches, as_matches

DEFAULT_MAX_BYTES = 64 * 2**20  # working memory of one bootstrap chunk (small chunks stay in cache)


def resample_counts(n_images: int, n_resamples: int, seed: int):
    """Image multiplicities of each replicate, one (N,) row at a time: N draws with replacement.

    Drawn row by row from one generator, so the replicates do not depend on the chunk size and
    two jobs bootstrapped with the same seed and n_images get the same resampled images."""
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield np.bincount(rng.integers(0, n_images, n_images), minlength=n_images)


def bootstrap_replicates(
    m: Matches | Mapping[str, Any], n_resamples: int = 1000, seed: int = 0, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """(n_resamples, 2) array of (mAP50-95, mAP50) over image resamples, computed in chunks of
    replicates sized to `max_bytes` (numpy over the replicates of a chunk; no loop over images)."""
    return _replicates(Plan(as_matches(m)), n_resamples, seed, max_bytes)


def _replicates(plan: Plan, n_resamples: int, seed: int, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    chunk = int(max(1, min(n_resamples, max_bytes // max(plan.bytes_per_row(), 1))))
    out = np.empty((n_resamples, 2))
    gen = resample_counts(plan.n_images, n_resamples, seed)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        counts = np.stack([next(gen) for _ in range(rows)])
        out[start : start + rows] = plan.evaluate(counts)
    return out


def _interval(values: np.ndarray, level: float) -> list[float]:
    lo, hi = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return [float(lo), float(hi)]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_ci(
    m: Matches | Mapping[str, Any], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Any] | None:
    """Percentile bootstrap CI of mAP50-95 and mAP50 over the validation images; None if n_resamples == 0.

    Method: draw n_images images with replacement, recompute mAP on that set (from the stored
    matches, nothing re-evaluated), repeat; the CI is the (1-level)/2 and (1+level)/2 quantiles.
    Test-set uncertainty only: the same trained model, other images from the same distribution."""
    if not n_resamples:
        return None
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    _check_level(level)
    plan = Plan(as_matches(m))
    reps = _replicates(plan, n_resamples, seed)
    point = plan.evaluate(np.ones((1, plan.n_images), np.int64))[0]
    return {
        "map50_95": _interval(reps[:, 0], level),
        "map50": _interval(reps[:, 1], level),
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "level": float(level),
        "method": "percentile bootstrap over validation images",
        "point": {"map50_95": float(point[0]), "map50": float(point[1])},
    }


def _same_images(a: Matches, b: Matches) -> None:
    if a.n_images != b.n_images:
        raise ValueError(f"paired bootstrap needs the same validation images: n_images {a.n_images} vs {b.n_images}")
    n_cls = int(max(a.gt_cls.max(initial=0), b.gt_cls.max(initial=0))) + 1
    ka = np.sort(a.gt_image * n_cls + a.gt_cls)
    kb = np.sort(b.gt_image * n_cls + b.gt_cls)
    if ka.shape != kb.shape or not np.array_equal(ka, kb):
        raise ValueError(
            "paired bootstrap needs the same validation images: the ground-truth boxes per "
            "image and class differ between the two jobs"
        )


def paired_replicates(
    a: Matches | Mapping[str, Any], b: Matches | Mapping[str, Any], n_resamples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(point, replicates): Δ = mAP(b) - mAP(a) on all images, (2,), and on each image resample,
    (n_resamples, 2), columns (mAP50-95, mAP50). Both models are scored on the same resamples, and
    any two pairs bootstrapped with the same seed over the same n_images share them too (the
    aggregator averages the replicates of a variant's seeds)."""
    a, b = as_matches(a, "a"), as_matches(b, "b")
    _same_images(a, b)
    d = bootstrap_replicates(b, n_resamples, seed) - bootstrap_replicates(a, n_resamples, seed)
    return np.subtract(map_from_matches(b), map_from_matches(a)), d


def paired_bootstrap_delta(
    a: Matches | Mapping[str, Any],
    b: Matches | Mapping[str, Any],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any] | None:
    """Percentile CI of Δ = mAP(b) - mAP(a) for two models validated on the same images; None if n_resamples == 0.

    Paired: each replicate draws one set of images and scores both models on it, so what the two
    share (easy and hard images) cancels in Δ. `delta` is the point estimate on the full set,
    `replicate_mean` the mean of the replicate deltas (their difference is the bootstrap's bias)."""
    if not n_resamples:
        return None
    _check_level(level)
    point, d = paired_replicates(a, b, n_resamples, seed)
    return {
        "map50_95": {
            "delta": float(point[0]),
            "ci": _interval(d[:, 0], level),
            "replicate_mean": float(d[:, 0].mean()),
        },
        "map50": {"delta": float(point[1]), "ci": _interval(d[:, 1], level), "replicate_mean": float(d[:, 1].mean())},
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "level": float(level),
        "paired": True,
    }
