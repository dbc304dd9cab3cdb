"""The adaptive sweeper's stopping rule: a verdict that stays valid when a study looks after every round.

A fixed-n 95 % interval read after every round, stopping at the first that clears the rope, makes
false claims more often than 5 %: each look is another chance. The rule here splits α over the
planned looks (Bonferroni: `looks = (max - first) // step + 1`, each look at α / looks). The chance of
any false claim at any look is at most the sum over looks, α, whatever the data do between looks and
however many rounds actually run; Holm's step-down correction across the variants of a baseline
block is kept within each look. It is simple to state and needs no model of how the interval narrows
(an alpha-spending boundary or a confidence sequence would spend less α early, but rest on that).

Each claim of a verdict is a test with a p-value that is below a level exactly when the table's
interval at that level says it (`claim_p_values` from the t distribution; `replicate_p_values` from the
two-level interval's replicates): `better` (Δ > +rope), `worse` (Δ < -rope), `equivalent` (inside
±rope, two one-sided tests). A variant is decided at a look when Holm's correction over its block
rejects its smallest claim p-value at that look's α.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .uncertainty import BETTER, EQUIVALENT, UNDECIDED, WORSE

CLAIMS = (BETTER, WORSE, EQUIVALENT)  # the order of the claim axis below
DECIDED, MAX_SEEDS, BUDGET = "decided", "max seeds", "budget"  # why a variant got no more seeds


def planned_looks(first: int, step: int, most: int) -> int:
    """Looks a variant can get: after `first` seeds, then every `step` more, up to `most`
    ((most - first) / step + 1 when the steps land on `most`)."""
    return len(seeds_at_look(first, step, most))


def seeds_at_look(first: int, step: int, most: int) -> list[int]:
    """The seed count of each look: first, first + step, ..., and `most` last even off the step.
    A bad value is a ValueError naming it and what it may be."""
    for name, value, least in (("seeds.first", first, 2), ("seeds.step", step, 1), ("seeds.max", most, first)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    counts = list(range(first, most + 1, step))
    return counts if counts[-1] == most else counts + [most]


def look_alpha(alpha: float, looks: int) -> float:
    """The α of one look: α split evenly over the planned looks (Bonferroni over looks)."""
    if not 0.0 < alpha < 1.0 or looks < 1:
        raise ValueError(f"alpha must be in (0, 1) and looks >= 1, got {alpha}, {looks}")
    return alpha / looks


def claim_p_values(mean, se, dof, rope: float) -> np.ndarray:
    """(..., 3) p-values of better / worse / equivalent from a t interval (mean, se, dof), two-sided
    scale: p < a exactly when the (1 - a) t interval lies above +rope / below -rope / inside ±rope.
    NaN where the interval is undefined."""
    mean, se, dof = np.broadcast_arrays(*(np.asarray(v, float) for v in (mean, se, dof)))
    ok = np.isfinite(mean) & np.isfinite(se) & (se > 0) & np.isfinite(dof) & (dof > 0)
    s, d = np.where(ok, se, 1.0), np.where(ok, dof, 1.0)
    above = stats.t.sf((mean - rope) / s, d)  # P(T >= ...) : H0 Δ <= rope
    below = stats.t.cdf((mean + rope) / s, d)  # H0 Δ >= -rope
    outside = np.maximum(stats.t.sf((mean + rope) / s, d), stats.t.cdf((mean - rope) / s, d))
    p = np.minimum(1.0, 2.0 * np.stack([above, below, outside], -1))
    return np.where(ok[..., None], p, np.nan)


def replicate_p_values(reps, rope: float) -> np.ndarray:
    """(..., 3) p-values of better / worse / equivalent from an interval's replicates (last axis),
    on the same scale: p < a exactly when the percentile interval at 1 - a says the claim."""
    reps = np.asarray(reps, float)
    above = (reps <= rope).mean(-1)
    below = (reps >= -rope).mean(-1)
    outside = np.maximum((reps < -rope).mean(-1), (reps > rope).mean(-1))
    return np.minimum(1.0, 2.0 * np.stack([above, below, outside], -1))


def holm_reject(p, alpha: float) -> np.ndarray:
    """Holm's step-down test at level α along the last axis (a family per row), vectorised over the
    leading ones; NaN p-values are not in the family. statsmodels' `multipletests` (what the table's
    `p_holm` uses) takes one family per call; a simulation has 10^5 of them."""
    p = np.asarray(p, float)
    valid = np.isfinite(p)
    m = valid.sum(-1, keepdims=True)
    order = np.argsort(np.where(valid, p, np.inf), -1)
    sorted_p = np.take_along_axis(np.where(valid, p, np.inf), order, -1)
    rank = np.arange(p.shape[-1])
    passes = sorted_p <= alpha / np.maximum(m - rank, 1)
    kept = np.cumprod(passes, -1).astype(bool)  # step down: stop at the first that fails
    out = np.zeros(p.shape, bool)
    np.put_along_axis(out, order, kept, -1)
    return out & valid


def decide(claim_p, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(rejected, verdict) for variants of one family along the second-to-last axis: claim_p is
    (..., variants, 3). A variant is decided when Holm over the family rejects its smallest claim
    p-value at `alpha`; its verdict is that claim, else `undecided` ("" where undefined)."""
    claim_p = np.asarray(claim_p, float)
    defined = np.isfinite(claim_p).all(-1)
    best = np.where(defined, np.nanmin(np.where(defined[..., None], claim_p, 1.0), -1), np.nan)
    rejected = holm_reject(best, alpha)
    which = np.asarray(CLAIMS)[np.argmin(np.where(defined[..., None], claim_p, 1.0), -1)]
    verdict = np.where(rejected, which, np.where(defined, UNDECIDED, ""))
    return rejected, verdict
