"""One validation's matches (what `matches.npz` holds), validated: shapes, dtypes, index ranges,
one-to-one matching; every error names the array at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KEYS = ("tp", "conf", "pred_cls", "pred_image", "gt_cls", "gt_image", "n_images", "iouv")


@dataclass(frozen=True, eq=False)
class Matches:
    """One validation's matches: what ultralytics' DetectionValidator accumulates, plus image indices."""

    tp: np.ndarray  # bool (P, T): prediction p is a true positive at IoU threshold t
    conf: np.ndarray  # float (P,), dtype kept as saved (the sort order of ties depends on it)
    pred_cls: np.ndarray  # int64 (P,)
    pred_image: np.ndarray  # int64 (P,) in [0, n_images)
    gt_cls: np.ndarray  # int64 (G,)
    gt_image: np.ndarray  # int64 (G,) in [0, n_images)
    n_images: int
    iouv: np.ndarray  # float (T,); column 0 is mAP50's threshold, as in ultralytics

    @property
    def n_predictions(self) -> int:
        return int(self.tp.shape[0])

    @property
    def n_gt(self) -> int:
        return int(self.gt_cls.shape[0])


def integral(name: str, a: np.ndarray, src: str) -> np.ndarray:
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
    if n_images.shape != () or not (
        np.issubdtype(n_images.dtype, np.integer)
        or (np.issubdtype(n_images.dtype, np.floating) and float(n_images).is_integer())
    ):
        raise ValueError(f"{source}: n_images must be one whole number, got {n_images!r}")
    n_images = int(n_images)
    if n_images < 1:
        raise ValueError(f"{source}: n_images must be >= 1, got {n_images}")
    tp = arr["tp"]
    if tp.ndim != 2 or tp.shape[1] < 1:
        raise ValueError(f"{source}: tp must be 2-D (predictions, IoU thresholds), got shape {tp.shape}")
    if tp.dtype != bool:
        if (
            not (np.issubdtype(tp.dtype, np.integer) or np.issubdtype(tp.dtype, np.floating))
            or not np.isin(tp, (0, 1)).all()
        ):
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
        raise ValueError(
            f"{source}: gt_cls and gt_image must be 1-D of one length, got {gt_cls.shape} and {gt_image.shape}"
        )
    pred_cls = integral("pred_cls", arr["pred_cls"], source)
    pred_image = integral("pred_image", arr["pred_image"], source)
    gt_cls, gt_image = integral("gt_cls", gt_cls, source), integral("gt_image", gt_image, source)
    for k, a in (("pred_image", pred_image), ("gt_image", gt_image)):
        if a.size and a.max() >= n_images:
            raise ValueError(f"{source}: {k} holds image {int(a.max())}, but n_images is {n_images}")
    _check_one_to_one(tp, pred_cls, pred_image, gt_cls, gt_image, iouv, source)
    return Matches(
        tp=tp,
        conf=conf,
        pred_cls=pred_cls,
        pred_image=pred_image,
        gt_cls=gt_cls,
        gt_image=gt_image,
        n_images=n_images,
        iouv=iouv.astype(np.float64),
    )


def _check_one_to_one(tp, pred_cls, pred_image, gt_cls, gt_image, iouv, source) -> None:
    """Each (image, class) has at most as many TPs per threshold as ground-truth boxes."""
    hit = tp.any(1)
    if not hit.any():
        return
    n_cls = int(max(pred_cls.max(initial=0), gt_cls.max(initial=0))) + 1
    gt_key = gt_image * n_cls + gt_cls
    p_key = pred_image[hit] * n_cls + pred_cls[hit]
    keys, inv = np.unique(np.concatenate([gt_key, p_key]), return_inverse=True)
    n_gt = np.bincount(inv[: gt_key.size], minlength=keys.size)
    n_tp = np.zeros((keys.size, tp.shape[1]), np.int64)
    np.add.at(n_tp, inv[gt_key.size :], tp[hit].astype(np.int64))
    bad = np.argwhere(n_tp > n_gt[:, None])
    if bad.size:
        k, t = bad[0]
        img, cls = divmod(int(keys[k]), n_cls)
        raise ValueError(
            f"{source}: image {img}, class {cls}: {int(n_tp[k, t])} true positives at IoU "
            f"{float(iouv[t]):.2f} but {int(n_gt[k])} ground-truth boxes; tp must come from "
            f"one-to-one matching"
        )


def load_matches(path: str | Path) -> Matches:
    """Read and validate a job's `matches.npz` (see Matches for the arrays)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from exc
    return as_matches(data, str(path))
