"""ultralytics' mAP50-95 / mAP50 recomputed from stored matches, for any image multiplicities.

mAP here is ultralytics' (`ultralytics.utils.metrics.ap_per_class` + `compute_ap`): per class that
has ground truth, detections sorted by confidence, recall = TP / n_gt, precision = TP / (TP + FP),
the precision envelope, 101-point interpolation with `np.interp` and the trapezoid rule; mAP is the
mean over the classes that have ground truth (a class with ground truth but no detections counts
as AP 0; detections of a class without ground truth are ignored; no ground truth at all gives 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .matches import Matches, as_matches, integral

AP_X = np.linspace(0, 1, 101)  # ultralytics' _AP_X: the 101 recall points (COCO)
_AP_DX = np.diff(AP_X)
_AP_X_EXT = np.append(AP_X, np.inf)  # index 101: "beyond every recall point"
_TRAPZ = np.zeros(101)  # the trapezoid rule's weight of each x_k
_TRAPZ[:-1] += _AP_DX / 2.0
_TRAPZ[1:] += _AP_DX / 2.0
_W0 = np.concatenate([[0.0], np.cumsum(_TRAPZ)])  # _W0[b] - _W0[a]: the weights of x_a .. x_b-1
_W1 = np.concatenate([[0.0], np.cumsum(_TRAPZ * AP_X)])  # the same, each times its x_k
_EPS = 1e-16  # ultralytics' ap_per_class eps in recall = tp / (n + eps)


class Plan:
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
        tj, ti = np.nonzero(m.tp[order].T)  # threshold-major, then class, then confidence
        seg = tj * C + ci[ti]
        E = ti.size
        self.ent_pred, self.ent_cls_start = ti, cls_start[ci[ti]]
        per_seg = np.bincount(seg, minlength=K)
        seg_ent_start = np.concatenate([[0], np.cumsum(per_seg)[:-1]])
        self.ent_seg_start = seg_ent_start[seg]  # first entry of each entry's segment
        self.seg_ent_start, self.seg_ent_end = seg_ent_start, seg_ent_start + per_seg
        self.seg_cls = np.arange(K) % C
        L = 3 * per_seg + 1
        pt_start = np.concatenate([[0], np.cumsum(L)[:-1]])
        M = int(L.sum())
        self.pt_start, self.M, self.E, self.P = pt_start, M, E, P
        # points = concat([Q(E), S(E), E(E), F(K)])[:, perm], laid out segment by segment
        perm = np.empty(M, np.int64)
        q = pt_start[seg] + 3 * (np.arange(E) - seg_ent_start[seg])
        perm[q], perm[q + 1], perm[q + 2] = np.arange(E), E + np.arange(E), 2 * E + np.arange(E)
        perm[pt_start + L - 1] = 3 * E + np.arange(K)
        self.perm = perm
        pt_seg = np.repeat(np.arange(K), L)
        self.pt_cls = pt_seg % C
        self.same_segment = pt_seg[1:] == pt_seg[:-1]  # point j and j + 1 lie on one curve
        self.offset = 2.0 * (K - pt_seg)  # keeps the reverse running max inside a segment
        gt_order = np.argsort(gt_ci, kind="stable")
        self.gt_image = m.gt_image[gt_order]
        self.gt_cls_start = np.searchsorted(gt_ci[gt_order], np.arange(C), "left")
        self.gt_cls_end = np.searchsorted(gt_ci[gt_order], np.arange(C), "right")
        self.max_per_image = int(np.bincount(m.pred_image, minlength=m.n_images).max(initial=0))

    def bytes_per_row(self) -> int:
        """Rough working memory of one replicate, to size chunks."""
        return 16 * self.P + 80 * self.E + 160 * self.M + 8 * self.n_images + 8 * len(self.gt_image)

    def evaluate(self, counts: np.ndarray) -> np.ndarray:
        """(B, N) image multiplicities -> (B, 2) array of (mAP50-95, mAP50), one row per replicate."""
        counts = np.asarray(counts)
        B = counts.shape[0]
        # running totals stay below (images drawn) x (detections per image): int32 unless huge
        it = np.int32 if int(counts.sum(axis=1).max(initial=0)) * max(self.max_per_image, 1) < 2**31 else np.int64
        counts = counts.astype(it, copy=False)
        C, T, M = self.C, self.T, self.M
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
        np.cumsum(w, axis=1, dtype=it, out=W[:, 1:])  # W[:, i] = weight of detections before i
        w_tot = W[:, self.cls_end] - W[:, self.cls_start]  # (B, C)
        ep = self.ent_pred
        w_e = w[:, ep]
        before = W[:, ep] - W[:, self.ent_cls_start]  # same-class detections ranked before (tp + fp)
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
        np.divide(tp_f, den_pts, out=prec, where=den_pts > 0)  # no detection yet: precision 1 (the sentinel's)
        del den_pts
        recall = tp_f / (n_gt[:, self.pt_cls] + _EPS)  # as ultralytics: tpc / (n_l + eps)
        del tp_f, tp_pts
        # precision envelope: running max from the right within each segment
        prec += self.offset
        env = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]
        env -= self.offset
        del prec
        # np.interp on the 101 recall points x_k and the trapezoid rule, summed interval by interval:
        # the points x_k in [r_j, r_j+1) lie on the line from point j to j + 1, so their weighted sum
        # is e_j * S0 + slope_j * (S1 - r_j * S0), S0 and S1 the trapezoid weights' sums (and
        # x-weighted sums) over those x_k; past the last point ultralytics' sentinel gives 0.
        k = np.clip(np.ceil(recall * 100.0), 0, 101).astype(np.int64)  # first x_k >= recall
        k -= (k > 0) & (_AP_X_EXT[np.maximum(k - 1, 0)] >= recall)
        k += _AP_X_EXT[k] < recall
        lo, hi = k[:, :-1], k[:, 1:]
        s0 = _W0[hi] - _W0[lo]
        s1 = _W1[hi] - _W1[lo]
        del k, lo, hi
        inside = (s0 > 0) & self.same_segment  # some x_k between two points of one segment
        r0, e0 = recall[:, :-1], env[:, :-1]
        slope = np.zeros_like(r0)
        np.divide(env[:, 1:] - e0, recall[:, 1:] - r0, out=slope, where=inside)
        part = np.zeros((B, M))
        part[:, :-1] = np.where(inside, e0 * s0 + slope * (s1 - r0 * s0), 0.0)
        del recall, env, r0, e0, slope, s0, s1, inside
        ap = np.add.reduceat(part, self.pt_start, axis=1).reshape(B, T, C)
        present = n_gt > 0
        nc = present.sum(axis=1)
        denom = np.maximum(nc, 1)
        out[:, 0] = (ap.mean(axis=1) * present).sum(axis=1) / denom
        out[:, 1] = (ap[:, 0] * present).sum(axis=1) / denom
        out[nc == 0] = 0.0
        return out


def map_from_matches(
    m: Matches | Mapping[str, Any], weights: Sequence[int] | np.ndarray | None = None
) -> tuple[float, float]:
    """(mAP50-95, mAP50) of the matches, exactly as ultralytics' ap_per_class computes it.

    `weights`: one whole number per image, how many times it is in the set (a bootstrap resample);
    None means every image once. The result equals ap_per_class on the set with every box of image
    i repeated weights[i] times (see Plan)."""
    m = as_matches(m)
    if weights is None:
        counts = np.ones((1, m.n_images), np.int64)
    else:
        counts = np.asarray(weights)
        if counts.shape != (m.n_images,):
            raise ValueError(f"weights must have one entry per image ({m.n_images}), got shape {counts.shape}")
        counts = integral("weights", counts, "map_from_matches")[None]
    r = Plan(m).evaluate(counts)[0]
    return float(r[0]), float(r[1])
