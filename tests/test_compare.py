"""src.compare on a synthetic sweep: jobs whose predictions.json and ground truth are written here,
so each image's score, the images won and lost, and the error breakdown are known."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from PIL import Image
from test_aggregate import Sweep

from src.aggregate import errors as E
from src.metrics.errors import Box, tide_errors
from src.results.schema import AP_BY_SIZE_FROM, EVAL_SPLIT, EVALUATION_PASS

# three 100x100 test images; class 0 boxes (x, y, w, h in pixels)
TRUTH = {
    "a.png": [(0, 10, 10, 20, 20)],
    "b.png": [(0, 10, 10, 20, 20), (0, 60, 60, 20, 20)],
    "c.png": [(0, 40, 40, 30, 30)],
}
# per job: (image, class, score, box); scores are TP - FP at conf >= 0.25
PREDICTIONS = {
    "none": [  # a: 1 TP -> 1; b: nothing -> 0; c: 1 TP -> 1
        ("a.png", 0, 0.9, (10, 10, 20, 20)),
        ("c.png", 0, 0.8, (40, 40, 30, 30)),
        ("b.png", 0, 0.1, (60, 60, 20, 20)),  # below the score's confidence: not counted
    ],
    "ema": [  # a: 1 TP + 1 background FP -> 0 (Δ -1); b: 2 TPs -> 2 (Δ +2); c: 1 TP -> 1 (Δ 0)
        ("a.png", 0, 0.9, (10, 10, 20, 20)),
        ("a.png", 0, 0.95, (70, 70, 10, 10)),
        ("b.png", 0, 0.7, (10, 10, 20, 20)),
        ("b.png", 0, 0.6, (60, 60, 20, 20)),
        ("c.png", 0, 0.8, (40, 40, 30, 30)),
    ],
}


@pytest.fixture
def sweep(tmp_path):
    data = tmp_path / "data"
    (data / "images" / "test").mkdir(parents=True)
    (data / "labels" / "test").mkdir(parents=True)
    for name, boxes in TRUTH.items():
        Image.new("RGB", (100, 100)).save(data / "images" / "test" / name)
        lines = [f"{c} {(x + w / 2) / 100} {(y + h / 2) / 100} {w / 100} {h / 100}" for c, x, y, w, h in boxes]
        (data / "labels" / "test" / name).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    yaml = data / "data.yaml"
    yaml.write_text(f"path: {data}\ntrain: images/test\nval: images/test\ntest: images/test\nnames: [a, b]\n")
    s = Sweep(tmp_path / "sweep")
    common = {"data_yaml": str(yaml), "class_names": ["a", "b"], EVAL_SPLIT: "test", AP_BY_SIZE_FROM: EVALUATION_PASS}
    for attn in ("none", "ema", "se"):  # se: a job without predictions.json
        job = s.add(attn=attn, pos="neck", seed=0, **common)
        if attn in PREDICTIONS:
            (job / "test").mkdir()
            records = [
                {"image_id": i[:-4], "file_name": i, "category_id": c + 1, "bbox": list(b), "score": p}
                for i, c, p, b in PREDICTIONS[attn]
            ]
            (job / "test" / "predictions.json").write_text(json.dumps(records))
    return tmp_path / "sweep", yaml


def _boxes(attn: str) -> tuple[list[Box], list[Box]]:
    truth = [Box(i, c, x, y, w, h) for i, boxes in TRUTH.items() for c, x, y, w, h in boxes]
    return truth, [Box(i, c, *b, score=p) for i, c, p, b in PREDICTIONS[attn]]


def test_images_won_and_lost_errors_and_report(sweep, capsys):
    """Through the end-of-sweep callback, as a multirun runs it: compare after the table, report again."""
    from omegaconf import OmegaConf

    from src.sweep_end import AggregateOnMultirunEnd

    root, yaml = sweep
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}}, "logger": {"name": "none"}})
    outcome = AggregateOnMultirunEnd(plots=False, figures=False).aggregate_sweep(config)
    assert outcome.error is None
    files = outcome.summary.files
    assert {E.ERRORS_CSV, E.ERRORS_MD, E.IMAGES_CSV, "toy_yolo11n_errors"} <= set(files)
    assert files["toy_yolo11n_errors"] == root / "plots" / "toy_yolo11n_errors.png"
    assert "Error breakdown and per-image scores (4 files)" in capsys.readouterr().out
    notes = [n for n in outcome.summary.notes if "se @ neck" in n]
    assert len(notes) == 1 and "no predictions.json" in notes[0]

    images = pd.read_csv(root / E.IMAGES_CSV)
    assert images.set_index("image")[["score", "baseline_score", "delta"]].to_dict("index") == {
        "a.png": {"score": 0, "baseline_score": 1, "delta": -1},
        "b.png": {"score": 2, "baseline_score": 0, "delta": 2},
        "c.png": {"score": 1, "baseline_score": 1, "delta": 0},
    }
    assert E.won_and_lost(E.read_table(root, E.IMAGES_CSV)) == {
        ("toy", "yolo11n", "tk1"): [("ema @ neck", E.WON, "b.png", 2.0), ("ema @ neck", E.LOST, "a.png", -1.0)]
    }

    table = E.read_errors(root).set_index("attn")
    expected = {attn: tide_errors(*_boxes(attn), list(TRUTH)) for attn in PREDICTIONS}
    for t in ["ap50", *E.TYPES]:
        assert table.loc["ema", t] == pytest.approx(expected["ema"][t])
        assert table.loc["ema", f"d_{t}"] == pytest.approx(expected["ema"][t] - expected["none"][t])
    assert expected["ema"]["bkg"] > expected["none"]["bkg"]  # the FP on a.png is a background error

    report = (root / "report.md").read_text()
    assert "toy · yolo11n: TIDE errors" in report and "`errors.md`" in report
    top = E.findings(E.read_errors(root))[("toy", "yolo11n", "tk1")]
    assert len(top) == 1 and top[0] in report

    from src.visualize import Block, Variant, _scored_detections, choose_rows

    rows, how = choose_rows(Block("s", "toy", yaml, [], ("toy", "yolo11n", "tk1"), "test"), 4, root)
    assert [r.image.name for r in rows] == ["b.png", "a.png"] and "wins" in how
    assert "won by ema @ neck (+2)" in rows[0].label and "lost by ema @ neck (-1)" in rows[1].label

    # the detection panels show the evaluation pass's own boxes (what was scored), not predict()'s
    jobs = {p.parent.parent.name: p for p in root.glob("*/test/predictions.json")}
    variants = [Variant(a, root / "none.pt", 100, 0, jobs[str(i)]) for i, a in enumerate(PREDICTIONS)]
    block = Block("s", "toy", yaml, variants, ("toy", "yolo11n", "tk1"), "test")
    chosen = [r.image for r in rows]
    preds = [[{"boxes": None, "conf": None, "cls": None} for _ in chosen] for _ in variants]
    assert _scored_detections(block, chosen, preds) == 4
    ema_b = preds[1][0]  # ema on b.png: its two boxes, xyxy
    assert ema_b["boxes"].tolist() == [[10, 10, 30, 30], [60, 60, 80, 80]] and ema_b["conf"].tolist() == pytest.approx(
        [0.7, 0.6]
    )


def test_error_table_pairs_seeds_with_the_baseline():
    """Means over seeds; Δ only over the seeds the baseline has too."""
    key = {"dataset": "d", "model": "m", "train_key": "k", "setup": ""}
    zeros = dict.fromkeys(E.TYPES, 0.0)
    jobs = pd.DataFrame(
        [
            {**key, "pos": "-", "attn": "none", "seed": 0, **zeros, "ap50": 50.0, "loc": 4.0},
            {**key, "pos": "neck", "attn": "ema", "seed": 0, **zeros, "ap50": 52.0, "loc": 3.0},
            {**key, "pos": "neck", "attn": "ema", "seed": 1, **zeros, "ap50": 60.0, "loc": 1.0},  # no baseline
        ]
    )
    ema = E.error_table(jobs).set_index("attn").loc["ema"]
    assert ema["n"] == 2 and ema["loc"] == 2.0 and ema["ap50"] == 56.0
    assert ema["d_loc"] == -1.0 and ema["d_ap50"] == 2.0 and ema["d_cls"] == 0.0
    assert E.findings(E.error_table(jobs))[("d", "m", "k")] == [
        "`ema @ neck`: localisation -1.00 dAP (TIDE, vs the baseline)"
    ]
