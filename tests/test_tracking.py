"""W&B runs (src/tracking/runs.py) with real wandb in offline mode: runs are written, then parsed back
from their run-<id>.wandb files (src/tracking/offline.py; no mock of wandb itself, except to make it
fail), and the sync CLI over them (src/tracking/sync.py). Payload shaping alone: test_tracking_payloads.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from src import tracking
from src.runtime import PROJECT_ROOT
from src.tracking import keys as K
from src.tracking import offline, runs, sync

WANDB_VARS = (
    "WANDB_MODE",
    "WANDB_API_KEY",
    "WANDB_IDENTITY_TOKEN_FILE",
    "WANDB_DIR",
    "WANDB_ENTITY",
    "WANDB_PROJECT",
    "WANDB_BASE_URL",
    *runs.DIR_VARS,
)

LOGGER = {
    "name": "wandb",
    "project": "test-project",
    "entity": None,
    "mode": "offline",
    "tags": ["extra"],
    "system_metrics": False,
}
CFG = {
    "attn": {"name": "ema", "params": {"factor": 8}},
    "pos": {"name": "neck", "after": [13], "replace": []},
    "dataset": {"name": "shapes", "names": ["a", "b"]},
    "model": {"name": "yolo11n", "scale": "n"},
    "seed": 1,
    "train": {"epochs": 3, "imgsz": 64, "lr0": 0.01},
    "paths": {"outputs": Path("/x")},
}
TAGS = ["shapes", "yolo11n", "ema", "neck"]


def ultralytics_epoch(epoch: int) -> dict:
    """What an ultralytics epoch end reports (trainer.label_loss_items + metrics + lr)."""
    return {
        "train/box_loss": 2.0 / epoch,
        "train/cls_loss": 3.0 / epoch,
        "train/dfl_loss": 1.5 / epoch,
        "metrics/precision(B)": 0.1 * epoch,
        "metrics/recall(B)": 0.05 * epoch,
        "metrics/mAP50(B)": 0.08 * epoch,
        "metrics/mAP50-95(B)": 0.04 * epoch,
        "val/box_loss": 2.1 / epoch,
        "val/cls_loss": 3.1 / epoch,
        "val/dfl_loss": 1.6 / epoch,
        "lr/pg0": 0.01,
        "lr/pg1": 0.01,
        "lr/pg2": 0.01,
    }


RESULT = {
    "status": "completed",
    "metrics": {"map50": 0.3, "map50_95": 0.15, "precision": 0.4, "recall": 0.2, "map75": None},
    "params": 2_590_000,
    "params_added": 1_200,
    "gflops": 6.5,
    "gflops_exact": 0.0633,
    "latency_ms_job": 12.5,
    "train_seconds": 30.2,
    "best_epoch": 3,
    "error": None,
}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No user W&B settings leak in; cwd and HOME are scratch dirs we can inspect afterwards."""
    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield
    # nothing of W&B outside the dirs we gave it, and our env vars are gone again
    assert not [p for p in home.rglob("*") if "wandb" in p.name.lower()]
    assert not list(cwd.iterdir())
    assert not [v for v in runs.DIR_VARS if v in os.environ]


def run_job(
    job_dir: Path,
    result: dict = RESULT,
    epochs: int = 3,
    name: str = "attn=ema,pos=neck,seed=1",
    logger: dict = LOGGER,
    **kwargs,
) -> runs.JobTracker:
    tracker = tracking.start_job_run(
        logger, CFG, job_dir, group="exp_2026-01-01_00-00-00", name=name, tags=TAGS, **kwargs
    )
    for epoch in range(1, epochs + 1):
        tracker.log_epoch(epoch, {**ultralytics_epoch(epoch), "epoch": epoch})
    tracker.finish(result)
    return tracker


def only_run(job_dir: Path) -> dict:
    dirs = sorted((job_dir / "wandb").glob("offline-run-*"))
    assert len(dirs) == 1, dirs
    files = list(dirs[0].glob("run-*.wandb"))
    assert len(files) == 1, files
    return offline.read_run_file(files[0])


def test_job_run_offline_roundtrip(tmp_path):
    job = tmp_path / "sweep" / "0_attn=ema"
    tracker = run_job(job)
    assert not tracker.active and tracker.run_dir.parent == job / "wandb"
    run = only_run(job)

    meta = run["run"]
    assert meta["project"] == "test-project"
    assert meta["group"] == "exp_2026-01-01_00-00-00"
    assert meta["job_type"] == K.JOB_TYPE_TRAIN == "train"
    assert meta["name"] == "attn=ema,pos=neck,seed=1"
    assert meta["tags"] == [*TAGS, "extra"]

    config = run["config"]
    assert {k: config[k] for k in K.RUN_CONFIG_KEYS} == {
        "attn": "ema",
        "pos": "neck",
        "dataset": "shapes",
        "model": "yolo11n",
        "seed": 1,
    }
    assert config[K.CFG]["attn"] == {"name": "ema", "params": {"factor": 8}}
    assert config[K.CFG]["train"]["lr0"] == 0.01 and config[K.CFG]["paths"]["outputs"] == "/x"

    assert run["step_metrics"] == {"*": K.EPOCH}
    rows = run["history"]
    assert [r[K.EPOCH] for r in rows] == [1, 2, 3]
    assert rows[1][K.MAP50_95] == pytest.approx(0.08) and rows[1][K.MAP50] == pytest.approx(0.16)
    assert rows[2][K.PRECISION] == pytest.approx(0.3) and rows[2][K.RECALL] == pytest.approx(0.15)
    assert rows[0]["train/box_loss"] == 2.0 and rows[0]["val/dfl_loss"] == 1.6 and rows[0]["lr/pg2"] == 0.01
    assert not [k for r in rows for k in r if "(B)" in k]  # ultralytics' names were mapped

    summary = run["summary"]
    assert summary[K.MAP50_95] == 0.15 and summary[K.MAP50] == 0.3  # the final (result) values
    assert "metrics/map75" not in summary  # None is not logged
    assert summary[K.PARAMS] == 2_590_000 and summary[K.GFLOPS] == 6.5
    assert summary[K.GFLOPS_EXACT] == 0.0633 and summary[K.LATENCY_MS_JOB] == 12.5
    assert summary["best_epoch"] == 3 and summary[K.STATUS] == "completed" and K.ERROR not in summary
    assert run["exit_code"] == 0
    # everything under the job's own wandb dir, the service's logs included
    assert list((job / "wandb" / ".cache").rglob("core-debug-*.log"))


def test_failed_job_ends_failed_with_its_error(tmp_path):
    job = tmp_path / "1_attn=cot"
    failed = {
        **RESULT,
        "status": "failed",
        "metrics": {"map50": None},
        "error": "RuntimeError: CUDA out of memory",
        "traceback": "Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory\n",
    }
    run_job(job, failed, epochs=1)
    run = only_run(job)
    assert run["exit_code"] == 1
    assert run["summary"][K.STATUS] == "failed"
    assert run["summary"][K.ERROR] == "RuntimeError: CUDA out of memory"
    assert "CUDA out of memory" in run["run"]["notes"] or "CUDA out of memory" in json.dumps(run["summary"])


def test_two_jobs_in_one_process_are_two_runs(tmp_path):
    first, second = tmp_path / "0_attn=none", tmp_path / "1_attn=ema"
    run_job(first, name="attn=none", epochs=2)
    run_job(second, name="attn=ema", epochs=1, identity={"pos": "custom:after6"})
    a, b = only_run(first), only_run(second)
    assert (a["config"][K.POS], b["config"][K.POS]) == ("neck", "custom:after6")  # `identity` overrides
    assert a["run"]["id"] != b["run"]["id"]
    assert (a["run"]["name"], b["run"]["name"]) == ("attn=none", "attn=ema")
    assert (len(a["history"]), len(b["history"])) == (2, 1)
    assert a["exit_code"] == b["exit_code"] == 0
    # the W&B service restarted for the second job: its logs are in the second job's dir
    assert list((second / "wandb" / ".cache").rglob("core-debug-*.log"))


def test_offline_init_is_fast(tmp_path):
    import time

    import wandb  # noqa: F401 - the import itself is paid once per process, not per job

    started = time.perf_counter()
    tracker = tracking.start_job_run(LOGGER, CFG, tmp_path / "job", group="g", name="n", tags=TAGS)
    opened = time.perf_counter()
    tracker.finish(RESULT)
    assert opened - started < 15 and time.perf_counter() - opened < 15  # ~0.4 s and ~0.02 s here


# ============================================================================ failures only warn
def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == runs.__name__ and r.levelno == logging.WARNING]


def test_init_failure_only_warns(tmp_path, monkeypatch, caplog):
    import wandb

    def broken_init(*args, **kwargs):
        raise wandb.errors.CommError("network is unreachable")

    monkeypatch.setattr(wandb, "init", broken_init)
    tracker = tracking.start_job_run(LOGGER, CFG, tmp_path / "job", group="g", name="n", tags=TAGS)
    assert not tracker.active
    tracker.log_epoch(1, ultralytics_epoch(1))
    tracker.finish(RESULT)
    (message,) = warnings_of(caplog)
    assert "network is unreachable" in message and "training goes on" in message


def test_failure_mid_run_warns_once_and_turns_into_a_no_op(tmp_path, monkeypatch, caplog):
    job = tmp_path / "job"
    tracker = tracking.start_job_run(LOGGER, CFG, job, group="g", name="n", tags=TAGS)
    assert tracker.active

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracker._run, "log", full_disk)
    tracker.log_epoch(1, ultralytics_epoch(1))
    tracker.log_epoch(2, ultralytics_epoch(2))
    tracker.finish(RESULT)
    tracker.finish(RESULT)
    (message,) = warnings_of(caplog)
    assert "No space left on device" in message
    assert not tracker.active
    assert only_run(job)["exit_code"] == 1  # the broken run was closed as failed


@pytest.mark.parametrize("where", ["logger.mode", "WANDB_MODE"])
def test_invalid_mode_only_warns(tmp_path, monkeypatch, caplog, where):
    logger = dict(LOGGER)
    if where == "WANDB_MODE":
        monkeypatch.setenv("WANDB_MODE", "sometimes")
    else:
        logger["mode"] = "sometimes"
    tracker = tracking.start_job_run(logger, CFG, tmp_path / "job", group="g", name="n", tags=TAGS)
    tracker.log_epoch(1, ultralytics_epoch(1))
    tracker.finish(RESULT)
    (message,) = warnings_of(caplog)
    assert f"{where}='sometimes'" in message
    assert not (tmp_path / "job").exists()


def test_unwritable_dir_only_warns(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the job dir should be")
    tracker = tracking.start_job_run(LOGGER, CFG, blocker, group="g", name="n", tags=TAGS)
    tracker.log_epoch(1, ultralytics_epoch(1))
    tracker.finish(RESULT)
    tracking.log_aggregate(LOGGER, group="g", out_dir=blocker, table=pd.DataFrame({"a": [1]}), plots=[])
    assert len(warnings_of(caplog)) == 2


def test_wandb_import_error_only_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    tracker = tracking.start_job_run(LOGGER, CFG, tmp_path / "job", group="g", name="n", tags=TAGS)
    tracker.log_epoch(1, ultralytics_epoch(1))
    tracker.finish(RESULT)
    tracking.log_aggregate(LOGGER, group="g", out_dir=tmp_path, table=pd.DataFrame({"a": [1]}), plots=[])
    messages = warnings_of(caplog)
    assert len(messages) == 2 and all("ModuleNotFoundError" in m and "wandb" in m for m in messages)


def test_online_without_api_key_logs_offline(tmp_path, monkeypatch, caplog):
    job = tmp_path / "job"
    run_job(job, logger={**LOGGER, "mode": "online"}, epochs=1)
    assert only_run(job)["exit_code"] == 0  # written offline, for `make sync`
    (message,) = warnings_of(caplog)
    assert "WANDB_API_KEY" in message and "wandb login" in message


def test_wandb_mode_env_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run_job(tmp_path / "off")
    assert not (tmp_path / "off").exists()
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_job(tmp_path / "on", logger={**LOGGER, "mode": "disabled"}, epochs=1)
    assert only_run(tmp_path / "on")["exit_code"] == 0


@pytest.mark.parametrize("logger", [{"name": "none"}, None, {**LOGGER, "mode": "disabled"}])
def test_logger_none_does_nothing(tmp_path, caplog, logger):
    job = tmp_path / "job"
    tracker = run_job(job, logger=logger)
    assert not tracker.active and tracker.run_id is None
    tracking.log_aggregate(logger, group="g", out_dir=job, table=pd.DataFrame({"a": [1]}), plots=[])
    assert not job.exists()
    assert not warnings_of(caplog)


# ====================================================================================== aggregate
def ablation_table() -> pd.DataFrame:
    """Shaped like src.aggregate's ablation table: strings, means, nullable ints, NaN, booleans, None."""
    return pd.DataFrame(
        {
            "dataset": ["shapes"] * 3,
            "model": ["yolo11n"] * 3,
            "pos": ["-", "neck", "neck"],
            "attn": ["none", "ema", "cot"],
            "n": pd.array([3, 3, None], dtype="Int64"),
            "seeds": ["0 1 2"] * 3,
            "map50_95_mean": [0.30, 0.32, float("nan")],
            "map50_95_std": [0.01, 0.02, None],
            "gflops": [6.5, 6.6, 7.4],
            "params": [2.59e6, 2.6e6, 2.9e6],
            "delta_map50_95": [None, 0.02, None],
            "significant": [None, True, False],
            "test": [None, "paired", None],
            "is_baseline": [True, False, False],
        }
    )


def png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (24, 16), (200, 30, 30)).save(path)
    return path


def test_aggregate_run_holds_table_images_and_scatter(tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "plots").mkdir(parents=True)
    plots = [
        png(sweep / "plots" / "tradeoff_gflops.png"),
        png(sweep / "plots" / "curves.png"),
        sweep / "plots" / "missing.png",
        sweep / "report.md",
    ]
    table = ablation_table()
    tracking.log_aggregate(LOGGER, group="exp_2026", out_dir=sweep, table=table, plots=plots)

    run = only_run(sweep)
    assert (run["run"]["group"], run["run"]["job_type"], run["exit_code"]) == ("exp_2026", "aggregate", 0)
    files = next((sweep / "wandb").glob("offline-run-*")) / "files"
    summary = run["summary"]

    logged = summary[K.ABLATION_TABLE]
    assert logged["_type"] == "table-file" and logged["nrows"] == 3
    data = json.loads((files / logged["path"]).read_text().replace("NaN", "null"))
    assert data["columns"] == list(table.columns)
    assert data["data"][1][:4] == ["shapes", "yolo11n", "neck", "ema"]

    for stem in ("tradeoff_gflops", "curves"):
        image = summary[f"{K.PLOT_PREFIX}{stem}"]
        assert image["_type"] == "image-file" and (files / image["path"]).is_file()
    assert f"{K.PLOT_PREFIX}missing" not in summary and f"{K.PLOT_PREFIX}report" not in summary

    scatter = summary[K.TRADEOFF_TABLE]
    points = json.loads((files / scatter["path"]).read_text())
    assert points["columns"] == list(K.TRADEOFF_COLUMNS)
    assert points["data"] == [[6.5, 0.30, "none"], [6.6, 0.32, "ema@neck"]]  # the NaN row is left out
    chart = run["config"]["_wandb"]["visualize"][K.TRADEOFF_CHART]["panel_config"]
    assert chart["panelDefId"] == "wandb/scatter/v0"
    assert chart["fieldSettings"] == {"x": "gflops", "y": "map50_95"}


# ========================================================================= offline files, sync CLI
def test_offline_run_dirs_and_sync_dry_run(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert sync.main(["sync", str(sweep), "--dry-run"]) == 2
    assert "no offline W&B runs" in capsys.readouterr().err
    run_job(sweep / "0_attn=none", epochs=1)
    run_job(sweep / "1_attn=ema", epochs=1)
    tracking.log_aggregate(LOGGER, group="g", out_dir=sweep, table=ablation_table(), plots=[])
    (sweep / "2_attn=cot" / "wandb").mkdir(parents=True)  # a job whose W&B never started
    dirs = tracking.offline_run_dirs(sweep)
    assert [d.relative_to(sweep).parts[0] for d in dirs] == ["0_attn=none", "1_attn=ema", "wandb"]
    assert sync.main(["sync", str(sweep), "--dry-run"]) == 0  # the real `wandb sync --dry-run`
    assert "3 run(s)" in capsys.readouterr().out
    assert sync.main(["sync", str(sweep)]) == 2  # no API key: says so instead of prompting
    assert "WANDB_API_KEY" in capsys.readouterr().err


def test_module_cli_is_what_make_sync_runs(tmp_path):
    sweep = tmp_path / "sweep"
    run_job(sweep / "0_attn=none", epochs=1)
    done = subprocess.run(
        [sys.executable, "-m", "src.tracking", "dirs", str(sweep)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [Path(line) for line in done.stdout.splitlines()] == tracking.offline_run_dirs(sweep)


# ======================================================================================== package
def test_importing_tracking_pulls_in_neither_torch_nor_wandb():
    code = (
        "import sys, src.tracking, src.tracking.sync; "
        "bad = [m for m in ('torch', 'ultralytics', 'wandb') if m in sys.modules]; sys.exit(str(bad) if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
