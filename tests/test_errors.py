"""TIDE's error types on hand-made images, and the per-image score."""

from __future__ import annotations

import pytest

from src.metrics.errors import ERROR_TYPES, Box, box_iou, image_scores, tide_errors

A = Box("img", 0, 10, 10, 20, 20)  # two ground-truth boxes of class 0, far apart
B = Box("img", 0, 70, 70, 20, 20)


def det(box: Box, score: float, cls: int | None = None, dx: float = 0.0) -> Box:
    return Box(box.image, box.cls if cls is None else cls, box.x + dx, box.y + dx, box.w, box.h, score)


# each case: a correct detection of B (score 0.5) plus exactly one kind of error around A
CASES = {
    "cls": [det(A, 0.9, cls=1), det(B, 0.5)],  # right place, wrong class
    "loc": [det(A, 0.9, dx=8), det(B, 0.5)],  # right class, IoU 0.22
    # wrong class and IoU 0.22; A is found too: TIDE fixes `both` by dropping the detection (it cannot
    # know which box was meant), so with A undetected its GT would be a `missed` error as well
    "both": [det(A, 0.9, cls=1, dx=8), det(A, 0.6), det(B, 0.5)],
    "dupe": [det(A, 0.9), det(A, 0.8), det(B, 0.5)],  # A found twice
    "bkg": [det(A, 0.9), Box("img", 0, 40, 60, 10, 10, 0.8), det(B, 0.5)],  # a box on nothing
    "missed": [det(B, 0.5)],  # A not detected at all
}


def test_iou_of_the_shifted_box_is_between_the_background_and_foreground_thresholds():
    import numpy as np

    iou = box_iou(np.array([[18, 18, 20, 20]]), np.array([[10, 10, 20, 20], [40, 60, 10, 10]]))
    assert 0.1 < iou[0, 0] < 0.5 and iou[0, 1] == 0


@pytest.mark.parametrize("kind", list(CASES))
def test_each_error_alone_is_exactly_that_type(kind):
    errors = tide_errors([A, B], CASES[kind], ["img"])
    assert errors["ap50"] < 100
    # fixing the one error makes the image perfect: its dAP is all of the gap, every other type is 0
    assert errors[kind] == pytest.approx(100 - errors["ap50"], abs=1e-6) and errors[kind] > 0
    assert {t: v for t, v in errors.items() if t not in (kind, "ap50")} == dict.fromkeys(set(ERROR_TYPES) - {kind}, 0)


def test_a_perfect_image_has_no_error_and_detections_on_an_empty_image_are_background():
    perfect = tide_errors([A, B], [det(A, 0.9), det(B, 0.5)], ["img", "empty"])
    assert perfect["ap50"] == pytest.approx(100) and not any(perfect[t] for t in ERROR_TYPES)
    spurious = tide_errors([A, B], [Box("empty", 0, 5, 5, 9, 9, 0.95), det(A, 0.9), det(B, 0.5)], ["img", "empty"])
    assert spurious["bkg"] == pytest.approx(100 - spurious["ap50"]) and spurious["bkg"] > 0


def test_boxes_on_an_unknown_image_are_refused():
    with pytest.raises(ValueError, match="'other'.*not among the 1 evaluated images"):
        tide_errors([A], [Box("other", 0, 1, 1, 2, 2, 0.5)], ["img"])


def test_image_score_is_tp_minus_fp_above_the_confidence():
    dets = [
        det(A, 0.9),  # TP
        det(A, 0.8),  # duplicate: FP
        det(B, 0.7, cls=1),  # wrong class: FP
        det(B, 0.1),  # would be a TP, but below conf 0.25: ignored
    ]
    other = Box("b", 0, 0, 0, 10, 10)
    scores = image_scores([A, B, other], dets + [det(other, 0.6)], ["img", "b", "c"])
    assert scores == {"img": 1 - 2, "b": 1, "c": 0}
    assert image_scores([A, B], dets, ["img"], conf=0.05) == {"img": 2 - 2}
