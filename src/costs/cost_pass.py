"""The cost pass over a sweep: every architecture's model built once, timed in one process on one
device, interleaved (src/costs/timing.py), and written to the sweep's costs.json and costs.csv.

Per variant: PyTorch latency at batch 1 and throughput at the throughput batch (fused, eval mode,
the definition the jobs used), each with its spread; inference peak memory at both batches
(src/costs/memory.py); and, with `onnx`, onnxruntime CPU latency at batch 1 (src/costs/onnx_cpu.py).
A variant that cannot be built or exported is recorded with its reason; the others are timed.
"""

from __future__ import annotations

import csv
import logging
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from src.costs import memory, onnx_cpu
from src.costs.timing import interleaved, summary_ips, summary_ms
from src.costs.variants import Variant, variants_of
from src.job.measurements import inference_copy, timed_runs
from src.job.provenance import now
from src.results import costs as C
from src.results.schema import (
    ATTN,
    DATASET,
    IMGSZ,
    LATENCY_MS,
    MEM_MB_BATCH,
    MEM_MB_BATCH1,
    MODEL,
    ONNX_CPU_MS,
    POS,
    THROUGHPUT_IPS,
)
from src.sweep.discover import HYDRA_DIR
from src.ultralytics_glue.console import quiet
from src.ultralytics_glue.model import build_model

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # what --device takes


def check_device(device: str) -> str:
    """`device` as torch names it; ValueError naming the value and the choices, before any work."""
    text = str(device).strip().lower()
    if text == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return text
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()) or text.isdigit():
        index = int(text.rsplit(":", 1)[-1]) if text != "cuda" else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: no such CUDA device here ({torch.cuda.device_count()} visible)")
        return f"cuda:{index}"
    raise ValueError(f"device={device!r}: expected one of {', '.join(DEVICES)}")


def device_caption(device: str, threads: int) -> str:
    """What the table's caption says the figures were measured on."""
    if device.startswith("cuda"):
        return f"GPU: {torch.cuda.get_device_name(torch.device(device))}"
    return f"CPU: {cpu_model()}, {threads} thread{'s' if threads != 1 else ''}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sweep_settings(variants: list[Variant]) -> dict[str, Any]:
    """The sweep's measure.threads / measure.throughput_batch (its first job's saved config)."""
    for v in variants:
        config = v.jobs[0] / HYDRA_DIR / "config.yaml"
        if config.is_file():
            measure = (yaml.safe_load(config.read_text()) or {}).get("measure") or {}
            return {k: measure[k] for k in ("threads", "throughput_batch") if isinstance(measure.get(k), int)}
    return {}


def run_costs(
    sweep_dir: str | Path,
    *,
    device: str = "auto",
    threads: int | None = None,
    batch: int | None = None,
    rounds: int = 10,
    runs_per_round: int = 3,
    warmup: int = 3,
    onnx: bool = True,
) -> dict[str, Any]:
    """Time every architecture of the sweep side by side; write costs.json and costs.csv; return the former.

    `threads` / `batch` default to the sweep's own measure.threads / measure.throughput_batch.
    """
    sweep = Path(sweep_dir)
    if not sweep.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep directory")
    for name, value in (("rounds", rounds), ("runs_per_round", runs_per_round)):
        if value < 1:
            raise ValueError(f"{name}={value}: must be >= 1")
    device = check_device(device)
    started = time.perf_counter()
    variants, skipped = variants_of(sweep)
    settings = sweep_settings(variants)
    threads = threads or settings.get("threads") or torch.get_num_threads()
    batch = batch or settings.get("throughput_batch") or 8
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with quiet():
            rows = _measure(sweep, variants, skipped, device, threads, batch, rounds, runs_per_round, warmup, onnx)
    finally:
        torch.set_num_threads(previous_threads)
    costs = {
        C.DEVICE: device_caption(device, threads),
        C.DEVICE_KIND: device,
        C.THREADS: threads,
        C.ONNX_THREADS: threads if onnx else None,
        C.ROUNDS: rounds,
        C.RUNS_PER_ROUND: runs_per_round,
        C.WARMUP: warmup,
        C.BATCH: batch,
        C.VARIANTS: rows,
        C.SKIPPED: [{**s, "job": _relative(Path(s[C.JOB]), sweep)} for s in skipped],
        C.PASS_ERROR: None if rows or not skipped else "no variant could be built (see skipped)",
        C.SECONDS: round(time.perf_counter() - started, 2),
        "created_at": now(),
        "torch": torch.__version__,
    }
    C.write_costs(sweep, costs)
    _write_csv(sweep / C.COSTS_CSV, rows)
    return costs


def _measure(sweep, variants, skipped, device, threads, batch, rounds, runs_per_round, warmup, onnx) -> list[dict]:
    built: list[tuple[Variant, torch.nn.Module]] = []
    for v in variants:
        try:
            net = inference_copy(build_model(v.model_file, nc=v.nc)).to(device)
        except Exception as exc:  # one variant that does not build leaves the others to time
            skipped.append({C.JOB: str(v.jobs[0]), C.REASON: f"model does not build: {type(exc).__name__}: {exc}"})
            continue
        built.append((v, net))
    if not built:
        return []
    ones = {id(net): torch.zeros(1, 3, v.imgsz, v.imgsz, device=device) for v, net in built}
    manys = {id(net): torch.zeros(batch, 3, v.imgsz, v.imgsz, device=device) for v, net in built}
    for _, net in built:  # warm-up, every model, before any is timed
        timed_runs(net, ones[id(net)], 0, warmup, device)
        timed_runs(net, manys[id(net)], 0, 1, device)
    one = interleaved([_slot(net, ones[id(net)], device) for _, net in built], rounds, runs_per_round)
    many = interleaved([_slot(net, manys[id(net)], device) for _, net in built], rounds, 1)
    rows = []
    for (v, net), t1, tb in zip(built, one, many, strict=True):
        row = _identity(v, sweep)
        row.update(summary_ms(LATENCY_MS, t1))
        row.update(summary_ips(THROUGHPUT_IPS, tb, batch))
        row[MEM_MB_BATCH1] = memory.inference_peak_mb(net, ones[id(net)], device)
        row[MEM_MB_BATCH] = memory.inference_peak_mb(net, manys[id(net)], device)
        rows.append(row)
    del built, ones, manys
    if onnx:
        try:
            _onnx_latencies(sweep, variants, rows, threads, rounds, runs_per_round, warmup)
        finally:  # ~10 MB a variant, timed: a dry run of every module would leave half a GB
            shutil.rmtree(sweep / C.COSTS_EXPORT_DIR, ignore_errors=True)
    return rows


def _slot(net: torch.nn.Module, x: torch.Tensor, device: str):
    return lambda k: timed_runs(net, x, k, 0, device)


def _onnx_latencies(sweep: Path, variants: list[Variant], rows: list[dict], threads, rounds, runs_per_round, warmup):
    """Export every timed variant, then time the sessions interleaved; an export that fails is recorded."""
    by_label = {r[C.MODEL_FILE]: r for r in rows}
    sessions = []
    for i, v in enumerate(variants):
        row = by_label.get(_relative(v.model_file, sweep))
        if row is None:
            continue
        try:
            out = sweep / C.COSTS_EXPORT_DIR / f"{i}_{v.model_file.stem}"
            sessions.append((row, onnx_cpu.onnx_session(v.model_file, out, v.imgsz, v.nc, threads), v.imgsz))
            row[C.ONNX_ERROR] = None
        except Exception as exc:  # the reason is the result
            row[C.ONNX_ERROR] = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("%s: ONNX export or session failed: %s", v.label, row[C.ONNX_ERROR])
    if not sessions:
        return
    slots = [onnx_cpu.session_runs(s, imgsz, warmup) for _, s, imgsz in sessions]
    for (row, _, _), times in zip(sessions, interleaved(slots, rounds, runs_per_round), strict=True):
        row.update(summary_ms(ONNX_CPU_MS, times))


def _identity(v: Variant, sweep: Path) -> dict[str, Any]:
    return {
        DATASET: v.dataset,
        MODEL: v.model,
        IMGSZ: v.imgsz,
        POS: v.pos,
        ATTN: v.attn,
        "gflops": v.gflops,
        C.MODEL_FILE: _relative(v.model_file, sweep),
        C.JOBS: [_relative(j, sweep) for j in v.jobs],
    }


def _relative(path: Path, sweep: Path) -> str:
    """Relative to the sweep dir, so a copied or moved sweep still finds its jobs."""
    try:
        return str(path.resolve().relative_to(sweep.resolve()))
    except ValueError:
        return str(path.resolve())


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys = [k for k in rows[0] if k != C.JOBS] if rows else []
    keys += [k for r in rows for k in r if k not in keys and k != C.JOBS]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*keys, C.JOBS])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, C.JOBS: " ".join(r[C.JOBS])})
