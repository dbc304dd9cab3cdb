"""Sweeps on many machines: job locks, heartbeats and liveness, baseline deferral and its resolution
in the table, the plan before launch, and nothing written outside `paths.outputs`."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import LOGGED_AND_DRAWN, ROOT, TINY, cli_env, home_of, tree_listing, wait_for
from test_aggregate import Sweep

from src.aggregate import aggregate
from src.config.identity import config_hash, train_key
from src.job.baseline import WHY, choose_owner
from src.results import empty_result, write_result
from src.sweep.heartbeat import Heartbeat
from src.sweep.lock import held_elsewhere, job_lock
from src.sweep.plan import parse_argv, plan, render, sweep_jobs, wants_plan
from src.sweep.progress import outcome_line
from src.sweep.state import DEFERRED_STATE, DONE, ELSEWHERE, FAILED_STATE, NEW, is_live, job_state
from src.sweep.state import RESUMABLE as RESUMABLE_STATE
from src.ultralytics_glue.trainer import stripping_beside, written_beside

HOST = socket.gethostname()


def running(job_dir: Path, *, host: str = HOST, pid: int | None = None, age: float = 0.0, **extra) -> dict:
    """A `running` result in `job_dir` whose heartbeat is `age` seconds old."""
    result = {
        **empty_result(attn="none", seed=0),
        "host": host,
        "pid": pid or os.getpid(),
        "config_hash": "h",
        "train_key": "tk",
        **extra,
    }
    write_result(job_dir, result)
    if age:
        then = time.time() - age
        os.utime(job_dir / "result.json", (then, then))
    return result


def checkpoint(job_dir: Path, *, truncated: bool = False) -> None:
    """A last.pt as torch.save writes it, or cut short as a kill mid-save leaves it."""
    last = job_dir / "train" / "weights" / "last.pt"
    last.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 2, "ema": torch.zeros(1000)}, last)
    if truncated:
        last.write_bytes(last.read_bytes()[:-200])


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ----------------------------------------------------------------------------- locks, liveness
def test_job_lock_admits_one_holder_and_the_probe_sees_it(tmp_path):
    assert held_elsewhere(tmp_path) is None  # no lock file: a job from before locks
    with job_lock(tmp_path) as first:
        assert first and held_elsewhere(tmp_path) is True
        with job_lock(tmp_path, wait=0.2) as second:  # a second launch, even in the same process
            assert not second
    assert held_elsewhere(tmp_path) is False


def test_a_killed_holder_leaves_its_lock_free(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from src.sweep.lock import job_lock\n"
            "with job_lock(Path(sys.argv[1])):\n    time.sleep(120)",
            str(tmp_path),
        ],
        cwd=ROOT,
    )
    try:
        wait_for(lambda: held_elsewhere(tmp_path), 60, holder)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert held_elsewhere(tmp_path) is False


def test_liveness_by_heartbeat_on_other_hosts_and_by_lock_or_pid_on_this_one(tmp_path):
    assert is_live(tmp_path, running(tmp_path, host="othernode", pid=1), 60)
    assert not is_live(tmp_path, running(tmp_path, host="othernode", pid=1, age=120), 60)  # stale: dead anywhere
    assert is_live(tmp_path, running(tmp_path), 60)  # this pid, no lock file
    assert not is_live(tmp_path, running(tmp_path, pid=dead_pid()), 60)
    assert not is_live(tmp_path, running(tmp_path, host="othernode", interrupted=True), 60)
    with job_lock(tmp_path):
        result = running(tmp_path, pid=dead_pid())
        assert is_live(tmp_path, result, 60)  # the lock is what counts on this host
        assert not is_live(tmp_path, result, 60, own_lock=True)  # ... unless the caller holds it
    assert not is_live(tmp_path, result, 60)


def test_heartbeat_touches_the_result_while_the_job_works(tmp_path):
    running(tmp_path, age=100)
    with Heartbeat(tmp_path / "result.json", every=0.2):
        time.sleep(0.6)
    assert time.time() - (tmp_path / "result.json").stat().st_mtime < 5


def test_job_states(tmp_path):
    def state(previous, dry_run=False):
        return job_state(tmp_path, previous, "h", dry_run, 60).kind

    assert state(None) == NEW
    assert state({"status": "completed", "config_hash": "h"}) == DONE
    assert state({"status": "completed", "config_hash": "other"}) == NEW
    assert state({"status": "dry_run", "config_hash": "h"}, dry_run=True) == DONE
    assert state({"status": "failed", "config_hash": "h", "error": "x"}) == FAILED_STATE
    assert state({"status": "deferred", "config_hash": "h", "deferred_to": "/s/0_a"}) == DEFERRED_STATE
    assert state(running(tmp_path, host="othernode")) == ELSEWHERE
    assert state(running(tmp_path, pid=dead_pid())) == NEW  # died before its first checkpoint
    checkpoint(tmp_path, truncated=True)  # killed while ultralytics wrote it: nothing to resume
    cut = job_state(tmp_path, running(tmp_path, host="othernode", age=120), "h", False, 60)
    assert cut.kind == NEW and "truncated" in cut.detail
    checkpoint(tmp_path)
    stale = job_state(tmp_path, running(tmp_path, host="othernode", age=120), "h", False, 60)
    assert stale.kind == "resumable" and "stale: host othernode" in stale.detail


def test_checkpoints_are_renamed_into_place_whole(tmp_path):
    """ultralytics writes last.pt / best.pt in place; ours go beside and are renamed, so a save that
    dies half-way leaves the previous checkpoint as it was."""
    saver = SimpleNamespace(last=tmp_path / "last.pt", best=tmp_path / "best.pt")
    saver.last.write_bytes(b"epoch 1")
    saver.best.write_bytes(b"epoch 1")
    (tmp_path / "best.pt.partial").write_bytes(b"left by a save that raised")

    with pytest.raises(OSError):
        with written_beside(saver, "last", "best"):
            saver.last.write_bytes(b"epo")  # cut short
            raise OSError("killed mid-save")
    assert saver.last == tmp_path / "last.pt" and saver.last.read_bytes() == b"epoch 1"

    with written_beside(saver, "last", "best"):
        assert saver.last.name == "last.pt.partial"
        saver.last.write_bytes(b"epoch 2")  # not a new best: best.pt is not written
    assert saver.last.read_bytes() == b"epoch 2" and saver.best.read_bytes() == b"epoch 1"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no partial left behind


def test_the_final_strip_of_the_optimizer_is_renamed_into_place_too(tmp_path):
    """ultralytics' final_eval strips last.pt and best.pt with torch.save over the file; under
    stripping_beside a strip that dies half-way leaves the checkpoint as it was."""
    from ultralytics.engine import trainer as engine

    last = tmp_path / "last.pt"
    torch.save({"model": torch.nn.Linear(2, 2), "ema": None, "epoch": 3, "train_args": {}}, last)
    before = last.read_bytes()
    with stripping_beside():
        with pytest.raises((AttributeError, pickle.PicklingError)):  # a local lambda: torch.save fails mid-write
            engine.strip_optimizer(last, updates={"unpicklable": lambda: 0})
        assert last.read_bytes() == before
        engine.strip_optimizer(last)
    assert torch.load(last, weights_only=False)["epoch"] == -1  # stripped, in place of the old one
    assert sorted(f.name for f in tmp_path.iterdir()) == ["last.pt"]
    assert engine.strip_optimizer.__module__ == "ultralytics.utils.torch_utils"  # put back


def test_the_baseline_goes_to_a_completed_then_a_live_then_a_resumable_twin(tmp_path):
    dirs = [tmp_path / f"{i}_attn=none" for i in range(3)]
    for d in dirs:
        d.mkdir()
    dead, live = running(dirs[0], pid=dead_pid()), running(dirs[1], host="othernode")
    checkpoint(dirs[0])
    twins = [(dirs[0], dead), (dirs[1], live)]
    assert choose_owner(twins, 60, None, can_resume=False)[::2] == (dirs[1], WHY[ELSEWHERE])
    assert choose_owner([(dirs[0], dead)], 60, None, can_resume=False)[::2] == (dirs[0], WHY[RESUMABLE_STATE])
    assert choose_owner([(dirs[0], dead)], 60, None, can_resume=True) is None  # it resumes its own
    checkpoint(dirs[0], truncated=True)
    assert choose_owner([(dirs[0], dead)], 60, None, can_resume=False) is None  # nothing there to resume
    checkpoint(dirs[0])
    once = {"status": "deferred", "deferred_to": str(dirs[0]), "deferred_because": WHY[RESUMABLE_STATE]}
    assert choose_owner([(dirs[0], dead)], 60, once, can_resume=False) is None  # it never came back
    done = {"status": "completed", "job_dir": str(dirs[2])}
    assert choose_owner([*twins, (dirs[2], done)], 60, None, can_resume=False)[::2] == (dirs[2], WHY[DONE])


# ------------------------------------------------------------------------- deferred, in the table
def test_a_deferred_baseline_takes_its_owners_result_in_the_table(tmp_path):
    sw = Sweep(tmp_path)
    owner = sw.add("none", "backbone", map50_95=0.30)
    twin = sw.add("none", "neck", status="deferred", deferred_to=str(owner))
    sw.add("cbam", "neck", map50_95=0.35)
    summary = aggregate([tmp_path], write=False)
    assert summary.n_problems == 0 and summary.n_completed == 3  # the sweep exits 0
    row = summary.runs[summary.runs["job_dir"] == str(twin)].iloc[0]
    assert row["reused_from"] == str(owner) and row["pos"] == "neck" and row["map50_95"] == pytest.approx(0.30)
    assert summary.ablation["n"].tolist() == [1, 1]  # one baseline training, counted once
    assert outcome_line(twin).startswith("deferred to the baseline training in")


@pytest.mark.parametrize(
    "owner_status,expected,says",
    [
        ("failed", "failed", "which failed: boom"),
        ("gone", "missing", "which has no usable result"),
        ("stopped", "running", "which stopped"),
    ],
)
def test_a_deferred_baseline_whose_owner_did_not_complete_is_a_problem(tmp_path, owner_status, expected, says):
    sw = Sweep(tmp_path)
    owner = sw.job_dir()
    if owner_status == "failed":
        write_result(owner, {**empty_result(attn="none"), "status": "failed", "error": "boom"})
    elif owner_status == "stopped":
        running(owner, pid=dead_pid())
    twin = sw.add("none", "neck", status="deferred", deferred_to=str(owner))
    summary = aggregate([twin], write=False)
    row = summary.runs.iloc[0]
    assert row["status"] == expected and says in row["error"] and summary.n_problems == 1


def test_a_job_running_elsewhere_is_said_so(tmp_path):
    running(tmp_path, host="othernode", pid=77)
    assert outcome_line(tmp_path).startswith("running elsewhere (host othernode, pid 77, last heartbeat")
    assert "still running (host othernode" in aggregate([tmp_path], write=False).problems["error"][0]


# ------------------------------------------------------------------------------------ the plan
def test_plan_is_asked_for_with_plan_true():
    assert wants_plan(["-m", "attn=none,ema", "plan=true"]) and not wants_plan(["-m", "plan=false"])
    assert parse_argv(["-m", "attn=a,b", "plan=true", "-cn", "other"]) == (True, "other", ["attn=a,b"])


def test_plan_lists_every_state_and_the_compute_left_and_writes_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    overrides = [
        "attn=none,ema",
        "pos=neck,backbone",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        f"paths.outputs={tmp_path}",
    ]
    _, jobs = sweep_jobs(True, "config", overrides)
    dirs = {num: job_dir for num, _, job_dir, _ in jobs}
    cfgs = {num: cfg for num, _, _, cfg in jobs}

    def put(num, status, **extra):  # job order: attn, then pos, then seed
        cfg = cfgs[num]
        write_result(
            dirs[num],
            {
                **empty_result(attn=cfg["attn"]["name"], seed=cfg["seed"]),
                "status": status,
                "config_hash": config_hash(cfg),
                "job_dir": str(dirs[num]),
                **extra,
            },
        )

    key = train_key(cfgs[0])
    put(0, "completed", train_key=key, train_seconds=100)
    put(1, "running", host=HOST, pid=dead_pid(), epochs_done=6)
    checkpoint(dirs[1])
    put(4, "failed", error="CUDA out of memory")
    put(5, "running", host="othernode", pid=9)
    put(7, "completed", train_key=key, train_seconds=80)
    before = {p: p.stat().st_mtime_ns for p in sweep.rglob("*")}

    cmd = [sys.executable, "-m", "src.run", "-m", *overrides, "plan=true"]
    out = subprocess.run(cmd, cwd=ROOT, env=cli_env(tmp_path / "out"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "compute for the 3 job(s) to train: ~3m30s" in out.stdout and not (sweep / "multirun.yaml").exists()
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("*")} == before  # nothing written, nothing added

    _, planned = plan(*parse_argv(["-m", *overrides, "plan=true"]))
    states = [str(p.state) for p in planned]
    assert states[0] == DONE and states[7] == DONE
    assert states[1].startswith("resumable (died: host")
    assert states[2] == f"{DEFERRED_STATE} (job 0, done)"
    assert states[3] == f"{DEFERRED_STATE} (job 1, trains it in this run)"
    assert states[4].startswith("failed (CUDA out of memory") and states[5].startswith(ELSEWHERE)
    assert states[6] == NEW
    # none, resumable at 6/12 epochs: half of none's 100 s; ema jobs: ema's own 80 s
    assert [p.estimate for p in planned] == [None, 50.0, None, None, 80.0, None, 80.0, None]
    counts = "2 done, 1 resumable, 1 failed, 1 running elsewhere, 2 deferred to a baseline, 1 new"
    assert counts in render(sweep, planned)


# ---------------------------------------------------------------------------- outputs elsewhere
@pytest.mark.e2e
def test_a_sweep_writing_outside_the_repository_leaves_it_byte_for_byte_unchanged(tmp_path, shared_cache):
    """On a copy of the repository (other work may change this one meanwhile), everything but
    `.venv`, with Python's bytecode cache brought up to date first (a fresh clone's first import
    writes `__pycache__/`; that is Python's, ours or not): a sweep with paths.outputs outside it,
    W&B on, training and aggregating, changes no file of it and writes nothing into HOME."""
    repo = tmp_path / "repo"
    try:
        shutil.copytree(ROOT, repo, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
    except shutil.Error:  # a file another process removed while we copied: the copy is what we compare
        pass
    subprocess.run([sys.executable, "-m", "compileall", "-q", "src"], cwd=repo, check=True, capture_output=True)
    before = tree_listing(repo)
    outputs = tmp_path / "elsewhere"
    cmd = [
        sys.executable,
        "-m",
        "src.run",
        "-m",
        "attn=none",
        "pos=backbone_p5,neck",
        *TINY,
        *LOGGED_AND_DRAWN,
        f"paths.outputs={outputs}",
        f"paths.cache={shared_cache}",
    ]
    proc = subprocess.run(cmd, cwd=repo, env=cli_env(outputs), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert len(list(outputs.glob("sweeps/*/*/result.json"))) == 2 and list(outputs.glob("sweeps/*/*/wandb"))
    after = tree_listing(repo)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], changed
    assert list(home_of(outputs).iterdir()) == []
