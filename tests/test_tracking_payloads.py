"""W&B names, settings and payloads without a run (src/tracking/keys.py, settings.py, payloads.py)."""

from __future__ import annotations

import pandas as pd
import yaml

from src.results import JOB_COST_KEYS
from src.runtime import PROJECT_ROOT
from src.tracking import keys as K
from src.tracking import payloads
from src.ultralytics_glue.names import ULTRALYTICS_METRICS


def test_epoch_row_and_summary_mapping():
    import numpy as np

    row = payloads.epoch_row(
        4,
        {
            "metrics/mAP50-95(B)": np.float32(0.5),
            " lr/pg0 ": 0.01,
            "epoch": 99,
            "note": "text",
            "nan": float("nan"),
            "none": None,
        },
    )
    assert row == {K.MAP50_95: 0.5, "lr/pg0": 0.01, K.EPOCH: 4}
    summary = payloads.summary_from_result({"status": "dry_run", "metrics": {}, "params": 10, "gflops": None})
    assert summary == {K.PARAMS: 10, K.STATUS: "dry_run"}
    assert payloads.clean_tags(["a", None, " a ", "", "x" * 80]) == ["a", "x" * 64]


def test_every_ultralytics_metric_maps_to_ours():
    row = payloads.epoch_row(1, {theirs: 0.5 for theirs in ULTRALYTICS_METRICS})
    assert set(row) == {K.EPOCH, *(K.METRIC_PREFIX + ours for ours in ULTRALYTICS_METRICS.values())}
    assert {K.MAP50_95, K.MAP50, K.PRECISION, K.RECALL} <= set(row)


def test_summary_carries_every_cost_key():
    summary = payloads.summary_from_result({key: 1.5 for key in JOB_COST_KEYS})
    assert set(summary) == set(JOB_COST_KEYS) and {K.PARAMS, K.GFLOPS, K.GFLOPS_EXACT, K.LATENCY_MS_JOB} <= set(summary)


def test_tradeoff_labels_name_dataset_and_model_when_they_vary():
    table = pd.DataFrame(
        {
            "dataset": ["coco", "visdrone"],
            "model": ["yolo11n"] * 2,
            "pos": ["-", "neck"],
            "attn": ["none", "ema"],
            "gflops_mean": [6.5, 6.6],
            "map50_95": [0.3, 0.2],
        }
    )
    assert list(payloads.tradeoff_frame(table)["label"]) == ["coco none", "visdrone ema@neck"]


def test_tradeoff_frame_of_an_empty_table_is_empty():
    assert payloads.tradeoff_frame(pd.DataFrame(columns=["attn", "pos", "gflops", "map50_95_mean"])).empty


def test_logger_configs():
    wandb_cfg = yaml.safe_load((PROJECT_ROOT / "conf" / "logger" / "wandb.yaml").read_text())
    assert wandb_cfg["name"] == "wandb" and wandb_cfg["project"] == K.DEFAULT_PROJECT
    assert wandb_cfg["mode"] == "offline" and wandb_cfg["tags"] == []
    assert yaml.safe_load((PROJECT_ROOT / "conf" / "logger" / "none.yaml").read_text())["name"] == "none"
