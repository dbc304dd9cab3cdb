"""3. Training throughput: images per second of each variant at the default embedded-dataset settings.

One `python -m src.run attn=<variant>` job per variant (default position `neck`, the default
dataset and train settings, whatever conf/ says today) over 2 epochs instead of the full schedule:
`train.epochs=2 logger=none measure.ap_by_size=false` (`measure.latency_runs=3` too, which only
shortens the job's measuring step before training). images/s = n_train * epochs / train_seconds,
train_seconds from result.json (ultralytics' whole train() call: both epochs, their validation,
the final validation), n_train counted in the data YAML's train image folder. Variants alternate
when repeated; per-epoch figures from ultralytics' results.csv are given as a second view.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from src.bench.common import BenchError, Mode, fresh_dir, interleave, median, rel, src_run, timed_run
from src.data.images import split_images
from src.results import BASELINE, COMPLETED, JobDir, read_result
from src.results.schema import JOB_DIR, STATUS, TRAIN_SECONDS
from src.ultralytics_glue import names

EPOCHS = 2


def overrides(mode: Mode) -> list[str]:
    if mode.quick:  # the smallest size: the tiny setting, 1 epoch
        return mode.tiny
    return [f"train.epochs={EPOCHS}", "logger=none", "measure.ap_by_size=false", "measure.latency_runs=3"]


def count_train_images(data_yaml: Path) -> int:
    """Images of the data YAML's `train` entry (a folder, a list of folders, or a .txt list)."""
    try:
        return len(split_images(data_yaml, "train"))
    except (KeyError, FileNotFoundError) as exc:
        raise BenchError(f"{data_yaml}: {exc}") from None


def epoch_seconds(results_csv: Path) -> list[float]:
    """Per-epoch durations from ultralytics' results.csv."""
    return names.epoch_seconds(names.read_results_csv(results_csv))


def images_per_second(n_train: int, epochs: int, train_seconds: float | None) -> float | None:
    return n_train * epochs / train_seconds if train_seconds else None


def run(out: Path, mode: Mode, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    work = fresh_dir(out / "throughput")
    args = overrides(mode)
    jobs: dict[str, list[dict[str, Any]]] = {}

    def job(variant: str):
        def one(i: int) -> dict[str, Any]:
            job_dir = work / f"r{i}_{variant}" / "job"  # own parent: the `none` job is never a reused baseline
            wall = timed_run(
                src_run([f"attn={variant}", *args], work, cache, run_dir=job_dir), work / f"r{i}_{variant}.log"
            )
            result = read_result(JobDir(job_dir).result)
            if result.get(STATUS) != COMPLETED:
                raise BenchError(f"{job_dir}: {result.get('status')}: {result.get('error')}")
            n_train = count_train_images(Path(result["data_yaml"]))
            epochs = int(result["epochs"])
            per_epoch = epoch_seconds(JobDir(job_dir).results_csv)
            return {
                "wall_seconds": wall,
                TRAIN_SECONDS: result[TRAIN_SECONDS],
                "n_train": n_train,
                "epochs": epochs,
                "imgsz": result["imgsz"],
                "batch": _batch(job_dir),
                "images_per_second": images_per_second(n_train, epochs, result[TRAIN_SECONDS]),
                "epoch_seconds": per_epoch,
                "epoch_images_per_second": [n_train / s for s in per_epoch if s > 0],
                JOB_DIR: rel(job_dir),
            }

        return one

    jobs = interleave({v: job(v) for v in mode.throughput_variants}, mode.throughput_repeats)
    figures: dict[str, Any] = {"overrides": args, "repeats": mode.throughput_repeats, "variants": {}}
    base = None
    for variant, runs in jobs.items():
        ips = median(r["images_per_second"] for r in runs)
        figures["variants"][variant] = {
            "runs": runs,
            "images_per_second": ips,
            TRAIN_SECONDS: median(r[TRAIN_SECONDS] for r in runs),
            "epoch_images_per_second": median(x for r in runs for x in r["epoch_images_per_second"]),
        }
        if variant == BASELINE:
            base = ips
    for v in figures["variants"].values():
        v["relative_to_none"] = v["images_per_second"] / base if base and v["images_per_second"] else None
    first = next(iter(jobs.values()))[0]
    figures["settings"] = {k: first[k] for k in ("n_train", "epochs", "imgsz", "batch")}
    return {
        "name": "throughput",
        "title": "3. Training throughput",
        "about": (
            f"`python -m src.run attn=<variant> {' '.join(args)}` at the "
            f"{'tiny --quick' if mode.quick else 'default embedded-dataset'} settings "
            f"(n_train={first['n_train']}, imgsz={first['imgsz']}, batch={first['batch']}, "
            f"{first['epochs']} epochs, position `neck`). images/s = n_train x epochs / train_seconds "
            "(ultralytics' train() call, validation included)."
        ),
        "figures": figures,
        "headline": [
            [f"training images/s, attn={name}", _f(v["images_per_second"]), ""]
            for name, v in figures["variants"].items()
        ],
        "tables": _tables(figures),
        "notes": _notes(figures),
        "seconds": time.perf_counter() - started,
    }


def _batch(job_dir: Path) -> Any:
    args = job_dir / "train" / "args.yaml"
    try:
        return yaml.safe_load(args.read_text()).get("batch")
    except (OSError, AttributeError, yaml.YAMLError):
        return None


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _tables(f: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        [
            f"`{name}`",
            _f(v["images_per_second"]),
            _f(v["relative_to_none"], 3),
            _f(v[TRAIN_SECONDS]),
            _f(v["epoch_images_per_second"]),
            len(v["runs"]),
        ]
        for name, v in f["variants"].items()
    ]
    return [
        {
            "title": "Images per second (median over runs)",
            "columns": ["attn", "images/s", "vs none", TRAIN_SECONDS, "images/s per epoch (results.csv)", "runs"],
            "rows": rows,
        }
    ]


def _notes(f: dict[str, Any]) -> list[str]:
    notes = [
        "`train_seconds` includes each epoch's validation and the final validation of best.pt; the "
        "per-epoch column (from results.csv's cumulative `time`) leaves the final validation out."
    ]
    if f["repeats"] == 1:
        notes.append("One run per variant; the per-epoch column is the median over its epochs.")
    return notes
