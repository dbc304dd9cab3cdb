"""The per-class ablation table on a hand-made sweep whose every figure is worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from src.aggregate import aggregate
from src.aggregate.per_class import CSV_COLUMNS
from src.results import empty_result, write_result

CLASSES = ["a", "b", "c"]  # c never has a validation instance


def add(root, i, attn, seed, a, b, pos="neck"):
    """One completed job; `a`, `b`: (ap50, ap50_95) of classes a (10 instances) and b (4)."""
    r = empty_result(dataset="toy", attn=attn, pos=pos, model="yolo11n", seed=seed, epochs=10, imgsz=320)
    r.update(
        status="completed",
        train_key="tk",
        class_names=CLASSES,
        metrics={"map50": (a[0] + b[0]) / 2, "map50_95": (a[1] + b[1]) / 2, "precision": 0.5, "recall": 0.5},
        per_class={
            "a": {"ap50": a[0], "ap50_95": a[1], "instances": 10},
            "b": {"ap50": b[0], "ap50_95": b[1], "instances": 4},
            "c": None,
        },
    )
    write_result(root / str(i), r)


@pytest.fixture
def sweep(tmp_path):
    jobs = [
        ("none", 0, (0.60, 0.30), (0.40, 0.20)),
        ("none", 1, (0.70, 0.40), (0.50, 0.30)),
        ("ema", 0, (0.80, 0.50), (0.30, 0.10)),
        ("ema", 1, (0.60, 0.40), (0.50, 0.30)),
        ("cot", 0, (0.90, 0.60), (0.20, 0.05)),
        ("se", 5, (0.50, 0.50), (0.30, 0.30)),
    ]  # a seed the baseline lacks: Δ from the means
    for i, (attn, seed, a, b) in enumerate(jobs):
        add(tmp_path, i, attn, seed, a, b)
    return tmp_path


def test_per_class_table_by_hand(sweep):
    summary = aggregate([sweep], plots=False)
    csv = pd.read_csv(sweep / "per_class.csv")
    assert list(csv.columns) == CSV_COLUMNS
    assert list(zip(csv["class"], csv["attn"], strict=False)) == [
        (c, v) for c in CLASSES for v in ("none", "cot", "ema", "se")
    ]
    row = {(r["class"], r["attn"]): r for r in csv.to_dict("records")}
    s2 = math.sqrt(2 * 0.05**2)  # sample std of two values 0.1 apart
    expected = {  # (n, instances, ap50 mean, std, ap50_95 mean, std, Δ ap50_95)
        ("a", "none"): (2, 10, 0.65, s2, 0.35, s2, None),
        ("b", "none"): (2, 4, 0.45, s2, 0.25, s2, None),
        ("a", "ema"): (2, 10, 0.70, 2 * s2, 0.45, s2, (0.20 + 0) / 2),  # paired: seeds 0 and 1
        ("b", "ema"): (2, 4, 0.40, 2 * s2, 0.20, 2 * s2, (-0.10 + 0) / 2),
        ("a", "cot"): (1, 10, 0.90, None, 0.60, None, 0.60 - 0.30),  # paired with the baseline's seed 0
        ("b", "cot"): (1, 4, 0.20, None, 0.05, None, 0.05 - 0.20),
        ("a", "se"): (1, 10, 0.50, None, 0.50, None, 0.50 - 0.35),  # no shared seed: mean - mean
        ("b", "se"): (1, 4, 0.30, None, 0.30, None, 0.30 - 0.25),
    }
    for key, (n, inst, m50, s50, m, s, d) in expected.items():
        r = row[key]
        assert (r["n"], r["instances"]) == (n, inst), key
        for col, want in (
            ("ap50_mean", m50),
            ("ap50_std", s50),
            ("ap50_95_mean", m),
            ("ap50_95_std", s),
            ("delta_ap50_95", d),
        ):
            assert math.isnan(r[col]) if want is None else r[col] == pytest.approx(want), (key, col, r[col])
    for attn in ("none", "cot", "ema", "se"):  # no instance anywhere: undefined, not 0
        r = row[("c", attn)]
        assert r["n"] == 0 and r["instances"] == 0
        assert all(math.isnan(r[c]) for c in ("ap50_mean", "ap50_95_mean", "delta_ap50_95"))

    md = (sweep / "per_class.md").read_text()
    assert "**60.00 (+30.00)**" in md  # best AP50-95 of class a: cot, with its Δ
    assert "**30.00 (+5.00)**" in md  # best of class b: se (the baseline's 25.00±7.07 is next)
    assert "| 25.00±7.07 |" in md
    assert "| c | 0 | – | – | – | – |" in md
    assert r"\textbf{60.00 ($+$30.00)}" in (sweep / "per_class.tex").read_text()
    assert "per-class AP50-95" in summary.terminal and "60.00 (+30.00)*" in summary.terminal
    report = (sweep / "report.md").read_text()
    assert "per-class AP" in report and "**60.00 (+30.00)**" in report


def test_older_results_without_per_class_are_left_out(tmp_path):
    add(tmp_path, 0, "none", 0, (0.6, 0.3), (0.4, 0.2))
    old = empty_result(dataset="toy", attn="ema", pos="neck", model="yolo11n", seed=0, epochs=10, imgsz=320)
    old.update(status="completed", train_key="tk", metrics={"map50": 0.5, "map50_95": 0.3})
    write_result(tmp_path / "1", old)
    table = aggregate([tmp_path], plots=False).per_class
    assert set(table["attn"]) == {"none"} and len(table) == 3


def test_no_per_class_no_files(tmp_path):
    old = empty_result(dataset="toy", attn="none", pos="neck", model="yolo11n", seed=0, epochs=10, imgsz=320)
    old.update(status="completed", train_key="tk", metrics={"map50": 0.5, "map50_95": 0.3})
    write_result(tmp_path / "0", old)
    summary = aggregate([tmp_path], plots=False)
    assert summary.per_class.empty and not (tmp_path / "per_class.csv").exists()
    assert "per-class" not in summary.terminal


def test_a_validation_pass_by_hand_gives_per_class_ap_and_matches(tmp_path):
    """ultralytics' own matching and AP over hand-placed boxes: two images, classes a, b, c (c has
    no ground truth), through the validator the final validation uses."""
    from types import SimpleNamespace

    import numpy as np
    import torch
    from ultralytics.utils.metrics import ap_per_class

    from src.ultralytics_glue.validation import RecordingValidator, record_of

    v = RecordingValidator(save_dir=tmp_path, args={"plots": False, "save_json": False})
    v.device, v.data = torch.device("cpu"), {"val": ""}
    v.init_metrics(SimpleNamespace(names={0: "a", 1: "b", 2: "c"}))
    v.training = False  # the final validation, not a per-epoch one
    gt = [[(0, 10, 10, 50, 50), (1, 60, 60, 90, 90)], [(0, 20, 20, 60, 60)]]  # (cls, x1, y1, x2, y2) px of 100
    preds = [
        [(10, 10, 50, 50, 0.9, 0), (62, 62, 92, 92, 0.8, 1), (70, 10, 95, 30, 0.7, 0)],  # TP, TP to IoU .77, FP
        [(20, 20, 60, 60, 0.6, 0), (0, 0, 10, 10, 0.5, 2)],
    ]  # TP, FP of class c
    boxes = [
        (i, c, (x1 + x2) / 200, (y1 + y2) / 200, (x2 - x1) / 100, (y2 - y1) / 100)
        for i, image in enumerate(gt)
        for c, x1, y1, x2, y2 in image
    ]
    batch = {
        "batch_idx": torch.tensor([b[0] for b in boxes], dtype=torch.float32),
        "cls": torch.tensor([[b[1]] for b in boxes], dtype=torch.float32),
        "bboxes": torch.tensor([b[2:] for b in boxes], dtype=torch.float32),
        "img": torch.zeros(2, 3, 100, 100),
        "ori_shape": [(100, 100)] * 2,
        "ratio_pad": [((1.0, 1.0), (0.0, 0.0))] * 2,
        "im_file": ["0.png", "1.png"],
    }
    v.update_metrics(
        [
            {
                "bboxes": torch.tensor([p[:4] for p in image], dtype=torch.float32),
                "conf": torch.tensor([p[4] for p in image]),
                "cls": torch.tensor([float(p[5]) for p in image]),
            }
            for image in preds
        ],
        batch,
    )
    v.get_stats()
    record = record_of(v, ap_by_size=False)
    m = v.metrics.box.map

    assert record.per_class["c"] is None  # predicted, but no ground truth: undefined, not 0
    a, b = record.per_class["a"], record.per_class["b"]
    assert (a["instances"], b["instances"]) == (2, 1)
    # one TP of IoU .77: ultralytics' interpolated AP of a perfect ranking (0.995) at 6 of the 10 thresholds
    assert b["ap50"] == pytest.approx(0.995) and b["ap50_95"] == pytest.approx(0.995 * 6 / 10)
    assert 0 < a["ap50_95"] < 1 and (a["ap50_95"] + b["ap50_95"]) / 2 == pytest.approx(m, abs=1e-9)

    got = record.matches
    assert got["tp"].shape == (5, 10) and got["tp"].dtype == bool and int(got["n_images"]) == 2
    assert got["pred_image"].tolist() == [0, 0, 0, 1, 1] and got["gt_image"].tolist() == [0, 0, 1]
    assert got["pred_cls"].tolist() == [0, 1, 0, 0, 2] and got["gt_cls"].tolist() == [0, 1, 0]
    assert got["conf"].dtype == np.float32 and got["iouv"] == pytest.approx(np.linspace(0.5, 0.95, 10))
    ap = ap_per_class(got["tp"], got["conf"], got["pred_cls"], got["gt_cls"])[5]
    assert ap.mean() == pytest.approx(m, abs=1e-9)
    recall, precision = record.pr_curve
    assert len(recall) == len(precision) == 1000 and precision[0] == pytest.approx(1.0)
