"""The ablation table's image-level and two-level CIs (paired image bootstrap from matches.npz),
Holm-adjusted significance and seeds needed, on hand-made sweep trees."""

from __future__ import annotations

import numpy as np
import pytest
from test_aggregate import Sweep, row

from src import metrics
from src.aggregate import aggregate
from src.aggregate.stats import paired_diff
from src.aggregate.uncertainty import holm, sd_interval, seeds_needed, two_level_interval, verdict
from src.metrics import map_from_matches


def matches(rng, n_images=40, hit=0.6) -> dict:
    """Two classes, two boxes per image; each box found with probability `hit`, plus one false positive."""
    gt_cls = np.tile([0, 1], n_images)
    gt_image = np.repeat(np.arange(n_images), 2)
    found = rng.random(gt_cls.size) < hit
    p_cls = np.concatenate([gt_cls[found], rng.integers(0, 2, n_images)])
    p_img = np.concatenate([gt_image[found], np.arange(n_images)])
    tp = np.zeros((p_cls.size, 10), bool)
    tp[: found.sum()] = rng.random((found.sum(), 1)) < np.linspace(1.0, 0.3, 10)  # looser IoUs match more
    conf = np.concatenate([rng.uniform(0.4, 1.0, found.sum()), rng.uniform(0.0, 0.6, n_images)])
    return {
        "tp": tp,
        "conf": conf.astype(np.float32),
        "pred_cls": p_cls,
        "pred_image": p_img,
        "gt_cls": gt_cls,
        "gt_image": gt_image,
        "n_images": n_images,
        "iouv": np.linspace(0.5, 0.95, 10),
    }


def job(sweep: Sweep, m: dict, **kw):
    d = sweep.add(map50_95=map_from_matches(m)[0], matches_file="matches.npz", **kw)
    np.savez(d / "matches.npz", **m)
    return d


def test_a_one_seed_table_shows_every_delta_with_its_image_interval(tmp_path):
    rng = np.random.default_rng(0)
    sw = Sweep(tmp_path / "sweep")
    job(sw, matches(rng, hit=0.5), attn="none")
    job(sw, matches(rng, hit=0.7), attn="ema")
    job(sw, matches(rng, hit=0.55), attn="cot")
    summary = aggregate(tmp_path / "sweep", bootstrap=200, plots=False)
    for attn in ("ema", "cot"):
        r = row(summary, attn)
        assert r["n"] == 1 and r["delta_images_low"] < r["delta_map50_95"] < r["delta_images_high"]
        assert r["boot_n"] == 1 and np.isnan(r["delta_seeds_low"])  # no seed CI from one seed
        # one seed: the main interval is the image bootstrap, and gives no verdict (it misses the seed)
        assert (r["delta_seeds_images_low"], r["delta_seeds_images_high"]) == (
            r["delta_images_low"],
            r["delta_images_high"],
        )
        assert r["delta_ci_covers"] == "images" and r["verdict"] == "n/a"
    assert "‡" in summary.terminal and "n/a" in summary.terminal
    tex = (tmp_path / "sweep" / "ablation.tex").read_text()
    assert r"$^\ddagger$" in tex and "‡" not in tex  # pdflatex-safe
    cache = list((tmp_path / "sweep" / ".cache" / "bootstrap").glob("*.npy"))
    assert len(cache) == 2
    again = aggregate(tmp_path / "sweep", bootstrap=200, plots=False)  # read back from the cache
    assert row(again, "ema")["delta_images_low"] == row(summary, "ema")["delta_images_low"]
    off = aggregate(tmp_path / "sweep", bootstrap=0, plots=False)
    assert np.isnan(row(off, "ema")["delta_images_low"]) and np.isnan(row(off, "ema")["delta_seeds_images_low"])


def test_multi_seed_rows_average_replicates_and_combine_seeds_and_images(tmp_path):
    rng = np.random.default_rng(1)
    sw = Sweep(tmp_path / "sweep")
    pairs = []
    for seed, hit in enumerate((0.62, 0.70, 0.58)):
        base, var = matches(rng, hit=0.5), matches(rng, hit=hit)
        job(sw, base, attn="none", seed=seed)
        job(sw, var, attn="ema", seed=seed)
        pairs.append(metrics.paired_replicates(base, var, n_resamples=300))
    r = row(aggregate(tmp_path / "sweep", bootstrap=300, plots=False), "ema")
    reps = np.stack([p[1][:, 0] for p in pairs])
    mean_reps = reps.mean(0)  # all seeds drew the same images: average inside each replicate
    assert (r["delta_images_low"], r["delta_images_high"]) == pytest.approx(
        tuple(np.quantile(mean_reps, [0.025, 0.975], method="hazen"))
    )
    per_seed = np.quantile(reps, [0.025, 0.975], axis=1, method="hazen").mean(1)  # the old, wrong way
    assert r["delta_images_high"] - r["delta_images_low"] < per_seed[1] - per_seed[0]
    assert r["boot_n"] == 3 and r["delta_ci_covers"] == "seeds+images"
    # the main interval: the seed level of the paired Δs plus the part of each replicate's mean deviation
    # over seeds that the seeds share (from each seed's own deviations)
    d = np.array([p[0][0] for p in pairs])
    diff = paired_diff(d, np.zeros(3))
    lo, hi, p_up = two_level_interval(diff.mean, diff.se, diff.dof, seed_image_dev=reps - d[:, None])
    assert (r["delta_seeds_images_low"], r["delta_seeds_images_high"], r["p_improve"]) == pytest.approx((lo, hi, p_up))
    assert r["delta_seeds_images_low"] < r["delta_images_low"] and r["delta_seeds_images_high"] > r["delta_images_high"]
    assert r["verdict"] == verdict(lo, hi, 0.005)


def test_holm_adjusts_over_the_variants_of_one_baseline_and_drives_sig(tmp_path):
    sw = Sweep(tmp_path / "sweep")
    base = [0.400, 0.410, 0.420, 0.415]
    deltas = {"ema": [0.020, 0.015, 0.030, 0.024], "cot": [0.010, -0.004, 0.012, 0.003]}
    for seed, b in enumerate(base):
        sw.add(attn="none", seed=seed, map50_95=b)
        for attn, ds in deltas.items():
            sw.add(attn=attn, seed=seed, map50_95=b + ds[seed])
    summary = aggregate(tmp_path / "sweep", bootstrap=0, plots=False)
    raw = {a: paired_diff(np.array(ds), np.zeros(4)).p_value for a, ds in deltas.items()}
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True))
    for attn in deltas:
        r = row(summary, attn)
        assert r["p_value"] == pytest.approx(raw[attn]) and r["p_holm"] == pytest.approx(adjusted[attn])
        assert r["significant"] == (adjusted[attn] < 0.05)
    assert adjusted["ema"] == pytest.approx(min(1.0, 2 * raw["ema"]))  # the smallest p, times the 2 tests
    # seeds needed: for the rope (0.5 pp) at the family's Bonferroni level 0.05/2, with a range from the sd's CI
    r = row(summary, "cot")
    sd = np.std(deltas["cot"], ddof=1)
    assert r["seeds_needed_alpha"] == pytest.approx(0.025) and r["seeds_needed_for"] == pytest.approx(0.005)
    assert r["seeds_needed"] == seeds_needed(0.005, sd, alpha=0.025)
    lo, hi = sd_interval(sd, 4)
    assert (r["seeds_needed_low"], r["seeds_needed_high"]) == (
        seeds_needed(0.005, lo, alpha=0.025),
        seeds_needed(0.005, hi, alpha=0.025),
    )
    assert r["seeds_needed_low"] < r["seeds_needed"] < r["seeds_needed_high"]
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "if the true sd equals the observed one" in report and "α = 0.05/2" in report
    needed = aggregate(tmp_path / "sweep", bootstrap=0, plots=False, min_effect=5.0)  # 5 pp: fewer seeds
    assert row(needed, "cot")["seeds_needed"] < r["seeds_needed"]
    assert "to detect ±5.00 pp" in (tmp_path / "sweep" / "report.md").read_text()


def test_delta_plot_draws_the_tables_interval(tmp_path, monkeypatch):
    from src.aggregate import plots

    rng = np.random.default_rng(2)
    sw = Sweep(tmp_path / "sweep")
    for seed, hit in enumerate((0.62, 0.70)):
        job(sw, matches(rng, hit=0.5), attn="none", seed=seed)
        job(sw, matches(rng, hit=hit), attn="ema", seed=seed)
    table = aggregate(tmp_path / "sweep", bootstrap=200, plots=False).ablation
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.setdefault("fig", fig) and path)
    plots.plot_delta(table, "t", tmp_path / "d.png")
    (segment,) = drawn["fig"].axes[0].collections[0].get_segments()  # the CI bar of the one variant
    ema = table[table["attn"] == "ema"].iloc[0]
    assert ema["delta_ci_covers"] == "seeds+images"
    assert segment[:, 0] == pytest.approx(
        100 * np.array([ema["delta_seeds_images_low"], ema["delta_seeds_images_high"]])
    )
