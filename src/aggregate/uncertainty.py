"""Uncertainty across the table's variants: Holm's correction and the seeds a Δ would need.

* `holm`: Holm's step-down adjustment over the variants compared with the same baseline.
* `seeds_needed`: the number of seeds a two-sided paired t-test needs for a given power, with the
  power computed exactly from the noncentral t distribution.

The test-set uncertainty of one run (the image bootstrap of mAP from its matches) is src.metrics,
shared with the job that computes `metrics_ci`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from .stats import t_ppf


# ============================================================================ multiplicity
def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input's order; NaN stays NaN and is not counted.

    With the m valid p-values sorted, p_(1) <= ... <= p_(m): adj_(i) = max_{k<=i} min(1, (m-k+1) p_(k)).
    Rejecting where adj <= alpha controls the family-wise error rate at alpha (Holm 1979)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if idx.size == 0:
        return out
    if np.any((p[idx] < 0) | (p[idx] > 1)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN)")
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    adj = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(adj), 1.0)
    return out


# ============================================================================ seeds needed
_norm_cdf = np.frompyfunc(lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0)), 1, 1)


def _nct_sf(c: float, dof: int, ncp: float, points: int = 4001) -> float:
    """P(T > c) for the noncentral t with `dof` degrees of freedom and noncentrality `ncp`.

    T = (Z + ncp) / S with S = sqrt(V / dof), V ~ chi2(dof), so P(T > c) = E_S[Phi(ncp - c S)],
    integrated with Simpson's rule over S's density 2 (dof/2)^(dof/2) s^(dof-1) e^(-dof s^2/2) / Gamma(dof/2),
    on s in 1 +- 20 / sqrt(2 dof) (clipped at 0), normalised by the integral of the density on that grid."""
    nu = float(dof)
    half = 20.0 / math.sqrt(2.0 * nu)
    s = np.linspace(max(0.0, 1.0 - half), 1.0 + half + (12.0 if nu < 3 else 0.0), points)
    logf = (math.log(2.0) + 0.5 * nu * math.log(0.5 * nu) - math.lgamma(0.5 * nu)
            + (nu - 1.0) * np.log(np.maximum(s, 1e-300)) - 0.5 * nu * s * s)  # s = 0: density 0 (or finite, dof 1)
    f = np.exp(logf)
    simpson = np.ones(points)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    wts = simpson * f
    g = _norm_cdf(ncp - c * s).astype(np.float64)
    return float(min(1.0, max(0.0, (wts * g).sum() / wts.sum())))


def paired_t_power(n: int, effect: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired (one-sample) t-test with n pairs at standardised effect
    d = mean / sd of the differences: P(|T| > t_{1-alpha/2, n-1}) with T ~ noncentral t(n-1, d sqrt(n))."""
    if n < 2:
        raise ValueError(f"a paired t-test needs n >= 2, got {n}")
    dof = n - 1
    c = t_ppf(1.0 - alpha / 2.0, float(dof))
    ncp = abs(effect) * math.sqrt(n)
    return _nct_sf(c, dof, ncp) + _nct_sf(c, dof, -ncp)


def seeds_needed(delta: float, sd: float, alpha: float = 0.05, power: float = 0.8,
                 max_n: int = 1000) -> int | float | None:
    """Smallest number of seeds n (>= 2) at which a two-sided paired t-test at level alpha detects
    a true mean difference `delta` with probability >= `power`, when the per-seed differences have
    standard deviation `sd` (d = |delta| / sd; power from the noncentral t, see paired_t_power).

    Returns None when it cannot be said: delta == 0 (no n detects it), sd == 0 (the spread was not
    observed; one difference repeated gives no estimate), or either is NaN/infinite / sd < 0.
    Returns math.inf when even max_n seeds do not reach the power."""
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    if delta is None or sd is None:
        return None
    delta, sd = float(delta), float(sd)
    if not (math.isfinite(delta) and math.isfinite(sd)) or delta == 0.0 or sd <= 0.0:
        return None
    d = abs(delta) / sd
    if paired_t_power(max_n, d, alpha) < power:
        return math.inf
    z = NormalDist().inv_cdf
    n = min(max_n, max(2, math.ceil(((z(1 - alpha / 2) + z(power)) / d) ** 2)))  # normal approximation
    if paired_t_power(n, d, alpha) >= power:
        while n > 2 and paired_t_power(n - 1, d, alpha) >= power:
            n -= 1
    else:
        while paired_t_power(n, d, alpha) < power:  # ends at max_n at the latest (checked above)
            n += 1
    return n
