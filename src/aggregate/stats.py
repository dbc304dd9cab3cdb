"""Small statistics kit: Student-t quantiles, paired and Welch confidence intervals.

No scipy: the t distribution's CDF is the regularized incomplete beta function, evaluated with the
Lentz continued fraction (Numerical Recipes, `betacf`), and its inverse is found by bisection.
Quantiles are cached, so a table with a thousand rows costs a handful of inversions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

_EPS = 1e-15
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    """CDF of Student's t distribution with `dof` (> 0, may be fractional) degrees of freedom."""
    if dof <= 0 or math.isnan(dof):
        raise ValueError(f"degrees of freedom must be > 0, got {dof}")
    if math.isinf(dof):
        return NormalDist().cdf(t)
    if t == 0:
        return 0.5
    tail = 0.5 * betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=4096)
def t_ppf(p: float, dof: float) -> float:
    """Inverse CDF (quantile) of Student's t: t_ppf(0.975, 1) == 12.706..."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if dof <= 0 or math.isnan(dof):
        raise ValueError(f"degrees of freedom must be > 0, got {dof}")
    if math.isinf(dof) or dof > 1e7:
        return NormalDist().inv_cdf(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, dof)
    lo, hi = 0.0, 2.0
    while t_cdf(hi, dof) < p:  # heavy tails (dof=1, p=0.9995 -> 636.6): widen the bracket
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, dof) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_sf_two_sided(t: float, dof: float) -> float:
    """Two-sided p-value of a t statistic."""
    if math.isnan(t) or math.isnan(dof) or dof <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return 2.0 * (1.0 - t_cdf(abs(t), dof))


@dataclass(frozen=True)
class Diff:
    """A difference of means with its confidence interval."""
    mean: float
    ci_low: float
    ci_high: float
    n: int          # pairs for the paired test; runs of the variant for Welch
    dof: float
    p_value: float
    test: str       # "paired" | "welch"

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.ci_low) and np.isfinite(self.ci_high)
                    and (self.ci_low > 0 or self.ci_high < 0))


def _ci(mean: float, se: float, dof: float, level: float) -> tuple[float, float, float]:
    """(low, high, p) for a t interval; NaN when undefined, a point when se == 0."""
    if not math.isfinite(dof) or dof <= 0 or math.isnan(se):
        return math.nan, math.nan, math.nan
    if se == 0.0:
        return mean, mean, (1.0 if mean == 0 else 0.0)
    half = t_ppf(0.5 + level / 2.0, dof) * se
    return mean - half, mean + half, t_sf_two_sided(mean / se, dof)


def paired_diff(variant, baseline, level: float = 0.95) -> Diff:
    """Mean of per-seed differences variant - baseline, t interval with n-1 dof."""
    d = np.asarray(variant, float) - np.asarray(baseline, float)
    n = int(d.size)
    if n == 0:
        return Diff(math.nan, math.nan, math.nan, 0, math.nan, math.nan, "paired")
    mean = float(d.mean())
    if n < 2:
        return Diff(mean, math.nan, math.nan, n, math.nan, math.nan, "paired")
    se = float(d.std(ddof=1)) / math.sqrt(n)
    lo, hi, p = _ci(mean, se, n - 1, level)
    return Diff(mean, lo, hi, n, float(n - 1), p, "paired")


def welch_from_moments(m1, v1, n1, m2, v2, n2, level: float = 0.95) -> Diff:
    """Difference of means m1 - m2 with the Welch (unequal variances) t interval, from each side's
    mean, sample variance and size."""
    mean = float(m1 - m2)
    if n1 < 2 or n2 < 2 or math.isnan(v1) or math.isnan(v2):
        return Diff(mean, math.nan, math.nan, int(n1), math.nan, math.nan, "welch")
    q1, q2 = v1 / n1, v2 / n2
    se2 = q1 + q2
    if se2 == 0.0:
        return Diff(mean, mean, mean, int(n1), math.nan, 1.0 if mean == 0 else 0.0, "welch")
    dof = se2 * se2 / (q1 * q1 / (n1 - 1) + q2 * q2 / (n2 - 1))
    lo, hi, p = _ci(mean, math.sqrt(se2), dof, level)
    return Diff(mean, lo, hi, int(n1), float(dof), p, "welch")


def pareto_front(cost, value) -> np.ndarray:
    """Indices of the points no other point beats (lower cost and higher value), by cost."""
    cost, value = np.asarray(cost, float), np.asarray(value, float)
    ok = np.flatnonzero(np.isfinite(cost) & np.isfinite(value))
    order = ok[np.lexsort((-value[ok], cost[ok]))]
    front, best = [], -math.inf
    for i in order:
        if value[i] > best:
            front.append(i)
            best = value[i]
    return np.asarray(front, dtype=int)
