"""5. Sweep: a 4-job sweep run one job after another (basic launcher) and 2 at a time (parallel).

`python -m src.run -m attn=none,ema,cot,cot_lite <tiny settings>` as a whole process, once with
Hydra's basic launcher and once with `hydra/launcher=parallel hydra.launcher.n_jobs=2` (joblib
processes; each job gets cores / 2 torch threads, src/placement.py), alternately, each into its
own sweep directory. The wall time includes the end-of-sweep aggregation (the table).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from src.bench.common import BenchError, Mode, fresh_dir, interleave, median, paired_ratio, spread, src_run, timed_run
from src.results import COMPLETED, RESULT_FILE, read_result
from src.results.schema import JOB_DIR, STATUS, TRAIN_SECONDS

LAUNCHERS = {"basic": [], "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]}


def run(out: Path, mode: Mode, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    work = fresh_dir(out / "sweep")
    attn = ",".join(mode.sweep_attn)
    job_seconds: dict[str, list[float]] = {name: [] for name in LAUNCHERS}

    def launcher(name: str):
        def one(i: int) -> float:
            sweep_dir = work / f"r{i}_{name}"
            cmd = src_run(
                [f"attn={attn}", *mode.tiny, *LAUNCHERS[name]], work, cache, sweep_dir=sweep_dir, multirun=True
            )
            seconds = timed_run(cmd, work / f"r{i}_{name}.log")
            results = [read_result(p) for p in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))]
            bad = [r.get(JOB_DIR) for r in results if r.get(STATUS) != COMPLETED]
            if len(results) != len(mode.sweep_attn) or bad:
                raise BenchError(f"{sweep_dir}: {len(results)} results, not completed: {bad}")
            job_seconds[name].append(sum(r.get(TRAIN_SECONDS) or 0.0 for r in results))
            return seconds

        return one

    times = interleave({name: launcher(name) for name in LAUNCHERS}, mode.sweep_repeats)
    ratio = paired_ratio(times["parallel"], times["basic"])
    figures = {
        "attn": list(mode.sweep_attn),
        "overrides": mode.tiny,
        "repeats": mode.sweep_repeats,
        "seconds": times,
        "median_seconds": {k: median(v) for k, v in times.items()},
        "train_seconds_sum": {k: median(v) for k, v in job_seconds.items()},
        "parallel_over_basic": ratio,
        "speedup": 1 / ratio if ratio else None,
    }
    rows = []
    for name, label in (("basic", "basic (one job at a time)"), ("parallel", "parallel, n_jobs=2")):
        lo_hi = spread(times[name])
        rows.append(
            [
                label,
                f"{figures['median_seconds'][name]:.1f}",
                f"{lo_hi[0]:.1f} - {lo_hi[1]:.1f}" if lo_hi else "n/a",
                f"{figures['train_seconds_sum'][name]:.1f}",
                len(times[name]),
            ]
        )
    return {
        "name": "sweep",
        "title": "5. Sweep launchers",
        "about": (
            f"`python -m src.run -m attn={attn} {' '.join(mode.tiny)}` as a whole process, basic launcher "
            "against `hydra/launcher=parallel hydra.launcher.n_jobs=2`, alternately."
        ),
        "figures": figures,
        "headline": [
            ["sweep wall time, parallel (n_jobs=2) / basic", f"{ratio:.3f}" if ratio else "n/a", "< 1 is a gain"]
        ],
        "tables": [
            {
                "title": f"Wall time of the {len(mode.sweep_attn)}-job sweep",
                "columns": ["launcher", "median s", "min - max s", "sum of the jobs' train_seconds (median)", "runs"],
                "rows": rows,
            },
            {
                "title": "Ratio",
                "columns": ["parallel / basic (median of paired ratios)", "speed-up"],
                "rows": [
                    [f"{ratio:.3f}" if ratio else "n/a", f"{figures['speedup']:.2f}x" if figures["speedup"] else "n/a"]
                ],
            },
        ],
        "notes": [
            f"{os.cpu_count() or 1} cores: with n_jobs=2 each job trains with cores / 2 torch threads "
            "(src/placement.py) next to the other job and both jobs' data-loader workers, and the pool's "
            "worker processes import torch and ultralytics before the first job; the train_seconds "
            "column shows what that does to each job's training. The parallel launcher is for machines "
            "with more cores per job, or GPUs."
        ],
        "seconds": time.perf_counter() - started,
    }
