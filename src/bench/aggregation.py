"""4. Aggregation: `src.aggregate.pipeline.aggregate()` over 1,000 and 10,000 synthetic result files.

Results are written with `src.results.write_result` (as jobs write them) into
outputs/bench/aggregation/n<N>/: datasets x models x attention modules x positions x seeds, with
plausible metrics and costs, 1% failed jobs with an error. No training curves (no results.csv), so
the plots are the ablation plots without learning curves. Each size is aggregated with plots on
and off, alternately, in this process; tables, report.md and plots are written to a directory
outside the searched tree.
"""

from __future__ import annotations

import itertools
import random
import shutil
import time
from pathlib import Path
from typing import Any

from src.bench.common import Mode, fresh_dir, interleave, median, paired_ratio
from src.results import BASELINE, COMPLETED, FAILED, RESULT_FILE

DATASETS = ("shapes", "visdrone", "coco")
MODELS = ("yolo11n", "yolo11s")
ATTNS = (BASELINE, "ema", "cot", "cot_lite")
POSITIONS = ("neck", "backbone", "backbone_p5", "replace_c2psa")


def synthetic_result(i: int, rng: random.Random) -> dict[str, Any]:
    from src.results import empty_result

    groups = list(itertools.product(DATASETS, MODELS, ATTNS, POSITIONS))
    dataset, model, attn, pos = groups[i % len(groups)]
    seed = i // len(groups)
    r = empty_result(
        dataset=dataset,
        attn=attn,
        pos=pos,
        model=model,
        seed=seed,
        epochs=100,
        imgsz=640,
        job_dir=f"synthetic/{i}",
        train_key=f"{dataset}-{model}",
        config_hash=f"h{i:08d}",
        overrides=[f"dataset={dataset}", f"model={model}", f"attn={attn}", f"pos={pos}", f"seed={seed}"],
    )
    if rng.random() < 0.01:
        r.update(
            status=FAILED,
            error="RuntimeError: synthetic failure",
            traceback="Traceback (most recent call last):\nRuntimeError: synthetic failure\n",
        )
        return r
    base = {"shapes": 0.45, "visdrone": 0.20, "coco": 0.38}[dataset] + (0.05 if model == "yolo11s" else 0.0)
    gain = {BASELINE: 0.0, "ema": 0.006, "cot": 0.004, "cot_lite": -0.002}[attn]
    m = base + gain + rng.gauss(0, 0.01)
    params = (2_590_815 if model == "yolo11n" else 9_428_179) + {
        BASELINE: 0,
        "ema": 2_000,
        "cot": 400_000,
        "cot_lite": 570_000,
    }[attn]
    r.update(
        status=COMPLETED,
        params=params,
        params_added=params - (2_590_815 if model == "yolo11n" else 9_428_179),
        gflops=6.4 + (0.8 if attn in ("cot", "cot_lite") else 0.0),
        latency_ms=20 + rng.random(),
        train_seconds=3600 * (1 + rng.random()),
        best_epoch=rng.randint(50, 99),
        metrics={
            "map50": m + 0.2,
            "map50_95": m,
            "precision": 0.6 + rng.gauss(0, 0.02),
            "recall": 0.5 + rng.gauss(0, 0.02),
            "map75": m + 0.03,
            "ap_small": m - 0.2,
            "ap_medium": m,
            "ap_large": m + 0.1,
        },
    )
    return r


def write_results(root: Path, n: int, seed: int = 0) -> float:
    """n result.json files under root/<i>/; returns the seconds it took."""
    from src.results import write_result

    rng = random.Random(seed)
    started = time.perf_counter()
    for i in range(n):
        write_result(root / f"{i:05d}", synthetic_result(i, rng))
    return time.perf_counter() - started


def time_aggregate(root: Path, out_dir: Path, plots: bool) -> float:
    from src.aggregate.pipeline import aggregate

    if out_dir.exists():
        shutil.rmtree(out_dir)
    started = time.perf_counter()
    summary = aggregate(root, out_dir, plots=plots)
    seconds = time.perf_counter() - started
    if summary.n_jobs != sum(1 for _ in root.glob(f"*/{RESULT_FILE}")):
        raise RuntimeError(f"aggregate saw {summary.n_jobs} jobs under {root}")
    return seconds


def time_seeds_needed(rows: int = 1000, seed: int = 0) -> float:
    """Milliseconds per table row of the seeds-needed plan as the table computes it: one vectorised
    call for every row at the observed sd and the two ends of its chi-square CI (3 n per row),
    sds and family sizes drawn over the range real tables show."""
    import numpy as np

    from src.aggregate.uncertainty import sd_interval, seeds_needed_many

    rng = np.random.default_rng(seed)
    sd, n, alpha = rng.uniform(0.002, 0.05, rows), rng.integers(2, 11, rows), 0.05 / rng.integers(1, 33, rows)
    started = time.perf_counter()
    lo, hi = sd_interval(sd, n)
    seeds_needed_many(0.005, np.r_[sd, lo, hi], np.r_[alpha, alpha, alpha])
    return 1000 * (time.perf_counter() - started) / rows


def run(out: Path, mode: Mode, cache: Path | None = None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    started = time.perf_counter()
    work = fresh_dir(out / "aggregation")
    write_results(work / "warmup", 32)  # the first call imports pandas, matplotlib ...: not timed
    time_aggregate(work / "warmup", work / "out_warmup", True)
    sizes: dict[str, Any] = {}
    for n in mode.aggregation_sizes:
        root = work / f"n{n}"
        write_seconds = write_results(root, n)
        repeats = mode.aggregation_repeats.get(n, 1)
        times = interleave(
            {
                "plots": lambda i, r=root, n=n: time_aggregate(r, work / f"out{n}_plots", True),
                "no_plots": lambda i, r=root, n=n: time_aggregate(r, work / f"out{n}_noplots", False),
            },
            repeats,
        )
        sizes[str(n)] = {
            "files": n,
            "write_seconds": write_seconds,
            "repeats": repeats,
            "seconds": times,
            "median_plots": median(times["plots"]),
            "median_no_plots": median(times["no_plots"]),
            "plots_over_no_plots": paired_ratio(times["plots"], times["no_plots"]),
        }
    seeds_ms = time_seeds_needed()
    figures = {"sizes": sizes, "seeds_needed_ms_per_row": seeds_ms}
    rows = [
        [
            f"{v['files']:,}",
            f"{v['median_no_plots']:.2f}",
            f"{v['median_plots']:.2f}",
            f"{v['plots_over_no_plots']:.2f}",
            f"{1000 * v['median_no_plots'] / v['files']:.2f}",
            f"{v['write_seconds']:.1f}",
            v["repeats"],
        ]
        for v in sizes.values()
    ]
    return {
        "name": "aggregation",
        "title": "4. Aggregation",
        "about": (
            "`src.aggregate.pipeline.aggregate(dir, out, plots=...)` over synthetic result.json files "
            "(3 datasets x 2 models x 4 attn x 4 positions x seeds, 1% failed), in-process; "
            "plots on and off alternate."
        ),
        "figures": figures,
        "headline": [
            [
                f"aggregate {v['files']:,} results, plots off / on (s)",
                f"{v['median_no_plots']:.2f} / {v['median_plots']:.2f}",
                "",
            ]
            for v in sizes.values()
        ]
        + [["seeds needed per table row, with its sd range (ms)", f"{seeds_ms:.3f}", ""]],
        "tables": [
            {
                "title": "Seconds per aggregation (median)",
                "columns": [
                    "result files",
                    "plots off s",
                    "plots on s",
                    "on / off",
                    "ms per file (off)",
                    "writing them s",
                    "runs",
                ],
                "rows": rows,
            }
        ],
        "notes": [
            "No training curves in the synthetic results: with real sweeps the plots also draw the "
            "learning curves (one results.csv read per completed job).",
            "Writing uses write_result as jobs do (atomic: temp file, fsync, rename).",
        ],
        "seconds": time.perf_counter() - started,
    }
