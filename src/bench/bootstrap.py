"""6. Bootstrap: time 1,000 image resamples of one job's mAP, embedded-sized and COCO-sized matches.

The matches are synthetic but shaped like ultralytics' DetectionValidator output: Poisson ground
truth per image, each box found with probability 0.7 by one detection of its class whose IoU is
Beta(8, 3) (a true positive at each threshold it clears), the rest of the image's detections false
positives of random classes, matched detections more confident than the others. Timed in this
process: one `bootstrap_replicates` call per repeat (the plan, the resample draws and every chunk),
the median over repeats.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from src.bench.common import Mode, median, spread

IOUV = np.linspace(0.5, 0.95, 10)

# name: (images, classes, ground truth per image (mean), detections per image (min, max), what it stands for)
SETS = {
    "embedded": (64, 5, 7.0, (2, 4), "shapes val: 64 images, 5 classes (7 boxes each), ~370 detections"),
    "embedded_dense": (64, 5, 7.0, (150, 300), "shapes val as ultralytics validates it (conf 0.001, max_det 300)"),
    "coco": (5000, 80, 7.3, (100, 100), "COCO val2017-sized: 5,000 images, 80 classes, 100 detections each"),
}


def synthetic_matches(
    n_images: int,
    n_classes: int,
    gt_per_image: float,
    max_dets: int,
    seed: int = 0,
    found: float = 0.7,
    iouv: np.ndarray = IOUV,
    min_dets: int | None = None,
) -> dict[str, np.ndarray]:
    """Matches arrays (the matches.npz keys) of a plausible detector on a synthetic validation set.

    Per image: Poisson(gt_per_image) boxes of random classes; each found (prob. `found`) by one
    detection of its class, IoU ~ Beta(8, 3), conf ~ Beta(4, 2); then false positives of random
    classes, conf ~ Beta(1, 6), up to U{min_dets..max_dets} detections in all (min_dets: max_dets/2)."""
    rng = np.random.default_rng(seed)
    n_gt = rng.poisson(gt_per_image, n_images)
    gt_image = np.repeat(np.arange(n_images), n_gt)
    gt_cls = rng.integers(0, n_classes, gt_image.size)
    hit = rng.random(gt_image.size) < found
    n_hit = np.bincount(gt_image[hit], minlength=n_images)
    low = (max_dets + 1) // 2 if min_dets is None else min_dets
    n_det = np.minimum(max_dets, rng.integers(low, max_dets + 1, n_images))
    n_fp = np.maximum(0, n_det - n_hit)
    fp_image = np.repeat(np.arange(n_images), n_fp)
    iou = rng.beta(8.0, 3.0, int(hit.sum()))
    tp = np.concatenate([iou[:, None] >= iouv[None, :], np.zeros((fp_image.size, iouv.size), bool)])
    conf = np.concatenate([rng.beta(4.0, 2.0, iou.size), rng.beta(1.0, 6.0, fp_image.size)]).astype(np.float32)
    pred_cls = np.concatenate([gt_cls[hit], rng.integers(0, n_classes, fp_image.size)])
    pred_image = np.concatenate([gt_image[hit], fp_image])
    return {
        "tp": tp,
        "conf": conf,
        "pred_cls": pred_cls.astype(np.float32),
        "pred_image": pred_image,
        "gt_cls": gt_cls.astype(np.float32),
        "gt_image": gt_image,
        "n_images": np.int64(n_images),
        "iouv": iouv,
    }


def time_bootstrap(matches, n_resamples: int, seed: int) -> float:
    from src.metrics import bootstrap_replicates

    started = time.perf_counter()
    reps = bootstrap_replicates(matches, n_resamples, seed)
    seconds = time.perf_counter() - started
    if reps.shape != (n_resamples, 2) or not np.isfinite(reps).all():
        raise RuntimeError(f"bootstrap returned {reps.shape} with non-finite values")
    return seconds


def run(out: Path, mode: Mode, cache: Path | None = None) -> dict[str, Any]:
    from src.metrics import as_matches, map_from_matches

    started = time.perf_counter()
    n_resamples = 1000
    plan = {
        "embedded": (n_resamples, 1 if mode.quick else 5),
        "embedded_dense": (n_resamples if not mode.quick else 100, 1 if mode.quick else 3),
        "coco": (100 if mode.quick else n_resamples, 1 if mode.quick else 3),
    }
    time_bootstrap(as_matches(synthetic_matches(16, 3, 3.0, 8, seed=99)), 10, 0)  # warm-up: not timed
    sets: dict[str, Any] = {}
    for name, (n_img, n_cls, gt, (low, high), what) in SETS.items():
        resamples, repeats = plan[name]
        m = as_matches(synthetic_matches(n_img, n_cls, gt, high, seed=0, min_dets=low), name)
        t0 = time.perf_counter()
        point = map_from_matches(m)
        point_seconds = time.perf_counter() - t0
        times = [time_bootstrap(m, resamples, seed=i) for i in range(repeats)]
        per_1000 = median(times) * 1000.0 / resamples
        sets[name] = {
            "what": what,
            "images": n_img,
            "classes": n_cls,
            "predictions": m.n_predictions,
            "gt_boxes": m.n_gt,
            "true_positives_at_50": int(m.tp[:, 0].sum()),
            "resamples": resamples,
            "repeats": repeats,
            "seconds": times,
            "median_seconds": median(times),
            "range": spread(times),
            "seconds_per_1000": per_1000,
            "extrapolated": resamples != n_resamples,
            "point_seconds": point_seconds,
            "map50_95": point[0],
            "map50": point[1],
        }
    emb, coco = sets["embedded"], sets["coco"]
    rows = [
        [
            name,
            f"{v['images']:,}",
            v["classes"],
            f"{v['predictions']:,}",
            f"{v['gt_boxes']:,}",
            f"{v['point_seconds'] * 1000:.1f}",
            v["resamples"],
            v["repeats"],
            f"{v['median_seconds']:.2f}",
            f"{v['seconds_per_1000']:.1f}" + (" (extrapolated)" if v["extrapolated"] else ""),
        ]
        for name, v in sets.items()
    ]
    return {
        "name": "bootstrap",
        "title": "6. Test-set bootstrap",
        "about": (
            "`src.metrics.bootstrap_replicates(matches, 1000)`: images resampled with "
            "replacement, mAP50-95 and mAP50 recomputed per replicate from the stored matches "
            "(numpy over replicates, chunked to 64 MiB), on synthetic matches; in-process, one call "
            "per repeat."
        ),
        "figures": {"sets": sets},
        "headline": [
            [
                f"bootstrap 1,000 resamples, embedded val (64 img, {emb['predictions']:,} det) (s)",
                f"{emb['seconds_per_1000']:.2f}",
                "<= 60",
            ],
            [
                f"bootstrap 1,000 resamples, COCO-sized ({coco['predictions']:,} det) (s)"
                + (" (extrapolated)" if coco["extrapolated"] else ""),
                f"{coco['seconds_per_1000']:.1f}",
                "<= 600",
            ],
        ],
        "tables": [
            {
                "title": "Seconds per bootstrap (median over repeats)",
                "columns": [
                    "set",
                    "images",
                    "classes",
                    "detections",
                    "GT boxes",
                    "point mAP ms",
                    "resamples",
                    "runs",
                    "median s",
                    "s per 1,000 resamples",
                ],
                "rows": rows,
            }
        ],
        "notes": [
            "A paired Δ bootstrap costs two of these (the same resamples scored for both jobs).",
            "Time grows with detections x resamples plus true positives x thresholds x resamples; "
            "memory is bounded by the chunk size, not by the number of resamples.",
        ],
        "seconds": time.perf_counter() - started,
    }
