"""The `costs.json` contract: what the side-by-side cost pass (src/costs) writes into a sweep dir
and the aggregator reads. Torch-free, like the rest of src/results.

One file per sweep dir. Its `variants` hold one entry per architecture of the sweep (one model per
variant and dataset/model: the architecture decides the cost, not the seed), each naming the jobs
it stands for, relative to the sweep dir. Every figure in it was timed in one process on one device,
interleaved, so the figures are comparable with each other (README "How we measure").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from src.files import atomic_write_json
from src.results.schema import LATENCY_MS, ONNX_CPU_MS, SIDE_BY_SIDE, THROUGHPUT_IPS

COSTS_FILE = "costs.json"  # in the sweep dir
COSTS_CSV = "costs.csv"  # the same variants, one row each
COSTS_EXPORT_DIR = "costs_export"  # the pass's ONNX exports while it runs, in the sweep dir (removed after)
COSTS_SCHEMA = 1

# ------------------------------------------------------------------------------ top-level keys
DEVICE = "device"  # the caption: "CPU: <model>, N threads" or the GPU's name
DEVICE_KIND, THREADS, ONNX_THREADS = "device_kind", "threads", "onnx_threads"
ROUNDS, RUNS_PER_ROUND, WARMUP, BATCH = "rounds", "runs_per_round", "warmup", "throughput_batch"
VARIANTS, SKIPPED, PASS_ERROR, SECONDS = "variants", "skipped", "error", "seconds"

# ------------------------------------------------------------------------------ per-variant keys
JOBS, MODEL_FILE, ONNX_ERROR = "jobs", "model_file", "onnx_error"
JOB, REASON = "job", "reason"  # a skipped entry: the job dir and why it was left out
# The figures the pass measures (src.results.schema.SIDE_BY_SIDE); a table column of the same name
# takes its value from here.
MEASURED = SIDE_BY_SIDE
LOW, HIGH = "_q1", "_q3"  # suffixes of each timing's spread: its 25th and 75th percentiles
SPREAD = tuple(f"{k}{s}" for k in (LATENCY_MS, THROUGHPUT_IPS, ONNX_CPU_MS) for s in (LOW, HIGH))


def costs_path(sweep_dir: str | os.PathLike) -> Path:
    return Path(sweep_dir) / COSTS_FILE


def write_costs(sweep_dir: str | os.PathLike, costs: dict[str, Any]) -> Path:
    """Atomically, so an aggregation running meanwhile reads the old file or the new one."""
    return atomic_write_json(costs_path(sweep_dir), {"schema": COSTS_SCHEMA, **costs})


def read_costs(sweep_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The sweep's costs.json, None when it has none; ValueError naming the file when it is unusable."""
    path = costs_path(sweep_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get(VARIANTS, []), list):
        raise ValueError(f"{path}: expected an object with a list of {VARIANTS!r}")
    return data
