"""The W&B report spec: builds offline, names only keys our runs log, says clearly what is missing online."""

from __future__ import annotations

import json
import os

import pytest

from src import tracking
from src.tracking import dashboard as D
from src.tracking import keys as K
from src.tracking.runs import DIR_VARS

GROUP = "exp_2026-01-01_00-00-00"


@pytest.fixture(autouse=True)
def no_credentials(tmp_path, monkeypatch):
    for var in (
        "WANDB_MODE",
        "WANDB_API_KEY",
        "WANDB_IDENTITY_TOKEN_FILE",
        "WANDB_ENTITY",
        "WANDB_BASE_URL",
        *DIR_VARS,
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A tiny real sweep: two offline job runs (one failed) and the aggregate run."""
    from tests.test_tracking import CFG, LOGGER, RESULT, TAGS, ablation_table, ultralytics_epoch

    saved = {v: os.environ.pop(v) for v in ("WANDB_MODE", *DIR_VARS) if v in os.environ}
    root = tmp_path_factory.mktemp("sweep")
    for i, (attn, status) in enumerate([("none", "completed"), ("ema", "failed")]):
        cfg = {**CFG, "attn": {"name": attn}}
        tracker = tracking.start_job_run(
            LOGGER, cfg, root / f"{i}_attn={attn}", group=GROUP, name=f"attn={attn}", tags=TAGS
        )
        for epoch in (1, 2):
            tracker.log_epoch(epoch, ultralytics_epoch(epoch))
        tracker.finish({**RESULT, "status": status})
    tracking.log_aggregate(LOGGER, group=GROUP, out_dir=root, table=ablation_table(), plots=[])
    os.environ.update(saved)
    return root


def report():
    return D.build_report(GROUP, project="yolo11-attention", entity=D.OFFLINE_ENTITY)


def test_spec_builds_offline():
    built = report()
    spec = D.spec_of(built, GROUP)
    assert [g["runset"] for g in spec["grids"]] == [D.TRAIN_RUNSET, D.AGGREGATE_RUNSET]
    assert all(GROUP in g["filters"] for g in spec["grids"])
    types = [p["type"] for g in spec["grids"] for p in g["panels"]]
    assert types == [
        "ParallelCoordinatesPlot",
        "LinePlot",
        "LinePlot",
        "ScatterPlot",
        "WeavePanelSummaryTable",
        "CustomChart",
    ]
    view = D.viewspec_of(built)  # the JSON Report.save() would send; no network needed
    text = json.dumps(view)
    assert "Parallel Coordinates Plot" in text and "config:attn.value" in text
    assert "summary:" + K.MAP50_95 in text and K.ABLATION_TABLE in text


def test_panels_read_the_keys_we_log():
    keys = D.report_keys(report())
    train = keys[K.JOB_TYPE_TRAIN]
    assert train["config"] == {K.ATTN, K.POS, K.DATASET}  # parallel coordinates + grouping
    assert train["history"] == {K.EPOCH, K.MAP50_95, K.MAP50}  # curves over epochs
    assert train["summary"] == {K.MAP50_95, K.GFLOPS}
    aggregate = keys[K.JOB_TYPE_AGGREGATE]
    assert aggregate["summary"] == {K.ABLATION_TABLE, K.TRADEOFF_TABLE}
    assert aggregate["table_columns"] <= set(K.TRADEOFF_COLUMNS)


def test_panel_keys_exist_in_real_offline_runs(sweep):
    built = report()
    assert D.check_against_runs(built, sweep) == []
    # and the check does catch a key no run has
    import wandb_workspaces.reports.v2 as wr

    built.blocks[1].panels.append(wr.LinePlot(x=K.EPOCH, y=["metrics/nonexistent"]))
    assert D.check_against_runs(built, sweep) == ["train history: metrics/nonexistent"]


def test_offline_cli_prints_the_spec_and_how_to_publish(sweep, capsys):
    assert D.main([GROUP, "--sweep", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert f"YOLO11 attention ablation: {GROUP}" in out and "ParallelCoordinatesPlot" in out
    assert "nothing was published" in out and "wandb sync" in out and f"make sync SWEEP={sweep}" in out
    assert f"python -m src.tracking.dashboard {GROUP} --online" in out and "3 offline run(s)" in out

    assert D.main([GROUP, "--json", "--project", "p", "--entity", "team"]) == 0
    captured = capsys.readouterr()
    spec = json.loads(captured.out)
    assert (spec["project"], spec["entity"], spec["group"]) == ("p", "team", GROUP)
    assert spec["viewspec"]["blocks"] and "--online" in captured.err


def test_online_without_api_key_is_a_clear_error(capsys):
    assert D.main([GROUP, "--online"]) == 2
    err = capsys.readouterr().err
    assert "WANDB_API_KEY" in err and "`wandb login`" in err
    with pytest.raises(D.DashboardError, match="WANDB_API_KEY"):
        D.publish(GROUP, "yolo11-attention", None)


def test_wandb_mode_online_means_publish(monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "online")
    assert D.main([GROUP]) == 2
    assert "WANDB_API_KEY" in capsys.readouterr().err
