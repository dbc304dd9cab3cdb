"""7. Load: a 200-job dry-run sweep through the parallel launcher, end to end, as one process.

`python -m src.run -m attn=<5> pos=<4 presets> seed=0..9 dry_run=true` (5 x 4 x 10 = 200 jobs;
`--quick`: 2 x 2 x 2 = 8) with `hydra/launcher=parallel` and one joblib worker per core, 64 px,
no ONNX, one latency pass, `logger=none`. Every job builds and measures its model and writes its
result.json; the end-of-sweep aggregation writes one table of every job (runs.csv). The figures:
wall time, wall time per job, and the overhead per job (wall time x workers / jobs, less the mean
time a job spends between its start and end lines), which is what Hydra, joblib and the process
pool cost each job on top of its own work.
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from src.bench.common import BenchError, Mode, fresh_dir, src_run, timed_run
from src.results import DRY_RUN, RESULT_FILE, read_result
from src.results.schema import FINISHED_AT, JOB_DIR, STARTED_AT, STATUS

FULL_SWEEP = {
    "attn": "none,ema,cot_lite,se,eca",
    "pos": "neck,backbone,backbone_p5,replace_c2psa",
    "seed": ",".join(map(str, range(10))),
}
QUICK_SWEEP = {"attn": "none,ema", "pos": "neck,backbone", "seed": "0,1"}
SETTINGS = [
    "dry_run=true",
    "train.imgsz=64",
    "measure.onnx=false",
    "measure.latency_runs=1",
    "measure.throughput_batch=1",
    "logger=none",
]


def jobs_in(sweep: dict[str, str]) -> int:
    n = 1
    for values in sweep.values():
        n *= len(values.split(","))
    return n


def run(out: Path, mode: Mode, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    sweep = QUICK_SWEEP if mode.quick else FULL_SWEEP
    n_jobs, workers = jobs_in(sweep), os.cpu_count() or 1
    work = fresh_dir(out / "load")
    sweep_dir = work / "sweep"
    overrides = (
        [f"{k}={v}" for k, v in sweep.items()]
        + SETTINGS
        + ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={workers}"]
    )
    wall = timed_run(
        src_run(overrides, work, cache, sweep_dir=sweep_dir, multirun=True), work / "sweep.log", timeout=6 * 3600
    )
    results = [read_result(p) for p in sweep_dir.glob(f"*/{RESULT_FILE}")]
    not_dry = [r.get(JOB_DIR) for r in results if r.get(STATUS) != DRY_RUN]
    with open(sweep_dir / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if len(results) != n_jobs or not_dry or len(rows) != n_jobs:
        raise BenchError(
            f"{sweep_dir}: {len(results)} results, {len(rows)} rows in runs.csv for {n_jobs} jobs; "
            f"not dry_run: {not_dry[:5]}"
        )
    job_seconds = [
        (datetime.fromisoformat(r[FINISHED_AT]) - datetime.fromisoformat(r[STARTED_AT])).total_seconds()
        for r in results
    ]
    per_job = wall * workers / n_jobs
    overhead = per_job - statistics.mean(job_seconds)
    figures = {
        "sweep": sweep,
        "settings": SETTINGS,
        "jobs": n_jobs,
        "workers": workers,
        "wall_seconds": wall,
        "wall_per_job": wall / n_jobs,
        "worker_seconds_per_job": per_job,
        "job_seconds_mean": statistics.mean(job_seconds),
        "job_seconds_median": statistics.median(job_seconds),
        "overhead_per_job": overhead,
        "runs_csv_rows": len(rows),
    }
    return {
        "name": "load",
        "title": "7. Load: a many-job dry-run sweep, parallel launcher",
        "about": (
            f"`python -m src.run -m {' '.join(overrides)}` as one process: {n_jobs} jobs, {workers} joblib "
            "workers; wall time includes the end-of-sweep aggregation (runs.csv lists every job)."
        ),
        "figures": figures,
        "headline": [[f"{n_jobs}-job dry-run sweep, wall time per job", f"{wall / n_jobs:.2f} s", ""]],
        "tables": [
            {
                "title": f"{n_jobs} dry-run jobs, {workers} at a time",
                "columns": [
                    "wall time s",
                    "s per job",
                    "worker-s per job",
                    "job's own s (mean / median)",
                    "overhead per job s",
                    "rows in runs.csv",
                ],
                "rows": [
                    [
                        f"{wall:.1f}",
                        f"{wall / n_jobs:.2f}",
                        f"{per_job:.2f}",
                        f"{figures['job_seconds_mean']:.1f} / {figures['job_seconds_median']:.1f}",
                        f"{overhead:.2f}",
                        len(rows),
                    ]
                ],
            }
        ],
        "notes": [
            "A job's own time is its result.json's finished_at - started_at (whole seconds): building the "
            "model and measuring it. The overhead is the rest of each worker's time: Hydra composing the "
            "job's config, joblib handing it over, the job's imports in a fresh worker, the progress lines."
        ],
        "seconds": time.perf_counter() - started,
    }
