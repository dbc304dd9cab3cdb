"""End to end through `python -m src.run`: real Hydra, real ultralytics training, real files."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import TINY, files_under, home_of, job_dirs, load_result, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("single")
    proc = run_cli("attn=none", "hydra.run.dir=" + str(out / "job"), *TINY, outputs=out, cache=shared_cache)
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
    # AP by size scored the final validation's own predictions: no second validation pass
    assert result["ap_by_size_from"] == "final_validation"
    assert (job / "train" / "predictions.json").is_file() and not (job / "val").exists()
    assert {"map75", "ap_small", "coco_map50_95"} <= set(result["metrics"])
    assert result["best_epoch"] == 1


def test_a_second_validation_pass_gives_the_final_passs_predictions(baseline_run, tmp_path):
    """The fallback used where the final validation kept no predictions (multi-GPU runs)."""
    import json

    from src import ultralytics_glue

    _, job = baseline_run
    result = load_result(job)
    extra, predictions = ultralytics_glue.validate_with_predictions(
        job / "train" / "weights" / "best.pt", result["data_yaml"], tmp_path, imgsz=64, batch=8, device="cpu")
    final = json.loads((job / "train" / "predictions.json").read_text())
    assert extra["map75"] == result["metrics"]["map75"]
    assert len(predictions) == len(final) > 0
    assert {p["image_id"] for p in predictions} == {p["image_id"] for p in final}


def test_learning_curve_finds_the_best_epoch(tmp_path):
    from src.job import learning_curve

    csv = tmp_path / "train" / "results.csv"
    csv.parent.mkdir()
    csv.write_text("epoch,  metrics/mAP50(B),  metrics/mAP50-95(B)\n1,0.2,0.1\n2,0.5,0.3\n3,0.4,0.3\n4,0.6,0.25\n")
    assert learning_curve(csv) == {"curve": "train/results.csv", "best_epoch": 2}  # first of the tied best
    assert learning_curve(tmp_path / "missing.csv") == {"curve": None, "best_epoch": None}


def test_finetune_transfers_every_base_tensor(baseline_run, tmp_path, shared_cache):
    _, base_job = baseline_run
    weights = base_job / "train" / "weights" / "last.pt"
    proc = run_cli("attn=ema", "pos=backbone", f"model.weights={weights}", "hydra.run.dir=" + str(tmp_path / "job"),
                   *TINY, outputs=tmp_path, cache=shared_cache)
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
    proc = run_cli("-m", "attn=none,typo,cot,ema", f"hydra.searchpath=[file://{tmp_path / 'extra_conf'}]",
                   f"hydra.sweep.dir={sweep}", *TINY, outputs=tmp_path, cache=shared_cache, timeout=600)
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

    # W&B, offline: one run per job in its own dir, grouped by sweep, plus the aggregate run
    from src import tracking

    runs = [tracking.read_offline_run(d) for d in tracking.offline_run_dirs(sweep)]
    jobs = [r for r in runs if r["run"]["job_type"] == "train"]
    assert len(jobs) == 4 and len({r["run"]["id"] for r in jobs}) == 4
    assert {r["run"]["group"] for r in runs} == {f"config-{sweep.name}"}
    assert [r["run"]["job_type"] for r in runs].count("aggregate") == 1
    cot = next(r for r in jobs if r["config"].get("attn") == "cot")
    assert cot["run"]["name"].startswith("attn=cot") and "cot" in cot["run"]["tags"]
    assert cot["history"] and cot["history"][-1]["epoch"] == 1 and "metrics/map50_95" in cot["history"][-1]
    assert cot["summary"]["gflops"] > 0 and cot["exit_code"] == 0
    typo = next(r for r in jobs if r["config"].get("attn") == "emma")
    assert typo["exit_code"] == 1
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
    proc = run_cli("-m", "attn=none,cot,cot_lite,ema", "pos=backbone,neck", "dry_run=true", "logger=none",
                   "measure.latency_runs=5", f"hydra.sweep.dir={sweep}", outputs=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = pd.read_csv(sweep / "runs.csv")
    assert len(runs) == 8 and set(runs["status"]) == {"dry_run"}
    none = runs[runs["attn"] == "none"]["params"].iloc[0]
    assert (runs[runs["attn"] != "none"]["params"] > none).all()
    assert not list(sweep.rglob("weights"))
    assert runs["onnx_ok"].all(), runs[["attn", "pos", "onnx_error"]]  # every variant exports and runs in onnxruntime
    assert (runs["gflops_exact"] > 0).all() and (runs["latency_ms"] > 0).all()
    assert files_under(home_of(tmp_path)) == [], "a run wrote into the user's home"
