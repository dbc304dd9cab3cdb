"""src/aggregate/uncertainty.py against hand-worked answers, published power tables, its own limits
and a calibration on synthetic studies with a known true Δ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src import metrics
from src.aggregate import uncertainty as U
from src.aggregate.stats import paired_diff, t_ppf


# ----------------------------------------------------------------------------- Holm
def test_holm_on_hand_computed_p_values():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    got = U.holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert np.allclose(got[:4], [0.03, 0.06, 0.06, 0.02]) and math.isnan(got[4])
    assert np.allclose(U.holm([0.5, 0.6]), [1.0, 1.0])  # 0.5*2 = 1.0, then max(1.0, 0.6): capped
    assert np.allclose(U.holm([0.02]), [0.02])  # one test: unchanged
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
    assert U.paired_t_power(5, 0.0) == pytest.approx(0.05, abs=1e-9)  # no effect: the level itself
    assert U.paired_t_power(30, 0.0, alpha=0.2) == pytest.approx(0.2, abs=1e-9)
    rng = np.random.default_rng(0)  # Monte Carlo: n 6, d 1.2
    x = rng.standard_normal((200_000, 6)) + 1.2
    t = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(6))
    assert U.paired_t_power(6, 1.2) == pytest.approx(np.mean(np.abs(t) > t_ppf(0.975, 5)), abs=0.005)


def test_seeds_needed_edge_cases():
    assert U.seeds_needed(0.0, 1.0) is None  # no effect: no n detects it
    assert U.seeds_needed(1.0, 0.0) is None  # no observed spread: no estimate
    assert U.seeds_needed(float("nan"), 1.0) is None and U.seeds_needed(1.0, float("nan")) is None
    assert U.seeds_needed(-0.5, 1.0) == 34  # the sign does not matter (two-sided)
    assert U.seeds_needed(0.01, 10.0) == math.inf  # d = 0.001: beyond max_n
    assert U.seeds_needed(10.0, 1.0) == 3  # n = 2 leaves 1 dof: t_0.975 = 12.7 is too much
    assert U.seeds_needed(0.5, 1.0, power=0.9) == 44  # G*Power: dz 0.5, power 0.90 -> 44


def test_seeds_needed_at_the_family_level_is_the_smallest_n_with_the_power():
    # issue #23: with 16 variants the first Holm step needs alpha 0.05/16; d = 0.7 then needs 34 seeds, not 19
    assert U.seeds_needed(0.7, 1.0) == 19 and U.seeds_needed(0.7, 1.0, alpha=0.05 / 16) == 34
    rng = np.random.default_rng(3)
    d, alpha = rng.uniform(0.05, 12.0, 400), 0.05 / rng.integers(1, 30, 400)
    n = U.seeds_needed_many(d, 1.0, alpha)
    finite = np.isfinite(n)
    assert finite.sum() > 300 and np.all(n[finite] >= 2)
    k = n[finite]
    assert np.all(U.paired_t_power(k, d[finite], alpha[finite]) >= 0.8)  # enough ...
    below = k > 2
    assert np.all(U.paired_t_power(k[below] - 1, d[finite][below], alpha[finite][below]) < 0.8)  # ... and no more
    assert np.all(U.paired_t_power(1000, d[~finite], alpha[~finite]) < 0.8)  # inf: not even max_n


def test_sd_interval_covers_the_true_sd_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    for n in (2, 3, 8):
        sd = rng.normal(0.0, 2.0, (20_000, n)).std(1, ddof=1)
        lo, hi = U.sd_interval(sd, n)
        assert np.mean((lo <= 2.0) & (2.0 <= hi)) == pytest.approx(0.95, abs=0.006)
    assert np.isnan(U.sd_interval(1.0, 1)[0])


# ----------------------------------------------------------------------------- verdict
def test_verdict_rule_on_hand_made_intervals():
    lo = [0.006, -0.02, -0.004, -0.004, -0.01, np.nan, 0.005]
    hi = [0.020, -0.006, 0.004, 0.006, 0.02, 0.01, 0.01]
    assert list(U.verdict(lo, hi, 0.005)) == [
        "better",
        "worse",
        "equivalent",
        "undecided",
        "undecided",
        "",
        "undecided",
    ]  # touching +rope is not "above" it


# ----------------------------------------------------------------------------- one interval, its limits
def test_one_seed_is_the_image_bootstrap():
    rng = np.random.default_rng(5)
    reps = 0.01 + rng.normal(0.0, 0.004, 1000)
    lo, hi, p = U.two_level_interval(0.01, np.nan, np.nan, reps - 0.01)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975], method="hazen")), abs=1e-15)
    assert p == pytest.approx(np.mean(reps > 0))


def test_a_single_repeated_image_leaves_the_seed_level_alone():
    # one image: every image resample is that image, so each seed's replicate Δ equals its point Δ
    # and the interval is the seed level's, the paired t interval
    m_base = {
        "tp": np.ones((1, 10), bool),
        "conf": np.array([0.9], np.float32),
        "pred_cls": np.array([0]),
        "pred_image": np.array([0]),
        "gt_cls": np.array([0]),
        "gt_image": np.array([0]),
        "n_images": 1,
        "iouv": np.linspace(0.5, 0.95, 10),
    }
    m_var = dict(m_base, tp=np.r_[[True] * 7, [False] * 3][None])
    point, reps = metrics.paired_replicates(m_base, m_var, n_resamples=500)
    assert np.all(reps[:, 0] == point[0])
    d = np.array([0.012, 0.020, 0.004, 0.016])
    diff = paired_diff(d, np.zeros(4))
    dev = np.broadcast_to(reps[:, 0] - point[0], (4, 500)).mean(0)
    lo, hi, p = U.two_level_interval(diff.mean, diff.se, diff.dof, dev)
    assert (lo, hi) == pytest.approx((diff.ci_low, diff.ci_high), rel=1e-3)
    assert p == pytest.approx(1 - diff.p_value / 2, abs=2e-3)  # P(Δ > 0) = the one-sided t probability


def test_the_image_level_keeps_only_the_noise_the_seeds_share():
    # per-seed deviations on the same image draws: a part every seed has, a part each seed has alone
    rng = np.random.default_rng(3)
    shared, own = rng.normal(0.0, 0.004, 20000), rng.normal(0.0, 0.004, (4, 20000))
    avg, shrink = U.shared_image_dev(shared + own)
    assert np.allclose(avg, (shared + own).mean(0))
    assert shrink**2 == pytest.approx(1 / (1 + 1 / 4), abs=0.02)  # σ_shared² / (σ_shared² + σ_own² / 4)
    assert U.shared_image_dev(np.stack([own[0], own[1]]))[1] < 0.1  # nothing shared: next to nothing left
    assert U.shared_image_dev(np.stack([shared, shared]))[1] == pytest.approx(1.0)  # all shared: all of it
    one = np.vstack([shared + own[0], np.full(20000, np.nan)])  # a seed without a bootstrap is left out
    assert U.shared_image_dev(one)[1] == 1.0 and np.allclose(U.shared_image_dev(one)[0], shared + own[0])
    # one seed (no seed level): per-seed deviations give the image bootstrap, as the averaged one does
    dev = (shared + own[0])[:1000]
    assert U.two_level_interval(0.01, np.nan, np.nan, seed_image_dev=dev[None]) == pytest.approx(
        U.two_level_interval(0.01, np.nan, np.nan, dev)
    )
    with pytest.raises(ValueError):
        U.two_level_interval(0.01, 0.002, 3, dev, seed_image_dev=dev[None])


# ----------------------------------------------------------------------------- calibration
# Noise at the levels of the `quick` study (README): the per-seed Δ mAP50-95 of cot and ema spread by
# 2.8 and 3.5 pp over 2 seeds (their paired-t CIs), so SEED_SD 3 pp; make run's test-set CIs over 64
# images are ±2.5-2.6 pp wide, so IMAGE_SD (one seed's Δ over test sets of 64 images) 1.3 pp. Each
# image's contribution to Δ is half shared by all seeds (an image that suits the module) and half the
# seed's own; the seed level is what is left of SEED_SD.
SEED_SD, IMAGE_SD, N_IMAGES = 0.030, 0.013, 64


def simulate(rng, true_delta, seeds, studies, scale=1.0, shared=0.5, draws=400, chunk=250):
    """(low, high, p_improve) of `studies` synthetic studies, each scored the way the table is: per
    seed, per-image Δs on one test set; the paired image bootstrap (the same image draws for every
    seed); the mean Δ over seeds with its two-level interval from each seed's replicate deviations."""
    out = []
    for start in range(0, studies, chunk):
        s = min(chunk, studies - start)
        per_image = scale * IMAGE_SD * math.sqrt(N_IMAGES)
        seed_sd = scale * math.sqrt(SEED_SD**2 - (1 - shared) * IMAGE_SD**2)
        delta = (
            true_delta
            + rng.normal(0.0, seed_sd, (s, seeds, 1))
            + rng.normal(0.0, per_image * math.sqrt(shared), (s, 1, N_IMAGES))
            + rng.normal(0.0, per_image * math.sqrt(1 - shared), (s, seeds, N_IMAGES))
        )
        drawn = rng.integers(0, N_IMAGES, (s * draws, N_IMAGES))
        counts = np.bincount(
            (np.arange(s * draws)[:, None] * N_IMAGES + drawn).ravel(), minlength=s * draws * N_IMAGES
        ).reshape(s, draws, N_IMAGES)
        reps = np.einsum("sbi,ski->skb", counts.astype(float), delta) / N_IMAGES
        d = delta.mean(-1)
        se = d.std(1, ddof=1) / math.sqrt(seeds) if seeds > 1 else np.full(s, np.nan)
        dof = seeds - 1 if seeds > 1 else np.nan
        out.append(U.two_level_interval(d.mean(1), se, dof, seed_image_dev=reps - d[..., None]))
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def test_calibration_coverage_false_better_and_reachable_equivalence():
    rng = np.random.default_rng(2026)
    # 95 % nominal. Coverage in %, 4,000 studies per case, two runs; image noise 0 / 50 / 100 % shared:
    #   seeds  image level: the shared part (now)   the whole seed-averaged deviation (before)
    #   2      95.5-95.7 / 96.5-96.8 / 97.4-97.5     97.1 / 97.3-97.5 / 97.4-97.5
    #   5      95.3-95.8 / 95.7-96.0 / 96.1-96.6     97.0 / 96.6 / 96.1-96.6
    #   10     95.0 / 95.1-95.4 / 94.7-95.2          96.3-96.4 / 95.4-95.8 / 94.7-95.2
    # Before, the seeds' own image noise was counted twice (in se and in the bootstrap): the excess is
    # gone at 0 % shared; at 100 % there was none to remove. What is left at 2 seeds is the fiducial
    # (Behrens-Fisher) sum of a t(1) level and a well-known image level, conservative where the seeds
    # share the image noise; Welch's effective dof instead covers 87-92 % there. Issue #23 asks 93-97 %:
    # met but at 2 seeds with (nearly) all image noise shared. The cases below are 50 % shared.
    for seeds in (2, 5):
        for true in (0.0, 0.01):
            lo, hi, _ = simulate(rng, true, seeds=seeds, studies=1500)
            assert 0.93 <= np.mean((lo <= true) & (true <= hi)) <= 0.97, (seeds, true)
    lo, hi, _ = simulate(rng, 0.0, seeds=5, studies=1500)
    said = U.verdict(lo, hi, 0.005)
    assert np.mean(said == U.BETTER) <= 0.05 and np.mean(said == U.WORSE) <= 0.05
    # equivalence at the quick study's noise is out of reach (half-width ~3 pp against ±0.5 pp) ...
    equivalent = [
        np.mean(U.verdict(*simulate(rng, 0.0, 5, 400, scale=k)[:2], 0.005) == U.EQUIVALENT)
        for k in (1.0, 0.3, 0.1, 0.05)
    ]
    assert equivalent[0] == 0.0
    # ... and reached once the noise allows it: with a twentieth of it, nearly always
    assert equivalent == sorted(equivalent) and equivalent[-1] >= 0.9
    # one seed: the image-only interval cannot cover the seed, so the table gives no verdict there
    lo, hi, _ = simulate(rng, 0.0, seeds=1, studies=400)
    assert np.mean((lo <= 0) & (0 <= hi)) < 0.8
