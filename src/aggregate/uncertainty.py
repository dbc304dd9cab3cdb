"""Test-set uncertainty from one run (image bootstrap of mAP), Holm's correction, seeds needed.

Three tools for the table's three kinds of uncertainty (numpy only, no torch):

* `bootstrap_ci`, `paired_bootstrap_delta`: resample the validation images with replacement and
  recompute mAP50-95 / mAP50 from the matches the final validation made once (`matches.npz`). It
  measures how much the score depends on which images happen to be in the validation set; it
  says nothing about training-seed variation.
* `holm`: Holm's step-down adjustment over the variants compared with the same baseline.
* `seeds_needed`: the number of seeds a two-sided paired t-test needs for a given power, with the
  power computed exactly from the noncentral t distribution.

mAP here is ultralytics' (`ultralytics.utils.metrics.ap_per_class` + `compute_ap`): per class that
has ground truth, detections sorted by confidence, recall = TP / n_gt, precision = TP / (TP + FP),
the precision envelope, 101-point interpolation with `np.interp` and the trapezoid rule; mAP is the
mean over the classes that have ground truth (a class with ground truth but no detections counts
as AP 0; detections of a class without ground truth are ignored; no ground truth at all gives 0).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from .stats import t_ppf

AP_X = np.linspace(0, 1, 101)        # ultralytics' _AP_X: the 101 recall points (COCO)
_AP_DX = np.diff(AP_X)
_AP_X_EXT = np.append(AP_X, np.inf)  # index 101: "beyond every recall point"
_EPS = 1e-16                         # ultralytics' ap_per_class eps in recall = tp / (n + eps)
KEYS = ("tp", "conf", "pred_cls", "pred_image", "gt_cls", "gt_image", "n_images", "iouv")
DEFAULT_MAX_BYTES = 64 * 2**20       # working memory of one bootstrap chunk (small chunks stay in cache)


# ============================================================================ matches
@dataclass(frozen=True, eq=False)
class Matches:
    """One validation's matches: what ultralytics' DetectionValidator accumulates, plus image indices."""

    tp: np.ndarray          # bool (P, T): prediction p is a true positive at IoU threshold t
    conf: np.ndarray        # float (P,), dtype kept as saved (the sort order of ties depends on it)
    pred_cls: np.ndarray    # int64 (P,)
    pred_image: np.ndarray  # int64 (P,) in [0, n_images)
    gt_cls: np.ndarray      # int64 (G,)
    gt_image: np.ndarray    # int64 (G,) in [0, n_images)
    n_images: int
    iouv: np.ndarray        # float (T,); column 0 is mAP50's threshold, as in ultralytics

    @property
    def n_predictions(self) -> int:
        return int(self.tp.shape[0])

    @property
    def n_gt(self) -> int:
        return int(self.gt_cls.shape[0])


def _integral(name: str, a: np.ndarray, src: str) -> np.ndarray:
    """int64 copy of an integer-valued array (ultralytics saves classes as float32)."""
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{src}: {name} must hold integers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{src}: {name} must hold whole numbers")
    out = a.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{src}: {name} must be >= 0, found {int(out.min())}")
    return out


def as_matches(data: Matches | Mapping[str, Any], source: str = "matches") -> Matches:
    """Validate arrays (a dict, an `np.load` result or a Matches) and return a Matches.

    Checks shapes, dtypes, index ranges and that no (image, class) has more true positives at a
    threshold than ground-truth boxes (one-to-one matching); each error names the array at fault."""
    if isinstance(data, Matches):
        return data
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise ValueError(f"{source}: missing {', '.join(missing)} (need {', '.join(KEYS)})")
    arr = {k: np.asarray(data[k]) for k in KEYS}
    n_images = arr["n_images"]
    if n_images.shape != () or not (np.issubdtype(n_images.dtype, np.integer)
                                    or (np.issubdtype(n_images.dtype, np.floating) and float(n_images).is_integer())):
        raise ValueError(f"{source}: n_images must be one whole number, got {n_images!r}")
    n_images = int(n_images)
    if n_images < 1:
        raise ValueError(f"{source}: n_images must be >= 1, got {n_images}")
    tp = arr["tp"]
    if tp.ndim != 2 or tp.shape[1] < 1:
        raise ValueError(f"{source}: tp must be 2-D (predictions, IoU thresholds), got shape {tp.shape}")
    if tp.dtype != bool:
        if not (np.issubdtype(tp.dtype, np.integer) or np.issubdtype(tp.dtype, np.floating)) \
                or not np.isin(tp, (0, 1)).all():
            raise ValueError(f"{source}: tp must be boolean (or 0/1), got dtype {tp.dtype}")
        tp = tp.astype(bool)
    n_pred, n_thr = tp.shape
    iouv = arr["iouv"]
    if iouv.shape != (n_thr,):
        raise ValueError(f"{source}: iouv has shape {iouv.shape}, tp has {n_thr} IoU thresholds")
    conf = arr["conf"]
    if not np.issubdtype(conf.dtype, np.floating):
        conf = conf.astype(np.float64)
    for k, a in (("conf", conf), ("pred_cls", arr["pred_cls"]), ("pred_image", arr["pred_image"])):
        if a.shape != (n_pred,):
            raise ValueError(f"{source}: {k} has shape {a.shape}, expected ({n_pred},) like tp's first axis")
    if not np.all(np.isfinite(conf)):
        raise ValueError(f"{source}: conf holds NaN or infinite values")
    gt_cls, gt_image = arr["gt_cls"], arr["gt_image"]
    if gt_cls.ndim != 1 or gt_image.shape != gt_cls.shape:
        raise ValueError(f"{source}: gt_cls and gt_image must be 1-D of one length, got {gt_cls.shape} "
                         f"and {gt_image.shape}")
    pred_cls = _integral("pred_cls", arr["pred_cls"], source)
    pred_image = _integral("pred_image", arr["pred_image"], source)
    gt_cls, gt_image = _integral("gt_cls", gt_cls, source), _integral("gt_image", gt_image, source)
    for k, a in (("pred_image", pred_image), ("gt_image", gt_image)):
        if a.size and a.max() >= n_images:
            raise ValueError(f"{source}: {k} holds image {int(a.max())}, but n_images is {n_images}")
    _check_one_to_one(tp, pred_cls, pred_image, gt_cls, gt_image, iouv, source)
    return Matches(tp=tp, conf=conf, pred_cls=pred_cls, pred_image=pred_image, gt_cls=gt_cls,
                   gt_image=gt_image, n_images=n_images, iouv=iouv.astype(np.float64))


def _check_one_to_one(tp, pred_cls, pred_image, gt_cls, gt_image, iouv, source) -> None:
    """Each (image, class) has at most as many TPs per threshold as ground-truth boxes."""
    hit = tp.any(1)
    if not hit.any():
        return
    n_cls = int(max(pred_cls.max(initial=0), gt_cls.max(initial=0))) + 1
    gt_key = gt_image * n_cls + gt_cls
    p_key = pred_image[hit] * n_cls + pred_cls[hit]
    keys, inv = np.unique(np.concatenate([gt_key, p_key]), return_inverse=True)
    n_gt = np.bincount(inv[:gt_key.size], minlength=keys.size)
    n_tp = np.zeros((keys.size, tp.shape[1]), np.int64)
    np.add.at(n_tp, inv[gt_key.size:], tp[hit].astype(np.int64))
    bad = np.argwhere(n_tp > n_gt[:, None])
    if bad.size:
        k, t = bad[0]
        img, cls = divmod(int(keys[k]), n_cls)
        raise ValueError(f"{source}: image {img}, class {cls}: {int(n_tp[k, t])} true positives at IoU "
                         f"{float(iouv[t]):.2f} but {int(n_gt[k])} ground-truth boxes; tp must come from "
                         f"one-to-one matching")


def load_matches(path: str | Path) -> Matches:
    """Read and validate a job's `matches.npz` (see Matches for the arrays)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from exc
    return as_matches(data, str(path))


# ============================================================================ the mAP engine
class _Plan:
    """Everything about one Matches that no resample changes: sort order, segments, point layout.

    A curve is one (IoU threshold, class) segment. For each true positive p in it (in confidence
    order) three points are kept: Q = the state just before p (tp, fp so far), S = after p's first
    copy and E = after all of p's copies; plus F, the state after the last detection. With integer
    weights w (an image drawn k times gives its boxes weight k) this reproduces ultralytics' AP on
    the resampled set with every copy present: between two true positives the false positives only
    lower the precision at a constant recall, and np.interp reads only the first and the last point
    at a recall (the envelope keeps the first's precision); a TP drawn k times rises from Q to S and
    then stays flat (its copies all share E's envelope). Ties in confidence between different
    detections are the one exception: their order in a resampled set is arbitrary anyway.
    """

    def __init__(self, m: Matches):
        self.n_images = m.n_images
        classes, gt_ci = np.unique(m.gt_cls, return_inverse=True)
        C, T = classes.size, m.tp.shape[1]
        K = T * C
        self.C, self.T, self.K = C, T, K
        order = np.argsort(-m.conf)  # exactly ultralytics' order, ties included
        cls_sorted = m.pred_cls[order]
        ci = np.searchsorted(classes, cls_sorted)
        keep = ci < C
        keep[keep] = classes[ci[keep]] == cls_sorted[keep]  # classes without ground truth never count
        order, ci = order[keep], ci[keep]
        by_class = np.argsort(ci, kind="stable")
        order, ci = order[by_class], ci[by_class]
        self.pred_image = m.pred_image[order]
        P = order.size
        cls_start = np.searchsorted(ci, np.arange(C), "left")
        cls_end = np.searchsorted(ci, np.arange(C), "right")
        self.cls_start, self.cls_end = cls_start, cls_end
        tj, ti = np.nonzero(m.tp[order].T)          # threshold-major, then class, then confidence
        seg = tj * C + ci[ti]
        E = ti.size
        self.ent_pred, self.ent_cls_start = ti, cls_start[ci[ti]]
        per_seg = np.bincount(seg, minlength=K)
        seg_ent_start = np.concatenate([[0], np.cumsum(per_seg)[:-1]])
        self.ent_seg_start = seg_ent_start[seg]     # first entry of each entry's segment
        self.seg_ent_start, self.seg_ent_end = seg_ent_start, seg_ent_start + per_seg
        self.seg_cls = np.arange(K) % C
        L = 3 * per_seg + 1
        pt_start = np.concatenate([[0], np.cumsum(L)[:-1]])
        M = int(L.sum())
        self.L, self.pt_start, self.M, self.E, self.P = L, pt_start, M, E, P
        # points = concat([Q(E), S(E), E(E), F(K)])[:, perm], laid out segment by segment
        perm = np.empty(M, np.int64)
        q = pt_start[seg] + 3 * (np.arange(E) - seg_ent_start[seg])
        perm[q], perm[q + 1], perm[q + 2] = np.arange(E), E + np.arange(E), 2 * E + np.arange(E)
        perm[pt_start + L - 1] = 3 * E + np.arange(K)
        self.perm = perm
        pt_seg = np.repeat(np.arange(K), L)
        self.pt_cls = pt_seg % C
        self.pt_seg = pt_seg
        self.offset = 2.0 * (K - pt_seg)             # keeps the reverse running max inside a segment
        gt_order = np.argsort(gt_ci, kind="stable")
        self.gt_image = m.gt_image[gt_order]
        self.gt_cls_start = np.searchsorted(gt_ci[gt_order], np.arange(C), "left")
        self.gt_cls_end = np.searchsorted(gt_ci[gt_order], np.arange(C), "right")
        self.max_per_image = int(np.bincount(m.pred_image, minlength=m.n_images).max(initial=0))

    def bytes_per_row(self) -> int:
        """Rough working memory of one replicate, to size chunks."""
        return 16 * self.P + 80 * self.E + 112 * self.M + 7000 * self.K + 8 * self.n_images + 8 * len(self.gt_image)

    def evaluate(self, counts: np.ndarray) -> np.ndarray:
        """(B, N) image multiplicities -> (B, 2) array of (mAP50-95, mAP50), one row per replicate."""
        counts = np.asarray(counts)
        B = counts.shape[0]
        # running totals stay below (images drawn) x (detections per image): int32 unless huge
        it = np.int32 if int(counts.sum(axis=1).max(initial=0)) * max(self.max_per_image, 1) < 2**31 else np.int64
        counts = counts.astype(it, copy=False)
        C, T, K, M = self.C, self.T, self.K, self.M
        out = np.zeros((B, 2))
        if C == 0:
            return out  # no ground truth: ultralytics reports 0
        # ground truth per class: sum of the weights of its boxes
        wg = np.zeros((B, len(self.gt_image) + 1), np.int64)
        np.cumsum(counts[:, self.gt_image], axis=1, out=wg[:, 1:])
        n_gt = (wg[:, self.gt_cls_end] - wg[:, self.gt_cls_start]).astype(np.float64)  # (B, C)
        # detections: weights, running totals per class
        w = counts[:, self.pred_image]
        W = np.zeros((B, self.P + 1), it)
        np.cumsum(w, axis=1, dtype=it, out=W[:, 1:])           # W[:, i] = weight of detections before i
        w_tot = W[:, self.cls_end] - W[:, self.cls_start]       # (B, C)
        ep = self.ent_pred
        w_e = w[:, ep]
        before = W[:, ep] - W[:, self.ent_cls_start]            # same-class detections ranked before (tp + fp)
        cs = np.zeros((B, self.E + 1), it)
        np.cumsum(w_e, axis=1, dtype=it, out=cs[:, 1:])
        tp_after = cs[:, 1:] - cs[:, self.ent_seg_start]
        tp_prev = tp_after - w_e
        u = np.minimum(w_e, 1)
        tp_seg = cs[:, self.seg_ent_end] - cs[:, self.seg_ent_start]  # (B, K)
        tp_pts = np.concatenate([tp_prev, tp_prev + u, tp_after, tp_seg], axis=1)[:, self.perm]
        den_pts = np.concatenate([before, before + u, before + w_e, w_tot[:, self.seg_cls]], axis=1)[:, self.perm]
        del w, W, w_e, before, cs, tp_after, tp_prev, u
        tp_f = tp_pts.astype(np.float64)
        prec = np.ones((B, M))
        np.divide(tp_f, den_pts, out=prec, where=den_pts > 0)   # no detection yet: precision 1 (the sentinel's)
        del den_pts
        recall = tp_f / (n_gt[:, self.pt_cls] + _EPS)           # as ultralytics: tpc / (n_l + eps)
        del tp_f, tp_pts
        # precision envelope: running max from the right within each segment
        prec += self.offset
        env = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]
        env -= self.offset
        del prec
        # for each recall point x_k: how many points of the segment have recall <= x_k (np.interp's j + 1)
        k = np.clip(np.ceil(recall * 100.0), 0, 101).astype(np.int64)
        k -= (k > 0) & (_AP_X_EXT[np.maximum(k - 1, 0)] >= recall)
        k += _AP_X_EXT[k] < recall
        k += (np.arange(B, dtype=np.int64)[:, None] * K + self.pt_seg) * 102
        hist = np.bincount(k.ravel(), minlength=B * K * 102).reshape(B, K, 102)
        del k
        cnt = np.cumsum(hist, axis=2)[:, :, :101]               # >= 1: each segment starts at recall 0
        full = cnt >= self.L[None, :, None]                     # x >= the last recall: ultralytics gives 0
        left = self.pt_start[None, :, None] + cnt - 1
        right = np.minimum(left + 1, (self.pt_start + self.L - 1)[None, :, None])
        rows = (np.arange(B) * M)[:, None, None]
        rf, ef = recall.ravel(), env.ravel()
        xl, yl = rf[rows + left], ef[rows + left]
        xr, yr = rf[rows + right], ef[rows + right]
        dx = np.where(full, 1.0, xr - xl)
        slope = (yr - yl) / dx
        y = np.where(full, 0.0, slope * (AP_X - xl) + yl)       # np.interp between the two points
        ap = (_AP_DX * (y[:, :, 1:] + y[:, :, :-1]) / 2.0).sum(axis=2).reshape(B, T, C)  # trapezoid
        present = n_gt > 0
        nc = present.sum(axis=1)
        denom = np.maximum(nc, 1)
        out[:, 0] = (ap.mean(axis=1) * present).sum(axis=1) / denom
        out[:, 1] = (ap[:, 0] * present).sum(axis=1) / denom
        out[nc == 0] = 0.0
        return out


def map_from_matches(m: Matches | Mapping[str, Any], weights: Sequence[int] | np.ndarray | None = None) \
        -> tuple[float, float]:
    """(mAP50-95, mAP50) of the matches, exactly as ultralytics' ap_per_class computes it.

    `weights`: one whole number per image, how many times it is in the set (a bootstrap resample);
    None means every image once. The result equals ap_per_class on the set with every box of image
    i repeated weights[i] times (see _Plan)."""
    m = as_matches(m)
    if weights is None:
        counts = np.ones((1, m.n_images), np.int64)
    else:
        counts = np.asarray(weights)
        if counts.shape != (m.n_images,):
            raise ValueError(f"weights must have one entry per image ({m.n_images}), got shape {counts.shape}")
        counts = _integral("weights", counts, "map_from_matches")[None]
    r = _Plan(m).evaluate(counts)[0]
    return float(r[0]), float(r[1])


# ============================================================================ bootstrap
def resample_counts(n_images: int, n_resamples: int, seed: int):
    """Image multiplicities of each replicate, one (N,) row at a time: N draws with replacement.

    Drawn row by row from one generator, so the replicates do not depend on the chunk size and
    two jobs bootstrapped with the same seed and n_images get the same resampled images."""
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield np.bincount(rng.integers(0, n_images, n_images), minlength=n_images)


def bootstrap_replicates(m: Matches | Mapping[str, Any], n_resamples: int = 1000, seed: int = 0,
                         max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """(n_resamples, 2) array of (mAP50-95, mAP50) over image resamples, computed in chunks of
    replicates sized to `max_bytes` (numpy over the replicates of a chunk; no loop over images)."""
    return _replicates(_Plan(as_matches(m)), n_resamples, seed, max_bytes)


def _replicates(plan: _Plan, n_resamples: int, seed: int, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    chunk = int(max(1, min(n_resamples, max_bytes // max(plan.bytes_per_row(), 1))))
    out = np.empty((n_resamples, 2))
    gen = resample_counts(plan.n_images, n_resamples, seed)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        counts = np.stack([next(gen) for _ in range(rows)])
        out[start:start + rows] = plan.evaluate(counts)
    return out


def _interval(values: np.ndarray, level: float) -> list[float]:
    lo, hi = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return [float(lo), float(hi)]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_ci(m: Matches | Mapping[str, Any], n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> dict[str, Any] | None:
    """Percentile bootstrap CI of mAP50-95 and mAP50 over the validation images; None if n_resamples == 0.

    Method: draw n_images images with replacement, recompute mAP on that set (from the stored
    matches, nothing re-evaluated), repeat; the CI is the (1-level)/2 and (1+level)/2 quantiles.
    Test-set uncertainty only: the same trained model, other images from the same distribution."""
    if not n_resamples:
        return None
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    _check_level(level)
    plan = _Plan(as_matches(m))
    reps = _replicates(plan, n_resamples, seed)
    point = plan.evaluate(np.ones((1, plan.n_images), np.int64))[0]
    return {"map50_95": _interval(reps[:, 0], level), "map50": _interval(reps[:, 1], level),
            "n_resamples": int(n_resamples), "seed": int(seed), "level": float(level),
            "method": "percentile bootstrap over validation images",
            "point": {"map50_95": float(point[0]), "map50": float(point[1])}}


def _same_images(a: Matches, b: Matches) -> None:
    if a.n_images != b.n_images:
        raise ValueError(f"paired bootstrap needs the same validation images: n_images {a.n_images} vs {b.n_images}")
    n_cls = int(max(a.gt_cls.max(initial=0), b.gt_cls.max(initial=0))) + 1
    ka = np.sort(a.gt_image * n_cls + a.gt_cls)
    kb = np.sort(b.gt_image * n_cls + b.gt_cls)
    if ka.shape != kb.shape or not np.array_equal(ka, kb):
        raise ValueError("paired bootstrap needs the same validation images: the ground-truth boxes per "
                         "image and class differ between the two jobs")


def _delta(ra: np.ndarray, rb: np.ndarray, pa, pb, n_resamples, seed, level, paired) -> dict[str, Any]:
    d = rb - ra
    return {"map50_95": {"delta": pb[0] - pa[0], "ci": _interval(d[:, 0], level),
                         "replicate_mean": float(d[:, 0].mean())},
            "map50": {"delta": pb[1] - pa[1], "ci": _interval(d[:, 1], level),
                      "replicate_mean": float(d[:, 1].mean())},
            "n_resamples": int(n_resamples), "seed": int(seed), "level": float(level), "paired": paired}


def paired_bootstrap_delta(a: Matches | Mapping[str, Any], b: Matches | Mapping[str, Any],
                           n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any] | None:
    """Percentile CI of Δ = mAP(b) - mAP(a) for two models validated on the same images; None if n_resamples == 0.

    Paired: each replicate draws one set of images and scores both models on it, so what the two
    share (easy and hard images) cancels in Δ. `delta` is the point estimate on the full set,
    `replicate_mean` the mean of the replicate deltas (their difference is the bootstrap's bias)."""
    if not n_resamples:
        return None
    _check_level(level)
    a, b = as_matches(a, "a"), as_matches(b, "b")
    _same_images(a, b)
    ra, rb = bootstrap_replicates(a, n_resamples, seed), bootstrap_replicates(b, n_resamples, seed)
    return _delta(ra, rb, map_from_matches(a), map_from_matches(b), n_resamples, seed, level, True)


def unpaired_bootstrap_delta(a: Matches | Mapping[str, Any], b: Matches | Mapping[str, Any],
                             n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any] | None:
    """As paired_bootstrap_delta, but each model gets its own, independent resamples (for
    variants scored on different image sets; on the same images it wastes the pairing)."""
    if not n_resamples:
        return None
    _check_level(level)
    a, b = as_matches(a, "a"), as_matches(b, "b")
    seed_b = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    ra, rb = bootstrap_replicates(a, n_resamples, seed), bootstrap_replicates(b, n_resamples, seed_b)
    return _delta(ra, rb, map_from_matches(a), map_from_matches(b), n_resamples, seed, level, False)


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
