"""Small statistics kit: paired and Welch t confidence intervals, the Pareto front.

The t distribution is scipy's (pinned in requirements.txt): we keep only what scipy does not say
for us, i.e. how a table row turns into a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


def t_ppf(p: float, dof: float) -> float:
    """Quantile of Student's t (scipy): t_ppf(0.975, 1) == 12.706..."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if dof <= 0 or math.isnan(dof):
        raise ValueError(f"degrees of freedom must be > 0, got {dof}")
    return float(stats.t.ppf(p, dof))


def t_sf_two_sided(t: float, dof: float) -> float:
    """Two-sided p-value of a t statistic, from the survival function: exact far into the tail
    (`2*(1 - cdf)` cancels to 0 below ~1e-16)."""
    if math.isnan(t) or math.isnan(dof) or dof <= 0:
        return math.nan
    return float(2.0 * stats.t.sf(abs(t), dof))


@dataclass(frozen=True)
class Diff:
    """A difference of means with its confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int  # pairs for the paired test; runs of the variant for Welch
    dof: float
    p_value: float
    test: str  # "paired" | "welch"
    se: float = math.nan  # standard error of `mean` (the t interval's scale)

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.ci_low) and np.isfinite(self.ci_high) and (self.ci_low > 0 or self.ci_high < 0))


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
    return Diff(mean, lo, hi, n, float(n - 1), p, "paired", se)


def welch_from_moments(m1, v1, n1, m2, v2, n2, level: float = 0.95) -> Diff:
    """Difference of means m1 - m2 with the Welch (unequal variances) t interval, from each side's
    mean, sample variance and size."""
    mean = float(m1 - m2)
    if n1 < 2 or n2 < 2 or math.isnan(v1) or math.isnan(v2):
        return Diff(mean, math.nan, math.nan, int(n1), math.nan, math.nan, "welch")
    q1, q2 = v1 / n1, v2 / n2
    se2 = q1 + q2
    if se2 == 0.0:
        return Diff(mean, mean, mean, int(n1), math.nan, 1.0 if mean == 0 else 0.0, "welch", 0.0)
    dof = se2 * se2 / (q1 * q1 / (n1 - 1) + q2 * q2 / (n2 - 1))
    lo, hi, p = _ci(mean, math.sqrt(se2), dof, level)
    return Diff(mean, lo, hi, int(n1), float(dof), p, "welch", math.sqrt(se2))


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
