"""1. Framework overhead: one job through `python -m src.run` against the plain ultralytics call.

Both sides are whole processes timed from the outside (wall time), run alternately. The plain side
is `YOLO(model_yaml).train(...)` in a `python -c` process, with the model YAML and data YAML the job
wrote and the exact train arguments the job passes (`src.job.train_args` of its composed config),
the same seed and the same environment (offline, same ultralytics settings dir).

Two job sizes. The tiny one (2 epochs at 64 px, a few seconds) isolates the framework's fixed
cost per process: a first src.run job, under cProfile, generates the dataset and the files the
plain side reuses, and its profile gives the breakdown of where the extra time goes (with
`python -X importtime` of both sides' imports). The short real one (the embedded dataset at its
default settings, 3 of its 12 epochs, the default measurements) gives the headline ratio: the
fixed cost does not grow with the job, so the ratio is a matter of how long the job is.
"""

from __future__ import annotations

import json
import pstats
import re
import time
from pathlib import Path
from typing import Any

from src.bench.common import (
    PY,
    BenchError,
    Mode,
    fresh_dir,
    interleave,
    median,
    paired_difference,
    paired_ratio,
    prepare_dataset,
    rel,
    spread,
    src_run,
    timed_run,
)
from src.results import COMPLETED, RESULT_FILE, read_result_or_none
from src.results.schema import ERROR, STATUS, TRAIN_SECONDS

TARGET = 1.03
# The short real job: the default embedded-dataset job (its settings, measurements and AP by size)
# cut to 3 epochs; without W&B, which is reported on its own.
REAL_JOB = ["train.epochs=3", "logger=none"]
REAL_REPEATS = 2

PLAIN_CODE = (
    "import json, sys\n"
    "from ultralytics import YOLO\n"
    "args = json.loads(sys.argv[1])\n"
    "YOLO(args.pop('model'), task='detect').train(**args)\n"
)

# The job's steps as cProfile names them: label | file | function | calling function ("-": any).
_STEPS_TABLE = """
config checks (src.config.checks)                    | src/config/checks.py             | check_config       | -
model YAML rewrite                                   | src/job/model_file.py            | write_model_yaml   | -
dataset prepare (generated on this first run, cached after) | src/data/__init__.py      | prepare            | -
model build                                          | src/ultralytics_glue/model.py    | build_model        | _run
measure_model: GFLOPs at 640 (ultralytics/thop)      | src/ultralytics_glue/model.py    | ultralytics_gflops | -
measure_model: exact GFLOPs (FlopCounterMode)        | src/job/measurements.py          | exact_gflops       | -
measure_model: baseline build (params_added)         | src/ultralytics_glue/model.py    | build_model        | measure_model
measure_model: latency + throughput timing           | src/job/measurements.py          | latency            | -
measure_model: ONNX export                           | src/job/measurements.py          | onnx_export        | -
W&B start (logger)                                   | src/tracking/runs.py             | start_job_run      | -
ultralytics training (what the plain side does too)  | src/ultralytics_glue/trainer.py  | train              | train_and_read
learning curve (results.csv)                         | src/job/training.py              | learning_curve     | -
final validation's extras (per class, AP by size, matches, PR curve) | src/job/training.py | final_validation | -
result.json writes                                   | src/results.py                   | write_result       | -
"""
_STEPS = [
    tuple(None if cell == "-" else cell for cell in (part.strip() for part in line.split("|")))
    for line in _STEPS_TABLE.strip().splitlines()
]


def run(out: Path, mode: Mode, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    work = fresh_dir(out / "overhead")
    overrides = mode.tiny

    # 0. a profiled first job: dataset, model YAML, data YAML, and the breakdown
    prep = work / "prep" / "job"
    prof = work / "prep" / "src_run.prof"
    prep_seconds = timed_run(
        src_run(overrides, work, cache, run_dir=prep, prefix=["-m", "cProfile", "-o", str(prof)]),
        work / "prep" / "log.txt",
    )
    result = _completed(prep)
    plain_args = plain_train_args(prep, result)

    # 1. interleaved whole processes
    times = alternate(work, overrides, cache, mode.overhead_repeats, plain_args)
    ratio = paired_ratio(times["src.run"], times["plain"])
    ours_median, plain_median = median(times["src.run"]), median(times["plain"])
    real = None if mode.quick else real_job(work / "real", cache)

    # 2. where the time goes
    steps = profile_breakdown(prof)
    imports = {
        "src.run": import_times("import src.run", work / "importtime_src_run.txt"),
        "plain": import_times("from ultralytics import YOLO", work / "importtime_plain.txt"),
    }
    wandb = None
    if not mode.quick:  # the default logger: one extra job, reported next to logger=none
        job = work / "wandb" / "job"
        wb_overrides = [o for o in overrides if not o.startswith("logger=")] + ["logger=wandb"]
        wandb = timed_run(src_run(wb_overrides, work, cache, run_dir=job), work / "wandb.log")
        _completed(job)

    headline_ratio = real["ratio"] if real else ratio
    figures = {
        "real_job": real,
        "headline_ratio": headline_ratio,
        "repeats": mode.overhead_repeats,
        "overrides": overrides,
        "seconds": times,
        "median_seconds": {"src.run": ours_median, "plain": plain_median},
        "ratio": ratio,
        "target": TARGET,
        "within_target": headline_ratio is not None and headline_ratio <= TARGET,
        "extra_seconds": None if ours_median is None or plain_median is None else ours_median - plain_median,
        "extra_seconds_paired": paired_difference(times["src.run"], times["plain"]),
        "first_job_under_cprofile_seconds": prep_seconds,
        "profile": steps,
        "imports": imports,
        "wandb_job_seconds": wandb,
        "plain_args": plain_args,
        "job_train_seconds": result.get(TRAIN_SECONDS),
    }
    return {
        "name": "overhead",
        "title": "1. Framework overhead",
        "about": (
            "One training job as whole processes: `python -m src.run` against plain "
            "`YOLO(model_yaml).train(...)` in a `python -c` process, same model YAML, data, seed and "
            "train arguments. Runs alternate (ours, plain, ours, ...); a ratio is the median of the "
            "per-repeat ratios. Two job sizes: a short real job (the embedded dataset's default job, "
            f"`{' '.join(REAL_JOB)}`) for the ratio, and a tiny one (`{' '.join(overrides)}`) that "
            "isolates the fixed cost per process and shows where it goes."
        ),
        "figures": figures,
        "headline": [
            [
                f"framework overhead: src.run / plain ultralytics, wall time per job "
                f"({'default embedded job, 3 epochs' if real else 'tiny job'})",
                "n/a" if headline_ratio is None else f"{headline_ratio:.3f}",
                f"<= {TARGET}",
            ],
            [
                "framework fixed cost per job (tiny job: median of the paired src.run - plain differences)",
                "n/a" if figures["extra_seconds_paired"] is None else f"{figures['extra_seconds_paired']:+.2f} s",
                "<= +1.0 s",
            ],
        ],
        "tables": _tables(figures),
        "notes": _notes(figures, work),
        "seconds": time.perf_counter() - started,
    }


def alternate(
    work: Path, overrides: list[str], cache: Path, repeats: int, plain_args: dict[str, Any]
) -> dict[str, list[float]]:
    """Whole-process wall times of src.run jobs and plain calls, alternately. Empty `plain_args`
    are filled from our first job (its model YAML, data YAML and train arguments)."""

    def ours(i: int) -> float:
        job = work / f"rep{i}" / "src_run" / "job"  # its own parent: no baseline reuse between repeats
        seconds = timed_run(src_run(overrides, work, cache, run_dir=job), work / f"rep{i}" / "src_run.log")
        result = _completed(job)
        if not plain_args:
            plain_args.update(plain_train_args(job, result))
        return seconds

    def plain(i: int) -> float:
        args = {**plain_args, "project": str(work / f"rep{i}" / "plain")}
        return timed_run([PY, "-c", PLAIN_CODE, json.dumps(args)], work / f"rep{i}" / "plain.log")

    return interleave({"src.run": ours, "plain": plain}, repeats)


def real_job(work: Path, cache: Path) -> dict[str, Any]:
    """The short real job, its dataset prepared beforehand so no timed run generates it."""
    prepare_dataset(REAL_JOB, cache)
    times = alternate(work, REAL_JOB, cache, REAL_REPEATS, {})
    ours_median, plain_median = median(times["src.run"]), median(times["plain"])
    return {
        "overrides": REAL_JOB,
        "repeats": REAL_REPEATS,
        "seconds": times,
        "median_seconds": {"src.run": ours_median, "plain": plain_median},
        "ratio": paired_ratio(times["src.run"], times["plain"]),
        "extra_seconds": None if ours_median is None or plain_median is None else ours_median - plain_median,
        "extra_seconds_paired": paired_difference(times["src.run"], times["plain"]),
    }


def _completed(job_dir: Path) -> dict[str, Any]:
    result = read_result_or_none(job_dir)
    if result is None:
        raise BenchError(f"{job_dir}: no usable {RESULT_FILE}")
    if result.get(STATUS) != COMPLETED:
        raise BenchError(f"{job_dir}: status {result.get(STATUS)}: {result.get(ERROR)}")
    return result


def plain_train_args(job_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """What the job passed to `model.train()`, for the plain ultralytics side (without `project`)."""
    from omegaconf import OmegaConf

    from src.job.training import train_args

    cfg = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "config.yaml"), resolve=True)
    return {
        "model": str(job_dir / result["model_yaml"]),
        "data": result["data_yaml"],
        **train_args(cfg),
        "name": "train",
        "exist_ok": True,
    }


# ----------------------------------------------------------------------------------- breakdown
def profile_breakdown(prof: Path) -> dict[str, Any]:
    """Seconds per step of the profiled job (cProfile cumulative times; cProfile slows Python code)."""
    stats = pstats.Stats(str(prof)).stats  # {(file, line, func): (cc, nc, tottime, cumtime, callers)}

    def cumtime(suffix: str, func: str, caller: str | None = None) -> float:
        total = 0.0
        for (file, _, name), (_, _, _, ct, callers) in stats.items():
            if name != func or not file.replace("\\", "/").endswith(suffix):
                continue
            if caller is None:
                total += ct
            else:
                total += sum(c[3] for (_, _, cname), c in callers.items() if cname == caller)
        return total

    total = cumtime("src/run.py", "<module>")
    hydra_main = cumtime("hydra/main.py", "decorated_main")
    run_job = cumtime("src/job/runner.py", "run_job")
    steps = [{"step": label, "seconds": cumtime(suffix, func, caller)} for label, suffix, func, caller in _STEPS]
    steps = [s for s in steps if s["seconds"] >= 0.005]
    accounted = sum(s["seconds"] for s in steps)
    rows = [
        {"step": "imports before main (torch, hydra, ultralytics, src.*) and exit", "seconds": total - hydra_main},
        {"step": "Hydra: compose config, logging, callbacks", "seconds": hydra_main - run_job},
        *steps,
        {"step": "rest of run_job", "seconds": max(run_job - accounted, 0.0)},
    ]
    for row in rows:
        row["share"] = row["seconds"] / total if total else None
    return {"total_seconds": total, "steps": rows}


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_times(statement: str, log: Path) -> dict[str, Any]:
    """`python -X importtime -c STATEMENT`: cumulative seconds per top-level package imported."""
    import subprocess

    from src.bench.common import PROJECT_ROOT, bench_env

    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", statement],
        cwd=PROJECT_ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    log.write_text(proc.stderr)
    return parse_importtime(proc.stderr)


def parse_importtime(text: str) -> dict[str, Any]:
    """Self time of every module imported, summed per top-level package (a partition of the total)."""
    packages: dict[str, float] = {}
    for line in text.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        root = match.group(4).split(".")[0]
        packages[root] = packages.get(root, 0.0) + int(match.group(1)) / 1e6
    top = dict(sorted(packages.items(), key=lambda kv: -kv[1]))
    return {"total_seconds": sum(packages.values()), "packages": top}


# ----------------------------------------------------------------------------------- rendering
def _s(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _tables(f: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    jobs = [("short real job", f["real_job"])] if f.get("real_job") else []
    jobs.append(("tiny job", f))
    for job, figures in jobs:
        for side, label in (("src.run", "`python -m src.run`"), ("plain", "plain `YOLO(yaml).train()`")):
            lo_hi = spread(figures["seconds"][side])
            rows.append(
                [
                    job,
                    label,
                    _s(figures["median_seconds"][side]),
                    f"{_s(lo_hi[0])} - {_s(lo_hi[1])}" if lo_hi else "n/a",
                    len(figures["seconds"][side]),
                ]
            )
    main = {
        "title": "Wall time per process",
        "columns": ["job", "side", "median s", "min - max s", "runs"],
        "rows": rows,
    }
    ratio_rows = []
    for job, figures in jobs:
        within = "n/a" if figures["ratio"] is None else ("yes" if figures["ratio"] <= f["target"] else "**no**")
        paired = _s(figures.get("extra_seconds_paired"))
        ratio_rows.append(
            [job, _s(figures["ratio"], 3), paired, _s(figures["extra_seconds"]), f"<= {f['target']}", within]
        )
    ratio = {
        "title": "Ratio",
        "columns": [
            "job",
            "src.run / plain (median of paired ratios)",
            "extra s (median of paired differences)",
            "extra s (difference of medians)",
            "target",
            "within",
        ],
        "rows": ratio_rows,
    }
    prof = f["profile"]
    steps = {
        "title": f"Where the src.run job's time goes (cProfile of the first job, "
        f"{prof['total_seconds']:.1f} s under the profiler)",
        "columns": ["step", "s (profiled)", "share", "~ s of the median job"],
        "rows": [
            [
                r["step"],
                _s(r["seconds"]),
                f"{100 * r['share']:.1f}%" if r["share"] is not None else "n/a",
                _s(r["share"] * f["median_seconds"]["src.run"])
                if r["share"] is not None and f["median_seconds"]["src.run"]
                else "n/a",
            ]
            for r in prof["steps"]
        ],
    }
    imp = f["imports"]
    names = list(dict.fromkeys([*list(imp["src.run"]["packages"])[:8], *list(imp["plain"]["packages"])[:8]]))
    imports = {
        "title": "Import time by package (`python -X importtime`: self time of each module imported, "
        "summed per top-level package; s)",
        "columns": ["package", "`import src.run`", "`from ultralytics import YOLO`"],
        "rows": [[n, _s(imp["src.run"]["packages"].get(n), 3), _s(imp["plain"]["packages"].get(n), 3)] for n in names]
        + [["**total**", _s(imp["src.run"]["total_seconds"], 3), _s(imp["plain"]["total_seconds"], 3)]],
    }
    return [main, ratio, steps, imports]


def _notes(f: dict[str, Any], work: Path) -> list[str]:
    notes = []
    if f["extra_seconds_paired"] is not None:
        notes.append(
            f"src.run takes {f['extra_seconds_paired']:.2f} s more than the plain call per tiny job (median of "
            f"the {len(f['seconds']['src.run'])} paired differences; {f['extra_seconds']:.2f} s as a difference "
            "of medians): a fixed cost per process, which the profile below breaks down."
        )
    if f["wandb_job_seconds"] is not None and f["median_seconds"]["src.run"]:
        notes.append(
            f"With `logger=wandb` (the default, offline) one job took {f['wandb_job_seconds']:.2f} s, "
            f"{f['wandb_job_seconds'] - f['median_seconds']['src.run']:+.2f} s against the logger=none "
            f"median (one run)."
        )
    notes.append(
        "The profile's seconds are inflated by cProfile (Python-heavy code more than torch kernels); "
        "the last column scales each share to the median unprofiled job."
    )
    notes.append(f"Profile: `{rel(work / 'prep' / 'src_run.prof')}` (`python -m pstats`); logs under `{rel(work)}/`.")
    return notes
