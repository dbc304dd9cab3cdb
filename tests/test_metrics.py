"""src/metrics (mAP from matches, image bootstrap) against hand-worked answers and ultralytics' own mAP."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src import metrics as M
from src.bench.bootstrap import synthetic_matches

ROOT = Path(__file__).resolve().parents[1]
IOUV = np.linspace(0.5, 0.95, 10)


def matches(tp, conf, pred_cls, pred_image, gt_cls, gt_image, n_images) -> M.Matches:
    tp = np.asarray(tp, bool).reshape(-1, 10)
    return M.as_matches(
        {
            "tp": tp,
            "conf": np.asarray(conf, np.float32),
            "pred_cls": np.asarray(pred_cls),
            "pred_image": np.asarray(pred_image, int),
            "gt_cls": np.asarray(gt_cls),
            "gt_image": np.asarray(gt_image, int),
            "n_images": n_images,
            "iouv": IOUV,
        }
    )


def random_matches(rng, n_images: int, n_cls: int, ties: bool = False) -> M.Matches:
    """Valid one-to-one matches: some classes without detections, detections of a class without GT."""
    n_gt = rng.integers(0, 5, n_images)
    gt_image = np.repeat(np.arange(n_images), n_gt)
    gt_cls = rng.integers(0, n_cls, gt_image.size)
    hit = rng.random(gt_image.size) < 0.7
    iou = rng.beta(6, 2, int(hit.sum()))
    n_fp = int(rng.integers(0, 6 * n_images + 1))
    fp_image = rng.integers(0, n_images, n_fp)
    tp = np.concatenate([iou[:, None] >= IOUV, np.zeros((n_fp, 10), bool)])
    conf = np.concatenate([rng.beta(4, 2, iou.size), rng.beta(1, 4, n_fp)])
    if ties:
        conf = np.round(conf, 1)  # many exact ties: the sort order must be ultralytics' own
    pred_cls = np.concatenate([gt_cls[hit], rng.integers(0, n_cls + 1, n_fp)])  # class n_cls: no GT
    pred_image = np.concatenate([gt_image[hit], fp_image])
    return M.as_matches(
        {
            "tp": tp,
            "conf": conf.astype(np.float32),
            "pred_cls": pred_cls.astype(np.float32),
            "pred_image": pred_image,
            "gt_cls": gt_cls.astype(np.float32),
            "gt_image": gt_image,
            "n_images": n_images,
            "iouv": IOUV,
        }
    )


def ultralytics_map(tp, conf, pred_cls, gt_cls) -> tuple[float, float]:
    """What ultralytics' DetMetrics reports: all_ap.mean(), all_ap[:, 0].mean(), 0 without classes."""
    from ultralytics.utils.metrics import ap_per_class

    ap = ap_per_class(tp, conf, pred_cls, gt_cls)[5]
    return (float(ap.mean()), float(ap[:, 0].mean())) if len(ap) else (0.0, 0.0)


# ----------------------------------------------------------------------------- mAP itself
def test_map_equals_ultralytics_ap_per_class():
    rng = np.random.default_rng(0)
    for trial in range(120):
        m = random_matches(rng, int(rng.integers(1, 25)), int(rng.integers(1, 6)), ties=trial % 2 == 0)
        ours = M.map_from_matches(m)
        ref = ultralytics_map(m.tp, m.conf, m.pred_cls.astype(np.float32), m.gt_cls.astype(np.float32))
        assert ours == pytest.approx(ref, abs=1e-9), trial


def test_map_edge_cases_match_ultralytics():
    # no detections at all; no ground truth at all; a class with GT but no detection
    none_det = matches(np.zeros((0, 10)), [], [], [], [0, 1], [0, 0], 1)
    assert M.map_from_matches(none_det) == (0.0, 0.0)
    no_gt = matches(np.ones((2, 10)) * 0, [0.9, 0.8], [0, 1], [0, 0], [], [], 2)
    assert M.map_from_matches(no_gt) == (0.0, 0.0)
    half = matches(np.ones((1, 10)), [0.9], [0], [0], [0, 1], [0, 0], 1)
    assert M.map_from_matches(half) == pytest.approx(ultralytics_map(half.tp, half.conf, half.pred_cls, half.gt_cls))
    assert M.map_from_matches(half)[0] == pytest.approx(0.995 / 2)  # ultralytics: a perfect class scores 0.995


def test_weights_equal_ultralytics_on_the_resampled_set():
    """A replicate's mAP is ap_per_class on the set with each image's boxes repeated count times."""
    rng = np.random.default_rng(1)
    for trial in range(60):
        m = random_matches(rng, int(rng.integers(1, 20)), int(rng.integers(1, 5)))
        w = rng.integers(0, 4, m.n_images)
        pi = np.concatenate(
            [np.flatnonzero(m.pred_image == i) for i in range(m.n_images) for _ in range(w[i])] + [np.zeros(0, int)]
        )
        gi = np.concatenate(
            [np.flatnonzero(m.gt_image == i) for i in range(m.n_images) for _ in range(w[i])] + [np.zeros(0, int)]
        )
        ref = ultralytics_map(m.tp[pi], m.conf[pi], m.pred_cls[pi], m.gt_cls[gi])
        assert M.map_from_matches(m, w) == pytest.approx(ref, abs=1e-9), trial


# ----------------------------------------------------------------------------- bootstrap
def test_one_image_repeated_gives_a_zero_width_ci():
    rng = np.random.default_rng(2)
    n_img, conf = 6, rng.random(4)
    tp = np.array([[1] * 10, [1] * 6 + [0] * 4, [0] * 10, [1] * 10], bool)
    m = matches(
        np.tile(tp, (n_img, 1)),
        np.tile(conf, n_img),
        [0, 0, 1, 1] * n_img,
        np.repeat(np.arange(n_img), 4),
        [0, 0, 1] * n_img,
        np.repeat(np.arange(n_img), 3),
        n_img,
    )
    ci = M.bootstrap_ci(m, n_resamples=200, seed=3)
    for key in ("map50_95", "map50"):
        lo, hi = ci[key]
        assert hi - lo < 1e-12 and lo == pytest.approx(ci["point"][key], abs=1e-12)


def test_two_images_ap_one_and_zero_give_the_right_distribution():
    """Image A: one box found at every IoU (AP 1, which ultralytics scores 0.995: its interpolated
    precision is 0 at recall 1 itself); image B: one box, no detection (AP 0). Two draws with
    replacement: {A, A} (p 1/4) -> 0.995, {B, B} (1/4) -> 0, {A, B} (1/2) -> recall stops at 0.5:
    precision 1 on x_0..x_49, 0 from x_50, so the trapezoid gives 0.49 + 0.005 = 0.495."""
    m = matches(np.ones((1, 10)), [0.9], [0], [0], [0, 0], [0, 1], 2)
    assert M.map_from_matches(m) == pytest.approx((0.495, 0.495))
    n = 4000
    reps = M.bootstrap_replicates(m, n, seed=7)
    values = np.round(reps[:, 0], 9)
    assert set(values) <= {0.0, 0.495, 0.995}
    assert np.allclose(reps[:, 0], reps[:, 1], rtol=0, atol=1e-12)
    tol = 4.5 * math.sqrt(0.25 * 0.75 / n)  # 4.5 sigma of a binomial share
    assert np.mean(values == 0.995) == pytest.approx(0.25, abs=tol)
    assert np.mean(values == 0.0) == pytest.approx(0.25, abs=tol)
    assert np.mean(values == 0.495) == pytest.approx(0.5, abs=4.5 * math.sqrt(0.25 / n))
    ci = M.bootstrap_ci(m, n_resamples=n, seed=7)
    assert ci["map50_95"] == pytest.approx([0.0, 0.995])
    assert ci["n_resamples"] == n and ci["seed"] == 7 and ci["point"]["map50_95"] == pytest.approx(0.495)


def _perturbed(a: dict, seed: int) -> dict:
    """Variant b of a: the same images, confidences jittered, 10% of its true positives lost."""
    rng = np.random.default_rng(seed)
    b = dict(a)
    b["conf"] = (a["conf"] * np.exp(rng.normal(0, 0.1, a["conf"].size))).astype(np.float32)
    lose = rng.random(a["tp"].shape[0]) < 0.1
    b["tp"] = a["tp"] & ~lose[:, None]
    return b


def test_paired_ci_is_narrower_than_unpaired_on_correlated_variants():
    a = synthetic_matches(150, 4, 5.0, 12, seed=0)
    b = _perturbed(a, 1)
    paired = M.paired_bootstrap_delta(a, b, n_resamples=400, seed=0)
    pa, pb = M.map_from_matches(a), M.map_from_matches(b)
    assert paired["map50_95"]["delta"] == pytest.approx(pb[0] - pa[0])
    unpaired = M.bootstrap_replicates(b, 400, 1)[:, 0] - M.bootstrap_replicates(a, 400, 0)[:, 0]  # own resamples
    lo, hi = paired["map50_95"]["ci"]
    u_lo, u_hi = np.quantile(unpaired, [0.025, 0.975])
    assert 0 < hi - lo < 0.75 * (u_hi - u_lo)  # 0.40 here
    assert paired["paired"]
    assert lo <= paired["map50_95"]["replicate_mean"] <= hi


def test_paired_uses_the_same_resamples_and_needs_the_same_images():
    a = synthetic_matches(40, 3, 4.0, 8, seed=0)
    b = _perturbed(a, 2)
    r = M.paired_bootstrap_delta(a, b, n_resamples=50, seed=5)
    d = M.bootstrap_replicates(b, 50, 5) - M.bootstrap_replicates(a, 50, 5)
    assert r["map50_95"]["replicate_mean"] == pytest.approx(d[:, 0].mean())
    other = synthetic_matches(40, 3, 4.0, 8, seed=9)
    with pytest.raises(ValueError, match="same validation images"):
        M.paired_bootstrap_delta(a, other, n_resamples=10)
    with pytest.raises(ValueError, match="n_images"):
        M.paired_bootstrap_delta(a, synthetic_matches(41, 3, 4.0, 8, seed=0), n_resamples=10)


def test_replicates_do_not_depend_on_the_chunk_size_and_zero_turns_it_off():
    m = synthetic_matches(30, 3, 4.0, 10, seed=4)
    one = M.bootstrap_replicates(m, 37, seed=11, max_bytes=1)  # one replicate per chunk
    many = M.bootstrap_replicates(m, 37, seed=11, max_bytes=2**30)  # all in one chunk
    assert np.allclose(one, many, rtol=0, atol=1e-12)
    assert not np.allclose(one, M.bootstrap_replicates(m, 37, seed=12))
    counts = np.stack(list(M.resample_counts(30, 37, 11)))
    assert (counts.sum(1) == 30).all()
    assert M.map_from_matches(m, counts[3]) == pytest.approx(tuple(one[3]), abs=1e-12)
    assert M.bootstrap_ci(m, n_resamples=0) is None
    assert M.paired_bootstrap_delta(m, m, n_resamples=0) is None


# ----------------------------------------------------------------------------- matches.npz
def test_load_matches_round_trip_and_clear_errors(tmp_path):
    a = synthetic_matches(10, 3, 3.0, 6, seed=0)
    path = tmp_path / "matches.npz"
    np.savez(path, **a)
    m = M.load_matches(path)
    assert m.n_images == 10 and m.tp.dtype == bool and m.pred_cls.dtype == np.int64
    assert M.map_from_matches(m) == M.map_from_matches(a)

    def bad(match, **change):
        np.savez(path, **{**a, **change})
        with pytest.raises(ValueError, match=match):
            M.load_matches(path)

    bad("tp must be 2-D", tp=a["tp"][:, 0])
    bad(r"conf has shape", conf=a["conf"][:-1])
    bad("iouv has shape", iouv=a["iouv"][:5])
    bad("gt_image holds image 10", gt_image=a["gt_image"] + 10 - a["gt_image"].max())
    bad("whole numbers", pred_cls=a["pred_cls"] + 0.5)
    bad("n_images must be", n_images=np.array([1, 2]))
    two_tps = {
        "tp": np.ones((2, 10), bool),
        "conf": np.array([0.9, 0.8], np.float32),
        "pred_cls": [1, 1],
        "pred_image": [3, 3],
        "gt_cls": [1, 0],
        "gt_image": [3, 3],
        "n_images": 5,
        "iouv": IOUV,
    }
    with pytest.raises(ValueError, match="image 3, class 1: 2 true positives at IoU 0.50 but 1 ground-truth"):
        M.as_matches(two_tps)
    missing = {k: v for k, v in a.items() if k != "gt_cls"}
    np.savez(path, **missing)
    with pytest.raises(ValueError, match="missing gt_cls"):
        M.load_matches(path)
    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        M.load_matches(tmp_path / "broken.npz")


# ----------------------------------------------------------------------------- no torch
def test_module_imports_no_torch():
    # src.metrics runs in the job too: numpy only; the aggregator's statistics may use scipy, never torch
    code = (
        "import sys, src.metrics\n"
        "bad = [m for m in ('torch', 'ultralytics', 'torchvision', 'scipy') if m in sys.modules]\n"
        "import src.aggregate.uncertainty\n"
        "bad += [m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- bench section
def test_bench_section_runs_on_tiny_sets(monkeypatch, tmp_path):
    from src.bench import bootstrap
    from src.bench.common import QUICK

    monkeypatch.setattr(
        bootstrap, "SETS", {"embedded": (12, 3, 3.0, (2, 4), "tiny"), "coco": (30, 4, 3.0, (5, 10), "small")}
    )
    section = bootstrap.run(tmp_path, QUICK)
    assert section["name"] == "bootstrap" and len(section["headline"]) == 2
    sets = section["figures"]["sets"]
    assert sets["embedded"]["resamples"] == 1000 and sets["coco"]["extrapolated"]
    assert all(v["seconds_per_1000"] > 0 for v in sets.values())
