"""Which errors a detector makes (TIDE), and how well it does on each image (numpy, no torch).

TIDE (Bolya et al., ECCV 2020) splits the mAP50 a detector misses into six error types, each
measured as the AP50 gain (dAP, in AP points 0-100) that fixing only that type would give. A
detection is judged at the foreground IoU (0.5) and the background IoU (0.1):

- cls:    IoU >= 0.5 with a ground-truth box of another class
- loc:    right class, 0.1 <= IoU < 0.5
- both:   wrong class and 0.1 <= IoU < 0.5
- dupe:   right class, IoU >= 0.5, but that box was already matched by a higher-scored detection
- bkg:    IoU < 0.1 with every ground-truth box
- missed: a ground-truth box no detection covers (after the fixes above)

The decomposition is tidecv's (1.0.1, the authors' package), at its defaults; this module only feeds
it plain records, so the aggregator-side code needs neither torch nor ultralytics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# our name -> tidecv's short name, in TIDE's order
ERROR_TYPES = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg", "missed": "Miss"}
ERROR_LABELS = {
    "cls": "classification",
    "loc": "localisation",
    "both": "cls + loc",
    "dupe": "duplicate",
    "bkg": "background",
    "missed": "missed GT",
}
FG_IOU, BG_IOU = 0.5, 0.1  # TIDE's foreground and background IoU thresholds
SCORE_CONF = 0.25  # image score: detections at or above ultralytics' predict/confusion-matrix confidence


@dataclass(frozen=True)
class Box:
    """A ground-truth box (score 1) or a detection: top-left x, y, width, height in image pixels."""

    image: str
    cls: int
    x: float
    y: float
    w: float
    h: float
    score: float = 1.0


def tide_errors(truth: Iterable[Box], detections: Iterable[Box], images: Sequence[str]) -> dict[str, float]:
    """dAP50 of each TIDE error type (ERROR_TYPES order) and `ap50`, over `images` (every image
    evaluated, including those with no ground truth, so detections there count as background)."""
    from tidecv import TIDE, Data

    known = set(images)
    gt, pred = Data("truth"), Data("detections")
    for i, name in enumerate(images):
        gt.add_image(i, name)
    index = {name: i for i, name in enumerate(images)}
    for b in truth:
        gt.add_ground_truth(index[_known(b.image, known)], b.cls, [b.x, b.y, b.w, b.h])
    for b in detections:
        pred.add_detection(index[_known(b.image, known)], b.cls, b.score, [b.x, b.y, b.w, b.h])
    tide = TIDE(pos_threshold=FG_IOU, background_threshold=BG_IOU, mode=TIDE.BOX)
    run = tide.evaluate(gt, pred, name="run")
    main = tide.get_main_errors()["run"]
    return {"ap50": float(run.ap), **{ours: float(main[theirs]) for ours, theirs in ERROR_TYPES.items()}}


def _known(image: str, known: set[str]) -> str:
    if image not in known:
        raise ValueError(f"box on image {image!r}, which is not among the {len(known)} evaluated images")
    return image


def image_scores(
    truth: Iterable[Box], detections: Iterable[Box], images: Sequence[str], conf: float = SCORE_CONF
) -> dict[str, int]:
    """Per image: true positives minus false positives among the detections with score >= `conf`,
    matched one-to-one, highest score first, to the unmatched ground-truth box of the same class with
    the highest IoU >= FG_IOU (COCO's greedy rule at mAP50's threshold)."""
    gt_by: dict[str, list[Box]] = {name: [] for name in images}
    det_by: dict[str, list[Box]] = {name: [] for name in images}
    known = set(images)
    for b in truth:
        gt_by[_known(b.image, known)].append(b)
    for b in detections:
        if b.score >= conf:
            det_by[_known(b.image, known)].append(b)
    return {name: _tp_minus_fp(gt_by[name], det_by[name]) for name in images}


def _tp_minus_fp(truth: list[Box], detections: list[Box]) -> int:
    if not detections:
        return 0
    detections = sorted(detections, key=lambda b: -b.score)
    iou = box_iou(_xywh(detections), _xywh(truth))
    same = np.array([[d.cls == g.cls for g in truth] for d in detections], bool).reshape(iou.shape)
    iou = np.where(same, iou, -1.0)
    used = np.zeros(len(truth), bool)
    tp = 0
    for row in iou:
        candidates = np.where(~used & (row >= FG_IOU), row, -1.0)
        if candidates.size and candidates.max() >= FG_IOU:
            used[int(candidates.argmax())] = True
            tp += 1
    return tp - (len(detections) - tp)


def _xywh(boxes: list[Box]) -> np.ndarray:
    return np.array([[b.x, b.y, b.w, b.h] for b in boxes], float).reshape(-1, 4)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4), both top-left x, y, w, h."""
    a1, a2 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b1, b2 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None).prod(-1)
    union = a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
