"""Uncertainty of the table's Δ: one interval over seeds and images, the verdict it supports, Holm's
correction across variants, and the seeds a study would need.

* `two_level_interval`: the table's main 95 % CI of the mean Δ over seeds and images, and
  `p_improve`, the probability it gives to Δ > 0.
* `verdict`: better / worse / equivalent / undecided against a region of practical equivalence.
* `holm`: Holm's step-down adjustment (statsmodels) over the variants compared with one baseline.
* `seeds_needed_many`: seeds for a two-sided paired t-test to detect a given Δ, power from scipy's
  noncentral t, vectorised over rows; `sd_interval` the chi-square CI of a sample sd.

The image bootstrap itself (mAP from matches, resampled) is src.metrics, shared with the job.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"
SEEDS, IMAGES, SEEDS_IMAGES = "seeds", "images", "seeds+images"  # what an interval covers


# ============================================================================ one interval
def two_level_interval(
    mean,
    seed_se,
    seed_dof,
    image_dev=None,
    level: float = 0.95,
    draws: int = 2000,
    seed: int = 0,
    *,
    seed_image_dev=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, p_improve) of the mean Δ over seeds and images, vectorised over leading axes.

    Each replicate adds a seed-level and an image-level deviation to the observed mean Δ:
    * seeds: se · T with T on a stratified grid of Student's t(seed_dof) quantiles: what resampling
      seeds approximates, exact for normal seed noise at any n (resampling 2 / 3 / 5 / 10 seeds, then
      images, by percentile covered 81 / 85 / 91 / 94 % in the calibration test's simulation);
      absent where se is NaN (one seed).
    * images: the part of the image noise that the seeds share. Var(mean Δ) = σ_seed²/n + σ_shared²
      + σ_own²/n, σ_own² being image noise each seed has alone. se² already estimates
      (σ_seed² + σ_own²)/n (own image noise spreads the per-seed Δs too), and the seed-averaged
      bootstrap deviation σ_shared² + σ_own²/n: adding it whole counts σ_own²/n twice (97-97.5 %
      coverage at 2 seeds, 96-97 % at 5 in the calibration test). Two seeds' deviations on the same
      image draws covary by σ_shared² alone, so `seed_image_dev` (..., k, B), each seed's replicate
      Δs minus its point Δ, gives the averaged deviation scaled to that variance
      (`shared_image_dev`). `image_dev` (..., B), an averaged deviation alone, is added whole (an
      upper bound); so is any deviation where there is no seed level. None or NaN: no image level.
      At 2 seeds the sum stays conservative where the seeds share the image noise (97.4 % if all):
      the fiducial (Behrens-Fisher) sum of a t(1) level and a well-known one (Welch's dof: 88-92 %).
    One seed gives the image bootstrap's percentiles, no image noise the seed level's t interval.
    """
    reps, defined = two_level_replicates(mean, seed_se, seed_dof, image_dev, draws, seed, seed_image_dev=seed_image_dev)
    lo, hi = percentiles(reps, level)
    p = (reps > 0).mean(-1)
    return np.where(defined, lo, np.nan), np.where(defined, hi, np.nan), np.where(defined, p, np.nan)


def two_level_replicates(
    mean, seed_se, seed_dof, image_dev=None, draws: int = 2000, seed: int = 0, *, seed_image_dev=None
) -> tuple[np.ndarray, np.ndarray]:
    """(replicates (..., B), defined (...)) of `two_level_interval`: its percentiles are the interval,
    its shares beyond ±rope the adaptive sweeper's claim p-values (`sequential.replicate_p_values`)."""
    mean = np.asarray(mean, float)
    se = np.broadcast_to(np.asarray(seed_se, float), mean.shape)
    dof = np.broadcast_to(np.asarray(seed_dof, float), mean.shape)
    has_seed = np.isfinite(se) & np.isfinite(dof) & (dof > 0)
    if seed_image_dev is not None:
        if image_dev is not None:
            raise ValueError("pass image_dev or seed_image_dev, not both")
        image_dev, shrink = shared_image_dev(seed_image_dev)
        image_dev = image_dev * np.where(has_seed, shrink, 1.0)[..., None]
    dev = None if image_dev is None else np.asarray(image_dev, float)
    has_images = np.zeros(mean.shape, bool) if dev is None else ~np.isnan(dev).all(-1)
    dev = np.zeros(mean.shape + (draws,)) if dev is None else np.where(np.isnan(dev), 0.0, dev)
    b = dev.shape[-1]
    grid = np.random.default_rng(seed).permutation((np.arange(b) + 0.5) / b)  # paired with image draws at random
    t = np.where(has_seed[..., None], stats.t.ppf(grid, np.where(has_seed, dof, 1.0)[..., None]), 0.0)
    reps = mean[..., None] + np.where(has_seed, se, 0.0)[..., None] * t + dev
    return reps, np.isfinite(mean) & (has_seed | has_images)


def shared_image_dev(seed_image_dev) -> tuple[np.ndarray, np.ndarray]:
    """(deviation averaged over seeds (..., B), shrink (...)) from per-seed bootstrap deviations
    (..., k, B) on the same image draws; seeds that are all NaN (no bootstrap) are left out.

    shrink = sqrt(clip(c / v, 0, 1)): v the variance of the averaged deviation over replicates, c the
    mean covariance between two different seeds' deviations (from k² v = Σ_j var_j + Σ_{j≠l} cov_jl),
    which estimates the shared image noise σ_shared² (c <= v always). The averaged deviation times
    shrink has variance c and keeps the bootstrap's shape. 1 where fewer than two seeds have one."""
    x = np.asarray(seed_image_dev, float)
    ok = ~np.isnan(x).all(-1)
    k = ok.sum(-1)
    x = np.where(ok[..., None], np.nan_to_num(x), 0.0)
    avg = x.sum(-2) / np.maximum(k, 1)[..., None]
    v = avg.var(-1)
    var_each = np.where(ok, x.var(-1), 0.0).sum(-1)
    pairs = np.maximum(k * (k - 1), 1)
    c = (k**2 * v - var_each) / pairs
    ratio = np.divide(c, v, out=np.ones_like(v), where=v > 0)
    shrink = np.where(k >= 2, np.sqrt(np.clip(ratio, 0.0, 1.0)), 1.0)
    return np.where((k >= 1)[..., None], avg, np.nan), shrink


def percentiles(reps, level: float = 0.95) -> np.ndarray:
    """The (1-level)/2 and (1+level)/2 percentiles along the last axis, Hazen's definition: the j-th
    of B sorted replicates sits at (j + 0.5) / B, where the stratified t grid puts it."""
    return np.quantile(reps, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=-1, method="hazen")


def verdict(low, high, rope: float) -> np.ndarray:
    """Per interval: `better` (all of it above +rope), `worse` (all below -rope), `equivalent`
    (all inside ±rope), `undecided` (else), "" where the interval is undefined."""
    lo, hi = np.asarray(low, float), np.asarray(high, float)
    with np.errstate(invalid="ignore"):
        out = np.select([lo > rope, hi < -rope, (lo >= -rope) & (hi <= rope)], [BETTER, WORSE, EQUIVALENT], UNDECIDED)
    return np.where(np.isfinite(lo) & np.isfinite(hi), out, "")


# ============================================================================ multiplicity
def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (statsmodels), in the input's order; NaN stays NaN and
    is not counted. statsmodels runs gc.collect() on every call (~160 ms beside a 10,000-run
    frame): the objects alive before the call are frozen out of that collection (0.2 ms), and one
    p-value, its own adjustment, skips the call."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if np.any((p[idx] < 0) | (p[idx] > 1)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN)")
    if idx.size == 1:
        out[idx] = p[idx]
    elif idx.size:
        from statsmodels.stats.multitest import multipletests

        gc.freeze()
        try:
            out[idx] = multipletests(p[idx], method="holm")[1]
        finally:
            gc.unfreeze()
    return out


# ============================================================================ seeds needed
def paired_t_power(n, effect, alpha=0.05) -> np.ndarray | float:
    """Power of the two-sided paired (one-sample) t-test with n pairs at standardised effect d:
    P(|T| > t_{1-alpha/2, n-1}), T ~ noncentral t(n-1, d sqrt(n)) (scipy), vectorised."""
    n = np.asarray(n, float)
    if np.any(n < 2):
        raise ValueError(f"a paired t-test needs n >= 2, got {n}")
    dof, ncp = n - 1.0, np.abs(np.asarray(effect, float)) * np.sqrt(n)
    crit = stats.t.isf(np.asarray(alpha, float) / 2.0, dof)
    wrong_side = np.nan_to_num(stats.nct.cdf(-crit, dof, ncp), nan=0.0)  # scipy: NaN where it underflows
    power = stats.nct.sf(crit, dof, ncp) + wrong_side
    return float(power) if power.ndim == 0 else power


def seeds_needed_many(effect, sd, alpha, power: float = 0.8, max_n: int = 1000, window: int = 14) -> np.ndarray:
    """Per row, the smallest n >= 2 at which a two-sided paired t-test at level `alpha` detects a true
    mean Δ `effect` with probability >= `power` when per-seed Δs have sd `sd`; NaN where it cannot
    be said (effect 0, sd 0 or not finite), inf beyond max_n.

    Vectorised: the normal approximation (a lower bound) starts a window of n evaluated at once;
    the few rows it does not bracket are searched one n at a time."""
    effect, sd, alpha = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, float)) for v in (effect, sd, alpha)))
    if not (np.all((alpha > 0) & (alpha < 1)) and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(effect) / sd
    out = np.full(d.shape, np.nan)
    ok = np.isfinite(d) & (d > 0) & (sd > 0)
    if not ok.any():
        return out
    dk, ak = d[ok], alpha[ok]
    got = np.full(dk.shape, math.inf)
    can = paired_t_power(max_n, dk, ak) >= power  # the rest: inf, not even max_n seeds
    dk, ak = dk[can], ak[can]
    z = (stats.norm.isf(ak / 2.0) + stats.norm.ppf(power)) / dk
    start = np.clip(np.ceil(z * z) - 1, 2, max_n)
    ns = np.minimum(start[:, None] + np.arange(window), max_n)
    reached = paired_t_power(ns, dk[:, None], ak[:, None]) >= power
    found = reached.any(1) & ~(reached[:, 0] & (start > 2))  # else the minimum may lie below the window
    n = np.where(found, ns[np.arange(len(ns)), reached.argmax(1)], np.nan)
    for i in np.flatnonzero(~found):
        n[i] = _search(dk[i], ak[i], power, max_n)
    got[can] = n
    out[ok] = got
    return out


def _search(d: float, alpha: float, power: float, max_n: int) -> float:
    """One row's n by bisection on the (increasing) power, for a row max_n seeds do reach."""
    lo, hi = 1, max_n  # power(lo) < target (n = 1: no test), power(hi) >= target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid >= 2 and paired_t_power(mid, d, alpha) >= power:
            hi = mid
        else:
            lo = mid
    return float(hi)


def seeds_needed(
    delta: float, sd: float, alpha: float = 0.05, power: float = 0.8, max_n: int = 1000
) -> int | float | None:
    """`seeds_needed_many` for one row: an int, math.inf beyond max_n, None where it cannot be said."""
    if delta is None or sd is None:
        return None
    n = seeds_needed_many(delta, sd, alpha, power, max_n)[0]
    return None if math.isnan(n) else (math.inf if math.isinf(n) else int(n))


def sd_interval(sd, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square CI of a normal sd from its sample sd over n values (n - 1 dof); NaN where n < 2."""
    sd, dof = np.asarray(sd, float), np.asarray(n, float) - 1.0
    valid = dof >= 1
    dof = np.where(valid, dof, 1.0)
    lo = sd * np.sqrt(dof / stats.chi2.isf((1.0 - level) / 2.0, dof))
    hi = sd * np.sqrt(dof / stats.chi2.ppf((1.0 - level) / 2.0, dof))
    return np.where(valid, lo, np.nan), np.where(valid, hi, np.nan)
