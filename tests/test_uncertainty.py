"""src/aggregate/uncertainty.py against hand-worked answers and published power tables."""
from __future__ import annotations

import math

import numpy as np
import pytest

from src.aggregate import uncertainty as U
from src.aggregate.stats import t_ppf


# ----------------------------------------------------------------------------- Holm
def test_holm_on_hand_computed_p_values():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    got = U.holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert np.allclose(got[:4], [0.03, 0.06, 0.06, 0.02]) and math.isnan(got[4])
    assert np.allclose(U.holm([0.5, 0.6]), [1.0, 1.0])           # 0.5*2 = 1.0, then max(1.0, 0.6): capped
    assert np.allclose(U.holm([0.02]), [0.02])                    # one test: unchanged
    assert np.allclose(U.holm([0.01, 0.01, 0.2]), [0.03, 0.03, 0.2])  # ties: 0.03, max(0.03, 0.02), 0.2
    assert U.holm([]).size == 0 and np.isnan(U.holm([np.nan, np.nan])).all()
    with pytest.raises(ValueError):
        U.holm([0.5, 1.5])


# ----------------------------------------------------------------------------- seeds needed
# Two-sided paired (one-sample) t-test, alpha 0.05, power 0.80: G*Power 3 ("Means: difference between
# two dependent means", a priori) gives n = 34 (actual power 0.8078) for dz = 0.5, 15 (0.8213) for
# dz = 0.8, 10 (0.8031) for dz = 1.0; R's pwr.t.test(d = 0.2, type = "paired") gives n = 198.15 -> 199.
POWER_TABLE = [(0.5, 34, 0.8078), (0.8, 15, 0.8213), (1.0, 10, 0.8031), (0.2, 199, None)]


@pytest.mark.parametrize("d, n, power", POWER_TABLE)
def test_seeds_needed_matches_published_power_tables(d, n, power):
    got = U.seeds_needed(delta=d * 2.5, sd=2.5)
    assert abs(got - n) <= 1
    assert got == n  # in fact exact
    if power is not None:
        assert U.paired_t_power(n, d) == pytest.approx(power, abs=1e-3)
        assert U.paired_t_power(n - 1, d) < 0.8 <= U.paired_t_power(n, d)


def test_power_is_exact_where_it_is_known():
    assert U.paired_t_power(5, 0.0) == pytest.approx(0.05, abs=1e-9)    # no effect: the level itself
    assert U.paired_t_power(30, 0.0, alpha=0.2) == pytest.approx(0.2, abs=1e-9)
    rng = np.random.default_rng(0)                                       # Monte Carlo: n 6, d 1.2
    x = rng.standard_normal((200_000, 6)) + 1.2
    t = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(6))
    assert U.paired_t_power(6, 1.2) == pytest.approx(np.mean(np.abs(t) > t_ppf(0.975, 5)), abs=0.005)


def test_seeds_needed_edge_cases():
    assert U.seeds_needed(0.0, 1.0) is None        # no effect: no n detects it
    assert U.seeds_needed(1.0, 0.0) is None        # no observed spread: no estimate
    assert U.seeds_needed(float("nan"), 1.0) is None and U.seeds_needed(1.0, float("nan")) is None
    assert U.seeds_needed(-0.5, 1.0) == 34         # the sign does not matter (two-sided)
    assert U.seeds_needed(0.01, 10.0) == math.inf  # d = 0.001: beyond max_n
    assert U.seeds_needed(10.0, 1.0) == 3          # n = 2 leaves 1 dof: t_0.975 = 12.7 is too much
    assert U.seeds_needed(0.5, 1.0, power=0.9) == 44  # G*Power: dz 0.5, power 0.90 -> 44
