"""Sweeps never redo or lose finished work: skip, resume after SIGTERM, re-run failures, real datasets."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TINY, job_dirs, load_result, run_cli
from test_convert import make_visdrone_fixture

pytestmark = pytest.mark.e2e


def test_sigterm_marks_interrupted_and_a_rerun_resumes_then_skips(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    # long enough to be interrupted after the first epoch's checkpoint, short enough to resume
    args = ["-m", "attn=none", f"hydra.sweep.dir={sweep}", *TINY, "train.epochs=6", "dataset.generator.n_train=64",
            f"paths.outputs={tmp_path}", f"paths.cache={shared_cache}"]
    proc = subprocess.Popen([sys.executable, "-m", "src.run", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    deadline = time.time() + 240
    while time.time() < deadline:  # wait for the first epoch's checkpoint
        if list(sweep.glob("*/train/weights/last.pt")) and list(sweep.glob("*/train/results.csv")):
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("no checkpoint after 240 s")
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output[-2000:]
    job = next(sweep.glob("0_*"))
    interrupted = load_result(job)
    assert interrupted["status"] == "running" and interrupted["interrupted"], interrupted
    assert "SIGTERM" in interrupted["error"]

    rerun = run_cli(*args[:-2], outputs=tmp_path, cache=shared_cache)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    done = load_result(job)
    assert done["status"] == "completed" and done["resumed_from"].endswith("last.pt")
    epochs = [line.split(",")[0].strip() for line in (job / "train" / "results.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3", "4", "5", "6"]

    before = (job / "result.json").read_text()
    again = run_cli(*args[:-2], outputs=tmp_path, cache=shared_cache)
    assert again.returncode == 0 and "skipped" in again.stdout + again.stderr
    assert (job / "result.json").read_text() == before  # nothing retrained, nothing rewritten


def test_failed_job_is_rerun_and_visdrone_format_trains(tmp_path, shared_cache):
    """A missing dataset fails before any model is built; after converting, the same sweep completes."""
    root = tmp_path / "VisDrone"
    sweep = tmp_path / "sweep"
    args = ["-m", "dataset=visdrone", f"dataset.root={root}", "attn=ema", "pos=backbone_p5",
            f"hydra.sweep.dir={sweep}", "train.imgsz=64", "train.epochs=1", "train.batch=4", "train.workers=0"]
    first = run_cli(*args, outputs=tmp_path, cache=shared_cache)
    assert first.returncode == 1
    job = next(sweep.glob("0_*"))
    failed = load_result(job)
    assert failed["status"] == "failed" and str(root) in failed["error"] and "make data-visdrone" in failed["error"]
    assert failed["params"] is None  # failed before the model was built or measured

    from src.data.convert import convert_visdrone

    for split in ("train", "val"):
        convert_visdrone(make_visdrone_fixture(tmp_path / "raw", n_images=6, split=split), root)
    second = run_cli(*args, outputs=tmp_path, cache=shared_cache)
    assert second.returncode == 0, second.stderr[-3000:]
    result = load_result(job)
    assert result["status"] == "completed" and result["dataset"] == "visdrone"
    assert result["metrics"]["map50"] is not None and (job / "train" / "weights" / "last.pt").is_file()


def test_baseline_is_trained_once_across_positions(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "attn=none", "pos=backbone_p5,neck", f"hydra.sweep.dir={sweep}", *TINY,
                   outputs=tmp_path, cache=shared_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [load_result(d) for d in job_dirs(sweep)]
    assert [r["pos"] for r in results] == ["backbone_p5", "neck"]
    trained, reused = results
    assert not trained.get("reused_from") and reused["reused_from"] == trained["job_dir"]
    assert len(list(sweep.glob("*/train/weights/last.pt"))) == 1
