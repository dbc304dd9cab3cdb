"""Sweeps never redo or lose finished work: skip, resume after SIGTERM or SIGKILL, re-run failures,
real datasets; a baseline's twins never wait for it; a result write cut short loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import (
    ROOT,
    TINY,
    cli_command,
    cli_env,
    job_dirs,
    load_result,
    run_cli,
    seconds_between,
    spawn_cli,
    training_starts,
    wait_for,
)
from test_convert import make_visdrone_fixture

from src.results import write_result

pytestmark = pytest.mark.e2e


def test_sigterm_marks_interrupted_and_a_rerun_resumes_then_skips(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    # long enough to be interrupted after the first epoch's checkpoint, short enough to resume
    args = [
        "-m",
        "attn=none",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        "train.epochs=6",
        "dataset.generator.n_train=32",
        f"paths.outputs={tmp_path}",
        f"paths.cache={shared_cache}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "src.run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "YOLO_OFFLINE": "1"},
    )
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
    args = [
        "-m",
        "dataset=visdrone",
        f"dataset.root={root}",
        "attn=ema",
        "pos=backbone_p5",
        f"hydra.sweep.dir={sweep}",
        "logger=none",
        "train.imgsz=64",
        "train.epochs=1",
        "train.batch=4",
        "train.workers=0",
        "++hydra.callbacks.aggregate.costs=false",  # the side-by-side pass: tests/test_costs.py
    ]
    first = run_cli(*args, outputs=tmp_path, cache=shared_cache)
    assert first.returncode == 1
    job = next(sweep.glob("0_*"))
    failed = load_result(job)
    assert failed["status"] == "failed" and str(root) in failed["error"] and "make data-visdrone" in failed["error"]
    assert failed["params"] is None  # failed before the model was built or measured

    from src.data.formats.visdrone import convert_visdrone

    for split in ("train", "val"):
        convert_visdrone(make_visdrone_fixture(tmp_path / "raw", n_images=6, split=split), root)
    second = run_cli(*args, outputs=tmp_path, cache=shared_cache)
    assert second.returncode == 0, second.stderr[-3000:]
    result = load_result(job)
    assert result["status"] == "completed" and result["dataset"] == "visdrone"
    assert result["metrics"]["map50"] is not None and (job / "train" / "weights" / "last.pt").is_file()


def test_baseline_is_trained_once_across_positions(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "attn=none",
        "pos=backbone_p5,neck",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        outputs=tmp_path,
        cache=shared_cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [load_result(d) for d in job_dirs(sweep)]
    assert [r["pos"] for r in results] == ["backbone_p5", "neck"]
    trained, reused = results
    assert not trained.get("reused_from") and reused["reused_from"] == trained["job_dir"]
    assert len(list(sweep.glob("*/train/weights/last.pt"))) == 1


def test_killed_baseline_owner_is_resumed_and_its_twins_never_wait(tmp_path, shared_cache):
    """The `none` baseline over 3 positions, 3 jobs at once: the first job trains it, the other two
    record `deferred` and end within 10 s of the owner's setup. SIGKILL of the owner mid-training.
    A re-run while the owner's `running` result looks live on another host trains nothing and says
    so; once that heartbeat is older than sweep.stale_after, the next run resumes it from last.pt
    and the table completes with one baseline training."""
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "attn=none",
        "pos=backbone_p5,neck,backbone",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        "train.epochs=6",
        "dataset.generator.n_train=32",
        "sweep.stale_after=30",
    ]  # time to kill mid-run
    log = tmp_path / "first.log"
    first = spawn_cli(
        *args, "hydra/launcher=parallel", "hydra.launcher.n_jobs=3", outputs=tmp_path, cache=shared_cache, log=log
    )
    try:
        owner_dir = wait_for(
            lambda: next((d.parent.parent.parent for d in sweep.glob("*/train/weights/last.pt")), None), 300, first, log
        )
        owner = load_result(owner_dir)
        twins = [load_result(d) for d in job_dirs(sweep) if d != owner_dir]
        assert owner["status"] == "running" and len(twins) == 2
        for twin in twins:  # old code: still `running`, polling for the owner
            assert twin["status"] == "deferred" and twin["deferred_to"] == str(owner_dir), twin
        setup = seconds_between(owner["started_at"], owner["train_started_at"])
        waited = [seconds_between(t["started_at"], t["finished_at"]) for t in twins]
        assert max(waited) <= setup + 10, (waited, setup)
        os.kill(owner["pid"], signal.SIGKILL)
        first.wait(timeout=120)  # the launcher sees its worker die and gives up
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode != 0

    # The owner's job now looks live on another host (fresh heartbeat): nobody trains it.
    write_result(owner_dir, {**load_result(owner_dir), "host": "othernode", "pid": 4242})
    second = run_cli(*args, outputs=tmp_path, cache=shared_cache, timeout=300)
    out = second.stdout + second.stderr
    assert "running elsewhere (host othernode, pid 4242" in out, out[-3000:]
    assert training_starts(out) == 0 and second.returncode == 1
    assert load_result(owner_dir)["host"] == "othernode"

    # Its heartbeat is older than stale_after: dead wherever it ran; the next run resumes it.
    stale = time.time() - 100
    os.utime(owner_dir / "result.json", (stale, stale))
    third = run_cli(*args, outputs=tmp_path, cache=shared_cache, timeout=300)
    assert third.returncode == 0, (third.stdout + third.stderr)[-3000:]
    assert training_starts(third.stdout + third.stderr) == 1
    done = load_result(owner_dir)
    assert done["status"] == "completed" and done["resumed_from"].endswith("last.pt"), done
    epochs = [line.split(",")[0].strip() for line in (owner_dir / "train" / "results.csv").read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(1, 7)]
    table = pd.read_csv(sweep / "ablation.csv")
    assert len(table) == 1 and table["n"].tolist() == [1]
    assert len(list(sweep.glob("*/train/weights/last.pt"))) == 1


def test_a_result_write_cut_short_keeps_the_previous_result(tmp_path, shared_cache):
    """Killed between writing the new result.json and renaming it over the old one, or stopped by a
    full disk (a file-size limit): the previous result stays intact, and the job runs again."""
    sweep, root = tmp_path / "sweep", tmp_path / "VisDrone"
    args = [
        "-m",
        "dataset=visdrone",
        f"dataset.root={root}",
        "attn=ema",
        "pos=backbone_p5",
        f"hydra.sweep.dir={sweep}",
        "logger=none",
        "train.imgsz=64",
        "train.epochs=1",
        "train.batch=4",
        "train.workers=0",
        "measure.latency_runs=3",
        "measure.ap_by_size=false",
        "++hydra.callbacks.aggregate.costs=false",  # the side-by-side pass: tests/test_costs.py
    ]
    assert run_cli(*args, outputs=tmp_path, cache=shared_cache).returncode == 1  # a failed job: no dataset yet
    job = next(sweep.glob("0_*"))
    before = (job / "result.json").read_bytes()

    kill_at_rename = (
        "import os, runpy, signal, sys\n"
        "replace = os.replace\n"
        "def dying(src, dst, *a, **k):\n"
        "    if str(dst).endswith('result.json'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return replace(src, dst, *a, **k)\n"
        "os.replace = dying\n"
        "sys.argv = ['src.run', *sys.argv[1:]]\n"
        "runpy.run_module('src.run', run_name='__main__')\n"
    )
    cmd = cli_command(*args, outputs=tmp_path, cache=shared_cache)
    killed = subprocess.run(
        [cmd[0], "-c", kill_at_rename, *cmd[3:]],
        cwd=ROOT,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (job / "result.json").read_bytes() == before
    assert list(job.glob(".result.json.*.tmp"))  # it did die between the write and the rename

    full_disk = (
        "import resource, sys\n"
        "from src.results import write_result\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))\n"
        "write_result(sys.argv[1], {'status': 'completed', 'padding': 'x' * 4096})\n"
    )
    limited = subprocess.run(
        [sys.executable, "-c", full_disk, str(job)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert limited.returncode != 0 and "File too large" in limited.stderr, limited.stderr[-2000:]
    assert (job / "result.json").read_bytes() == before

    from src.data.formats.visdrone import convert_visdrone

    for split in ("train", "val"):
        convert_visdrone(make_visdrone_fixture(tmp_path / "raw", n_images=4, split=split), root)
    again = run_cli(*args, outputs=tmp_path, cache=shared_cache)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert load_result(job)["status"] == "completed" and [d.name for d in job_dirs(sweep)] == [job.name]
