"""End to end through `python -m src.run`: real Hydra, real ultralytics training, real files."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import (
    LOGGED_AND_DRAWN,
    ROOT,
    TINY,
    cli_env,
    files_under,
    home_of,
    job_dirs,
    load_result,
    run_cli,
    training_starts,
)

from src.results import write_result

pytestmark = pytest.mark.e2e

# TINY with two validation images, which hold no circle (images depend only on their index), reported
# on val by the best checkpoint: ultralytics' own final validation is then the evaluation pass
TWO_VAL = [o for o in TINY if not o.startswith("dataset.generator.n_val=")] + [
    "dataset.generator.n_val=2",
    "eval.split=val",
]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("single")
    proc = run_cli("attn=none", "hydra.run.dir=" + str(out / "job"), *TWO_VAL, outputs=out, cache=shared_cache)
    return proc, out / "job"


def test_tiny_training_writes_a_complete_result(baseline_run):
    proc, job = baseline_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = load_result(job)
    assert result["status"] == "completed"
    assert (result["dataset"], result["attn"], result["pos"], result["model"]) == ("shapes", "none", "neck", "yolo11n")
    assert (result["seed"], result["epochs"], result["imgsz"]) == (0, 1, 64)
    assert set(result["metrics"]) >= {"map50", "map50_95", "precision", "recall"}
    assert all(isinstance(result["metrics"][k], float) for k in ("map50", "map50_95", "precision", "recall"))
    assert result["params"] > 2_000_000 and 5.0 < result["gflops"] < 8.0  # YOLO11n at 640: 6.x GFLOPs
    assert result["train_seconds"] > 0
    assert (job / "train" / "weights" / "last.pt").is_file()
    assert (job / "train" / "results.csv").is_file()
    assert (job / result["model_yaml"]).is_file()
    # AP by size from ultralytics' own COCO evaluation of the final validation: no second pass
    assert result["ap_by_size_from"] == "final_validation"
    assert (job / "train" / "predictions.json").is_file() and not (job / "val").exists()
    assert {"map75", "ap_small", "ap_medium", "coco_map50_95"} <= set(result["metrics"])
    assert result["metrics"]["ap_large"] is None  # no box of 96^2 px or more at 128 px: undefined, not 0
    assert result["best_epoch"] == 1
    assert (job / result["pr_curve_file"]).is_file() and (job / result["matches_file"]).is_file()


def test_per_class_ap_is_the_final_validations(baseline_run):
    """Per-class AP of the same pass as map50_95: their mean over the classes with instances is it."""
    _, job = baseline_run
    result = load_result(job)
    per_class = result["per_class"]
    assert list(per_class) == sorted(result["class_names"]) and len(result["class_names"]) == 5
    assert per_class["circle"] is None  # no circle among the validation images: undefined, not 0
    present = [v for v in per_class.values() if v is not None]
    assert len(present) == 4 and all(v["instances"] > 0 for v in present)
    mean = sum(v["ap50_95"] for v in present) / len(present)
    assert mean == pytest.approx(result["metrics"]["map50_95"], abs=1e-6)


def test_the_job_trains_exactly_as_plain_ultralytics(baseline_run, tmp_path):
    """Plain `YOLO(model_yaml).train(...)` with the job's model YAML, data and arguments gives the
    job's losses and metrics epoch by epoch: handing ultralytics the model the job built for its
    measurements (instead of a second build) and our trainer subclass change nothing it trains."""
    from src.bench.overhead import PLAIN_CODE, plain_train_args

    _, job = baseline_run
    args = {**plain_train_args(job, load_result(job)), "project": str(tmp_path / "plain")}
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_CODE, json.dumps(args)],
        cwd=ROOT,
        env=cli_env(tmp_path / "out"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, plain = (pd.read_csv(d / "train" / "results.csv").drop(columns="time") for d in (job, tmp_path / "plain"))
    assert len(ours) == 1 and ours.columns.tolist() == plain.columns.tolist()
    assert ours.to_numpy().tolist() == plain.to_numpy().tolist()


def test_matches_file_reproduces_the_jobs_map(baseline_run):
    import numpy as np
    from ultralytics.utils.metrics import ap_per_class

    _, job = baseline_run
    result = load_result(job)
    m = np.load(job / result["matches_file"])
    assert sorted(m.files) == sorted(["tp", "conf", "pred_cls", "pred_image", "gt_cls", "gt_image", "n_images", "iouv"])
    n_pred, n_gt = len(m["conf"]), len(m["gt_cls"])
    assert m["tp"].shape == (n_pred, 10) and m["tp"].dtype == bool and m["conf"].dtype == np.float32
    assert len(m["pred_cls"]) == len(m["pred_image"]) == n_pred and len(m["gt_image"]) == n_gt
    assert int(m["n_images"]) == 2 and set(m["gt_image"].tolist()) <= {0, 1}
    assert len(m["iouv"]) == 10 and m["iouv"][0] == pytest.approx(0.5)
    counts = np.bincount(m["gt_cls"], minlength=5)
    for i, name in enumerate(result["class_names"]):
        entry = result["per_class"][name]
        assert counts[i] == (entry["instances"] if entry else 0)
    ap = ap_per_class(m["tp"], m["conf"], m["pred_cls"], m["gt_cls"])[5]
    assert ap.mean() == pytest.approx(result["metrics"]["map50_95"], abs=1e-6)
    lines = (job / result["pr_curve_file"]).read_text().splitlines()
    assert lines[0] == "recall,precision" and len(lines) == 1001
    ci = result["metrics_ci"]  # the test-set CI from those matches, with its point estimate inside
    assert ci["n_resamples"] == 200 and ci["seed"] == 0  # TINY's aggregate.bootstrap
    assert ci["point"]["map50_95"] == pytest.approx(result["metrics"]["map50_95"], abs=1e-6)
    for key in ("map50_95", "map50"):
        assert ci[key][0] <= ci["point"][key] <= ci[key][1]


def test_a_run_killed_after_its_last_epoch_is_recorded_from_its_checkpoint(baseline_run, tmp_path, shared_cache):
    """Killed after the last epoch's save but before the job recorded it: ultralytics would refuse
    to resume ("nothing to resume"); the re-run validates best.pt and records the same numbers."""
    import os
    import shutil

    from src.ultralytics_glue.trainer import training_finished

    _, job = baseline_run
    original = load_result(job)
    copy = tmp_path / "job"
    shutil.copytree(job, copy, ignore=shutil.ignore_patterns("wandb"))
    assert training_finished(copy / "train" / "weights" / "last.pt")
    write_result(copy, {**original, "status": "running", "job_dir": str(copy), "pid": 0})
    old = os.path.getmtime(copy / "result.json") - 7200  # its heartbeat long stale
    os.utime(copy / "result.json", (old, old))
    proc = run_cli("attn=none", "hydra.run.dir=" + str(copy), *TWO_VAL, outputs=tmp_path / "out", cache=shared_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = load_result(copy)
    assert result["status"] == "completed" and result["ap_by_size_from"] == "validation_of_a_finished_run"
    assert result["metrics"]["map50_95"] == pytest.approx(original["metrics"]["map50_95"], abs=1e-6)
    assert training_starts(proc.stdout + proc.stderr) == 0


def test_a_second_validation_pass_records_what_the_final_one_did(baseline_run, tmp_path):
    """The fallback used where the final validation kept nothing (multi-GPU runs)."""
    import numpy as np

    from src.ultralytics_glue.validation import revalidate

    _, job = baseline_run
    result = load_result(job)
    record = revalidate(
        job / "train" / "weights" / "best.pt", result["data_yaml"], tmp_path, imgsz=64, batch=8, device="cpu"
    )
    assert record.per_class == result["per_class"]
    for key in ("map75", "ap_small", "ap_medium", "ap_large", "coco_map50_95"):
        assert record.metrics[key] == pytest.approx(result["metrics"][key]), key
    final = np.load(job / result["matches_file"])
    assert len(record.matches["conf"]) == len(final["conf"]) and int(record.matches["n_images"]) == 2


def test_learning_curve_finds_the_best_epoch(tmp_path):
    from src.job.training import learning_curve

    csv = tmp_path / "train" / "results.csv"
    csv.parent.mkdir()
    csv.write_text("epoch,  metrics/mAP50(B),  metrics/mAP50-95(B)\n1,0.2,0.1\n2,0.5,0.3\n3,0.4,0.3\n4,0.6,0.25\n")
    assert learning_curve(csv) == {"curve": "train/results.csv", "best_epoch": 2}  # first of the tied best
    assert learning_curve(tmp_path / "missing.csv") == {"curve": None, "best_epoch": None}


def test_finetune_transfers_every_base_tensor(baseline_run, tmp_path, shared_cache):
    _, base_job = baseline_run
    weights = base_job / "train" / "weights" / "last.pt"
    proc = run_cli(
        "attn=ema",
        "pos=backbone",
        f"model.weights={weights}",
        "hydra.run.dir=" + str(tmp_path / "job"),
        *TINY,
        outputs=tmp_path,
        cache=shared_cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = load_result(tmp_path / "job")
    done, total = result["transferred"]
    assert done == total > 400
    assert f"{done}/{total} tensors transferred" in proc.stdout + proc.stderr


def test_sweep_trains_every_variant_contains_a_failure_and_prints_the_table(tmp_path, shared_cache):
    conf = tmp_path / "extra_conf" / "attn"
    conf.mkdir(parents=True)
    (conf / "typo.yaml").write_text("name: emma\nparams: {}\n")  # passes Hydra, rejected by our validation
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "attn=none,typo,cot,ema",
        f"hydra.searchpath=[file://{tmp_path / 'extra_conf'}]",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        *LOGGED_AND_DRAWN,
        outputs=tmp_path,
        cache=shared_cache,
        timeout=600,
    )
    assert proc.returncode == 1, "a sweep with a failed job exits non-zero"  # but it ran to the end
    results = {d.name: load_result(d) for d in job_dirs(sweep)}
    statuses = {name: r["status"] for name, r in results.items()}
    assert sorted(statuses.values()) == ["completed", "completed", "completed", "failed"], statuses
    failed = next(r for r in results.values() if r["status"] == "failed")
    assert "unknown attn 'emma'" in failed["error"] and "ema" in failed["error"]
    table = pd.read_csv(sweep / "ablation.csv")
    assert set(table["attn"]) >= {"none", "cot", "ema"}
    assert (sweep / "ablation.md").is_file() and (sweep / "ablation.tex").is_file()
    assert "emma" in (sweep / "ablation.md").read_text()  # failures listed under the table
    assert "cot" in proc.stdout and "ema" in proc.stdout  # the table was printed
    assert "[sweep] job 4/4 end" in proc.stdout and "ETA" in proc.stdout  # sweep-level progress lines

    # per class: 5 classes x the 3 variants that trained, printed too; the figures drawn after it
    per_class = pd.read_csv(sweep / "per_class.csv")
    assert len(per_class) == 15 and set(per_class["attn"]) == {"none", "cot", "ema"}
    assert "per-class AP50-95" in proc.stdout and "Drew 3 figure(s)" in proc.stdout
    figures = ["shapes_yolo11n_cam.png", "shapes_yolo11n_module.png", "shapes_yolo11n_detections.png"]
    figures.append("shapes_yolo11n_pr.png")
    assert all((sweep / "plots" / f).is_file() for f in figures)
    report = (sweep / "report.md").read_text()
    assert all(f"plots/{f}" in report for f in figures) and "per-class AP" in report

    # W&B, offline: one run per job that passed the config checks, in its own dir, grouped by sweep, plus the
    # aggregate run (the typo fails before any work, W&B included: its result.json and the table record it)
    from src import tracking

    runs = [tracking.read_offline_run(d) for d in tracking.offline_run_dirs(sweep)]
    jobs = [r for r in runs if r["run"]["job_type"] == "train"]
    assert len(jobs) == 3 and len({r["run"]["id"] for r in jobs}) == 3
    assert {r["run"]["group"] for r in runs} == {f"config-{sweep.name}"}
    assert [r["run"]["job_type"] for r in runs].count("aggregate") == 1
    aggregate_run = next(r for r in runs if r["run"]["job_type"] == "aggregate")
    from src.tracking import keys

    assert aggregate_run["summary"][keys.PER_CLASS_TABLE]["nrows"] == 15
    assert f"{keys.PLOT_PREFIX}shapes_yolo11n_cam" in aggregate_run["summary"]
    cot = next(r for r in jobs if r["config"].get("attn") == "cot")
    assert cot["run"]["name"].startswith("attn=cot") and "cot" in cot["run"]["tags"]
    assert cot["history"] and cot["history"][-1]["epoch"] == 1 and "metrics/map50_95" in cot["history"][-1]
    assert cot["summary"]["gflops"] > 0 and cot["exit_code"] == 0
    assert not any(r["config"].get("attn") == "emma" for r in jobs)
    assert files_under(home_of(tmp_path)) == [], "a run wrote into the user's home"


def test_unknown_attn_is_rejected_before_anything_runs(tmp_path):
    proc = run_cli("attn=foo", outputs=tmp_path)
    assert proc.returncode != 0
    assert "Could not find 'attn/foo'" in proc.stderr and "ema" in proc.stderr and "cot_lite" in proc.stderr
    assert not list(tmp_path.rglob("result.json"))


def test_bad_position_fails_fast_with_the_valid_range(tmp_path):
    proc = run_cli("attn=ema", "pos.after=[6,99]", "hydra.run.dir=" + str(tmp_path / "job"), outputs=tmp_path)
    assert proc.returncode == 1
    assert "index 99 is outside the model" in proc.stderr and "0..22" in proc.stderr
    result = load_result(tmp_path / "job")
    assert result["status"] == "failed" and "0..22" in result["error"]
    assert not (tmp_path / "job" / "train").exists()


def test_dry_run_sweep_gives_a_cost_table(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "attn=none,cot,cot_lite,ema",
        "pos=neck",
        "dry_run=true",
        "logger=none",
        "measure.latency_runs=5",
        "train.imgsz=64",
        "measure.throughput_batch=2",
        "++hydra.callbacks.aggregate.costs=false",  # the side-by-side pass: tests/test_costs.py
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}",  # an interpolation as typed: each job's resume command keeps it
        outputs=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"0", "1", "2", "3"} <= {d.name for d in sweep.iterdir() if d.is_dir()}
    runs = pd.read_csv(sweep / "runs.csv")
    assert len(runs) == 4 and set(runs["status"]) == {"dry_run"}
    none = runs[runs["attn"] == "none"]["params"].iloc[0]
    assert (runs[runs["attn"] != "none"]["params"] > none).all()
    assert not list(sweep.rglob("weights"))
    assert runs["onnx_ok"].all(), runs[["attn", "pos", "onnx_error"]]  # every variant exports and runs in onnxruntime
    assert (runs["gflops_exact"] > 0).all() and (runs["latency_ms_job"] > 0).all()
    assert files_under(home_of(tmp_path)) == [], "a run wrote into the user's home"


@pytest.mark.e2e
def test_every_job_of_a_sweep_times_latency_with_the_configured_threads_and_prints_one_line_an_epoch(
    tmp_path, shared_cache
):
    """The first job of a sequential sweep used to time with torch's start-up threads and later jobs with
    what the previous training left behind; measure.threads (default 1) is now set before every timing.
    By default (console=epochs) ultralytics' output goes to each job's run.log, the console gets one line
    per epoch, and a repeated warning comes once per job."""
    sweep = tmp_path / "sweep"
    tiny = [o for o in TINY if not o.startswith(("console=", "train.epochs="))]
    proc = run_cli(
        "-m", "attn=none,se", "train.epochs=2", f"hydra.sweep.dir={sweep}", *tiny, outputs=tmp_path, cache=shared_cache
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    dirs = job_dirs(sweep)
    results = [load_result(d) for d in dirs]
    assert [r["status"] for r in results] == ["completed", "completed"]
    assert [r["latency_threads"] for r in results] == [1, 1]
    # each training's own peak memory: the process's peak RSS, reset before each (one process, two jobs)
    assert all(r["train_peak_mem_mb"] > 0 and "reset" in r["train_peak_mem_how"] for r in results)
    console = proc.stdout + proc.stderr
    epoch_lines = [line for line in console.splitlines() if line.startswith("[job] ")]
    assert [line.split(":")[0] for line in epoch_lines] == [f"[job] {d.name} epoch {e}/2" for d in dirs for e in (1, 2)]
    assert all("mAP50-95 " in line for line in epoch_lines)
    assert training_starts(console) == 0 and "[sweep] job 2/2 end" in console
    runs = [(d / "run.log").read_text() for d in dirs]
    assert training_starts(*runs) == 2
    warning = "cache='ram' may produce non-deterministic"
    assert console.count(warning) == 2 and all(run.count(warning) <= 1 for run in runs)
    assert "WARNING ⚠️ WARNING" not in console
