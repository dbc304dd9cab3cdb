"""The ablation table's test-set CIs (paired image bootstrap from matches.npz), Holm-adjusted
significance and seeds needed, on hand-made sweep trees."""
from __future__ import annotations

import numpy as np
import pytest

from src.aggregate import aggregate
from src.aggregate.stats import paired_diff
from src.aggregate.uncertainty import holm, seeds_needed
from src.metrics import map_from_matches

from test_aggregate import Sweep, row


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
    return {"tp": tp, "conf": conf.astype(np.float32), "pred_cls": p_cls, "pred_image": p_img, "gt_cls": gt_cls,
            "gt_image": gt_image, "n_images": n_images, "iouv": np.linspace(0.5, 0.95, 10)}


def job(sweep: Sweep, m: dict, **kw):
    d = sweep.add(map50_95=map_from_matches(m)[0], matches_file="matches.npz", **kw)
    np.savez(d / "matches.npz", **m)
    return d


def test_a_one_seed_table_shows_every_delta_with_its_test_set_ci(tmp_path):
    rng = np.random.default_rng(0)
    sw = Sweep(tmp_path / "sweep")
    job(sw, matches(rng, hit=0.5), attn="none")
    job(sw, matches(rng, hit=0.7), attn="ema")
    job(sw, matches(rng, hit=0.55), attn="cot")
    summary = aggregate(tmp_path / "sweep", bootstrap=200, plots=False)
    for attn in ("ema", "cot"):
        r = row(summary, attn)
        assert r["n"] == 1 and r["delta_boot_low"] < r["delta_map50_95"] < r["delta_boot_high"]
        assert r["boot_n"] == 1 and np.isnan(r["delta_ci_low"])  # no seed CI from one seed
    assert "‡" in summary.terminal and "test-set" in summary.terminal
    cache = list((tmp_path / "sweep" / ".cache" / "bootstrap").glob("*.json"))
    assert len(cache) == 2
    again = aggregate(tmp_path / "sweep", bootstrap=200, plots=False)  # read back from the cache
    assert row(again, "ema")["delta_boot_low"] == row(summary, "ema")["delta_boot_low"]
    off = aggregate(tmp_path / "sweep", bootstrap=0, plots=False)
    assert np.isnan(row(off, "ema")["delta_boot_low"])


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
    adjusted = dict(zip(raw, holm(list(raw.values()))))
    for attn in deltas:
        r = row(summary, attn)
        assert r["p_value"] == pytest.approx(raw[attn]) and r["p_holm"] == pytest.approx(adjusted[attn])
        assert r["significant"] == (adjusted[attn] < 0.05)
    assert adjusted["ema"] == pytest.approx(min(1.0, 2 * raw["ema"]))  # the smallest p, times the 2 tests
    # seeds needed from the observed spread of the paired Δ
    r = row(summary, "cot")
    assert r["seeds_needed"] == seeds_needed(np.mean(deltas["cot"]), np.std(deltas["cot"], ddof=1))
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "seeds would be needed to tell it from 0 at 80 % power" in report
    needed = aggregate(tmp_path / "sweep", bootstrap=0, plots=False, min_effect=5.0)  # 5 pp: fewer seeds
    assert row(needed, "cot")["seeds_needed"] < r["seeds_needed"]
    assert "to detect a Δ of 5.00 pp at 80 % power" in (tmp_path / "sweep" / "report.md").read_text()
