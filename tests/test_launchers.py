"""Hydra's real launchers: submitit (the SLURM code path, run locally) and joblib (parallel); two
launches of one sweep at once."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd
import pytest
from conftest import TINY, job_dirs, load_result, run_cli, spawn_cli, training_starts

from src.sweep.placement import place

pytestmark = pytest.mark.e2e


# Settings spelled out as they are: with TINY, a command line past the 255 bytes a dir name may have
SPELLED_OUT = [
    "train.cos_lr=false",
    "train.patience=100",
    "train.amp=true",
    "train.deterministic=true",
    "train.val=true",
    "measure.threads=1",
    "eval.checkpoint=best",
    "sweep.stale_after=1800",
]


def test_submitit_local_sweep_completes_and_aggregates(tmp_path, shared_cache):
    """Each job in its own submitit process, which names its own dir: past 248 bytes of overrides,
    their start, `~` and a hash (src/runtime.py `job_dirname`), instead of an OSError."""
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "hydra/launcher=local",
        "attn=none,ema",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        *SPELLED_OUT,
        outputs=tmp_path,
        cache=shared_cache,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [d.name for d in job_dirs(sweep)]
    assert len(names) == 2 and all(len(n.encode()) <= 255 and re.search(r"~[0-9a-f]{12}$", n) for n in names), names
    results = [load_result(d) for d in job_dirs(sweep)]
    assert sorted(r["attn"] for r in results) == ["ema", "none"]
    assert {r["status"] for r in results} == {"completed"}
    assert len({r["pid"] for r in results}) == 2  # each job ran in its own submitit process
    assert set(pd.read_csv(sweep / "ablation.csv")["attn"]) == {"none", "ema"}
    assert list((sweep / ".submitit").iterdir())


def test_parallel_launcher_runs_two_jobs_at_once(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",
        "attn=ema,cot_lite",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        outputs=tmp_path,
        cache=shared_cache,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (load_result(d) for d in job_dirs(sweep))
    assert a["status"] == b["status"] == "completed" and a["pid"] != b["pid"]
    start = [datetime.fromisoformat(r["started_at"]) for r in (a, b)]
    end = [datetime.fromisoformat(r["finished_at"]) for r in (a, b)]
    assert start[0] < end[1] and start[1] < end[0], (start, end)  # the intervals overlap
    assert a["latency_threads"] == b["latency_threads"] == 1  # 2 cores split over 2 jobs


def test_two_launches_of_one_sweep_train_each_job_once(tmp_path, shared_cache):
    """The same 3-job sweep launched twice at once (a re-submit while it runs): each job trains in
    exactly one of them, the other skips it as running elsewhere; the table is complete."""
    from src.aggregate.pipeline import aggregate

    sweep = tmp_path / "sweep"
    args = ["-m", "attn=none,ema,cot_lite", f"hydra.sweep.dir={sweep}", *TINY]
    logs = [tmp_path / f"launch{i}.log" for i in (1, 2)]
    launches = [spawn_cli(*args, outputs=tmp_path, cache=shared_cache, log=log) for log in logs]
    for launch in launches:
        launch.wait(timeout=600)
    out = [log.read_text() for log in logs]
    assert training_starts(*out) == 3, [o[-2000:] for o in out]  # old code: 6, every job twice at once
    assert "running elsewhere (host" in "".join(out)
    assert [load_result(d)["status"] for d in job_dirs(sweep)] == ["completed"] * 3
    assert 0 in [launch.returncode for launch in launches], [o[-2000:] for o in out]  # the last to finish
    summary = aggregate([sweep], write=False)
    assert summary.n_problems == 0 and sorted(summary.ablation["attn"]) == ["cot_lite", "ema", "none"]


@pytest.mark.parametrize(
    "job,parallel,gpus,cpus,device,expected",
    [
        (0, 1, 4, 16, "auto", (None, None)),  # one at a time: leave everything alone
        (5, 4, 4, 16, "auto", ("1", 4)),  # round-robin over GPUs, cores split
        (2, 2, 0, 2, "auto", (None, 1)),  # CPU only: threads split
        (3, 4, 4, 16, "0,1", (None, 4)),  # an explicit device is the user's choice
    ],
)
def test_placement_round_robin(job, parallel, gpus, cpus, device, expected):
    placed = place(job, parallel, gpus, cpus, device)
    assert (placed.device, placed.threads) == expected
