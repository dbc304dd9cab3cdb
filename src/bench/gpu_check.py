"""`python -m src.bench.gpu_check`: a short check on a CUDA GPU, written to outputs/gpu-check/REPORT.md.

What the CPU test suite cannot show: that training with AMP on a GPU works for the baseline, EMA,
CoT and a reference module (CBAM), and that validating the best checkpoint in float16, as
ultralytics does on GPUs, gives the float32 numbers. Each module trains 2 epochs on the embedded
dataset at 320 px through `python -m src.run` (so it is the real job, its result.json included),
then its best.pt is validated with `YOLO(best).val()` in float32 and in float16, and its latency
timed at batch 1 in float16 and float32, and, where `tensorrt` imports, as a TensorRT FP16 engine
exported by ultralytics (the report says when TensorRT is not installed). At most 8 minutes in
all: what does not fit is reported as skipped. Without a CUDA GPU it says so and exits 0, having
run and written nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from src.results import BASELINE, COMPLETED, FAILED, JobDir, read_result_or_none
from src.results.schema import ERROR, JOB_DIR, METRICS, STATUS, TRAIN_SECONDS
from src.runtime import PROJECT_ROOT

MODULES = (BASELINE, "ema", "cot", "cbam")
BUDGET_S = 8 * 60
EVAL_RESERVE_S = 25  # per module: two validations and the latency runs after its training
DEFAULT_OUT = PROJECT_ROOT / "outputs" / "gpu-check"
DEVICE = "0"  # the GPU everything runs on (a module constant, so a CPU smoke test can patch it)


def cuda_missing() -> str | None:
    """Why this machine cannot run the check, or None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
    return None


def missing_packages() -> list[str]:
    import importlib.util

    return [
        name
        for name in ("ultralytics", "hydra", "omegaconf", "yaml", "pandas")
        if importlib.util.find_spec(name) is None
    ]


def train(attn: str, out: Path, epochs: int, imgsz: int, timeout: float) -> dict[str, Any]:
    """One real job through src.run; returns its result.json (or why there is none)."""
    job_dir = out / "runs" / attn
    shutil.rmtree(job_dir, ignore_errors=True)  # a fresh run each time, never a skipped one
    job_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "src.run",
        f"attn={attn}",
        f"train.epochs={epochs}",
        f"train.imgsz={imgsz}",
        "train.amp=true",
        f"train.device={DEVICE}",
        "logger=none",
        "measure.onnx=false",
        f"paths.outputs={out}",
        f"hydra.run.dir={job_dir}",
    ]
    log = out / "runs" / f"{attn}.log"
    started = time.perf_counter()
    try:
        with log.open("w") as handle:
            proc = subprocess.run(cmd, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": f"training passed the time budget ({timeout:.0f} s); see {log}"}
    result = read_result_or_none(job_dir) or {STATUS: FAILED}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    if proc.returncode != 0:
        result[STATUS] = FAILED
    if result[STATUS] == FAILED:
        result.setdefault(ERROR, f"exit code {proc.returncode}; see {log}")
    result[JOB_DIR] = str(job_dir)
    return result


def validate(best: Path, data_yaml: str, imgsz: int, half: bool, out: Path, name: str) -> dict[str, float]:
    """`YOLO(best).val(half=...)`; ultralytics 8.4 spells half=True `quantize=16` (half is a deprecated alias)."""
    from ultralytics import YOLO

    metrics = YOLO(str(best)).val(
        data=data_yaml,
        imgsz=imgsz,
        batch=16,
        quantize=16 if half else None,
        device=DEVICE,
        plots=False,
        verbose=False,
        project=str(out / "val"),
        name=name,
        exist_ok=True,
    )
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}


def latency_ms(best: Path, imgsz: int, half: bool, runs: int = 50) -> float:
    """Median ms of a batch-1 forward pass of the fused model, float16 or float32."""
    import torch
    from ultralytics import YOLO

    device = "cpu" if DEVICE == "cpu" else f"cuda:{DEVICE}"
    sync = (lambda: None) if device == "cpu" else torch.cuda.synchronize
    net = copy.deepcopy(YOLO(str(best)).model).float().eval()
    net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
    net = net.to(device).half() if half else net.to(device)
    x = torch.zeros(1, 3, imgsz, imgsz, device=device, dtype=torch.float16 if half else torch.float32)
    return _median_ms(net, x, runs, sync)


def _median_ms(net: Any, x: Any, runs: int, sync: Any) -> float:
    """Median ms of `runs` calls of `net(x)` after 10 warm-up calls; the output must be finite."""
    import torch

    times = []
    with torch.inference_mode():
        for i in range(runs + 10):
            sync()
            started = time.perf_counter()
            y = net(x)
            sync()
            if i >= 10:
                times.append(time.perf_counter() - started)
        first = y[0] if isinstance(y, (list, tuple)) else y
        if not torch.isfinite(first).all():
            raise FloatingPointError("non-finite output")
    return round(statistics.median(times) * 1000, 3)


TRT_NOT_INSTALLED = "tensorrt is not installed (pip install tensorrt on the GPU machine to get this column)"


def tensorrt_fp16_ms(best: Path, imgsz: int, runs: int = 50) -> dict[str, Any]:
    """Batch-1 latency of a TensorRT FP16 engine: ultralytics' exporter (`format=engine`, `quantize=16`,
    its spelling of half=True in 8.4) and its AutoBackend, which casts the input to the engine's fp16.
    Only where `tensorrt` imports: else ultralytics' exporter would try to pip-install it."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return {"latency_trt_fp16_ms": None, "trt_note": TRT_NOT_INSTALLED}
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    engine = YOLO(str(best)).export(format="engine", quantize=16, imgsz=imgsz, device=DEVICE, verbose=False)
    device = torch.device(f"cuda:{DEVICE}")
    backend = AutoBackend(engine, device=device, fp16=True, verbose=False)
    x = torch.zeros(1, 3, imgsz, imgsz, device=device)
    return {"latency_trt_fp16_ms": _median_ms(backend, x, runs, torch.cuda.synchronize), "trt_note": None}


def check(attn: str, out: Path, epochs: int, imgsz: int, timeout: float) -> dict[str, Any]:
    row: dict[str, Any] = {"attn": attn}
    result = train(attn, out, epochs, imgsz, timeout)
    row.update(
        status=result[STATUS],
        error=result.get(ERROR),
        params=result.get("params"),
        train_seconds=result.get(TRAIN_SECONDS),
        wall_seconds=result.get("wall_seconds"),
        train_map50_95=(result.get(METRICS) or {}).get("map50_95"),
    )
    best = JobDir(result.get(JOB_DIR, "")).best
    if result[STATUS] != COMPLETED or not best.is_file():
        return row
    try:
        for half, tag in ((False, "fp32"), (True, "fp16")):
            row[f"val_{tag}"] = validate(best, result["data_yaml"], imgsz, half, out, f"{attn}-{tag}")
            row[f"latency_{tag}_ms"] = latency_ms(best, imgsz, half)
    except Exception as exc:  # the reason is the result
        row.update(status=FAILED, error=f"validation: {type(exc).__name__}: {exc}"[:300])
        return row
    try:
        row.update(tensorrt_fp16_ms(best, imgsz))
    except Exception as exc:  # an export TensorRT refuses is a finding, not a failed check
        row.update(
            latency_trt_fp16_ms=None, trt_note=f"TensorRT export or run failed: {type(exc).__name__}: {exc}"[:300]
        )
    return row


def _fmt(value: Any, spec: str = ".2f", scale: float = 1.0) -> str:
    return "" if value is None else format(value * scale, spec)


def report(rows: list[dict[str, Any]], header: dict[str, Any]) -> str:
    lines = [
        "# GPU check",
        "",
        f"{header['date']} on {header['gpu']} (torch {header['torch']}, CUDA {header['cuda']}, "
        f"ultralytics {header['ultralytics']}); {header['epochs']} epochs at {header['imgsz']} px on the embedded "
        f"dataset with AMP, then the best checkpoint validated in fp32 and fp16. Total {header['total_s']:.0f} s.",
        "",
        "| attn | status | params (M) | train (s) | mAP50-95 train final val (%) | mAP50 fp32 (%) | mAP50 fp16 (%) "
        "| mAP50-95 fp32 (%) | mAP50-95 fp16 (%) | Δ fp16-fp32 (pp) | latency fp16 (ms) | latency fp32 (ms) "
        "| latency TensorRT fp16 (ms) |",
        "|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        fp32, fp16 = r.get("val_fp32") or {}, r.get("val_fp16") or {}
        delta = (fp16["map50_95"] - fp32["map50_95"]) * 100 if fp32 and fp16 else None
        lines.append(
            f"| {r['attn']} | {r['status']} | {_fmt(r.get('params'), '.3f', 1e-6)} "
            f"| {_fmt(r.get(TRAIN_SECONDS), '.0f')} "
            f"| {_fmt(r.get('train_map50_95'), '.2f', 100)} | {_fmt(fp32.get('map50'), '.2f', 100)} "
            f"| {_fmt(fp16.get('map50'), '.2f', 100)} | {_fmt(fp32.get('map50_95'), '.2f', 100)} "
            f"| {_fmt(fp16.get('map50_95'), '.2f', 100)} | {_fmt(delta, '+.2f')} "
            f"| {_fmt(r.get('latency_fp16_ms'))} | {_fmt(r.get('latency_fp32_ms'))} "
            f"| {_fmt(r.get('latency_trt_fp16_ms'))} |"
        )
    problems = [f"- {r['attn']}: {r['error']}" for r in rows if r.get("error")]
    if problems:
        lines += ["", "Problems:", *problems]
    trt = sorted({r["trt_note"] for r in rows if r.get("trt_note")})
    if trt:
        lines += ["", *(f"TensorRT: {note}" for note in trt)]
    lines += [
        "",
        "Latency: median of 50 batch-1 forward passes of the fused model after 10 warm-up passes; TensorRT: "
        "the same of an FP16 engine exported by ultralytics (format=engine, quantize=16).",
        "Runs, logs and validation outputs: runs/, val/ next to this file; all figures in report.json.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default outputs/gpu-check)")
    parser.add_argument("--modules", default=",".join(MODULES), help="attn names, comma-separated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole check")
    args = parser.parse_args(argv)

    reason = cuda_missing()
    if reason:
        print(f"gpu-check needs a CUDA GPU: {reason}. Nothing was run and no report was written.")
        return 0
    missing = missing_packages()
    if missing:
        print(
            f"gpu-check: missing packages {', '.join(missing)}; on a machine without network install the "
            f"wheels from `make gpu-wheels`: python -m pip install --no-index --no-deps .whl/*.whl",
            file=sys.stderr,
        )
        return 1

    out = args.out.resolve()
    from src.runtime import set_environment

    set_environment(out)  # before ultralytics loads: its settings and downloads stay under out
    import torch
    import ultralytics

    started = time.perf_counter()
    rows = []
    modules = [m for m in args.modules.split(",") if m]
    for i, attn in enumerate(modules):
        left = args.budget - (time.perf_counter() - started) - EVAL_RESERVE_S * (len(modules) - i)
        if left < 30:
            rows.append({"attn": attn, "status": "skipped", "error": "not started: the time budget is spent"})
            continue
        print(f"[gpu-check] {attn}: {args.epochs} epochs at {args.imgsz} px (at most {left:.0f} s)", flush=True)
        rows.append(check(attn, out, args.epochs, args.imgsz, left))
        print(f"[gpu-check] {attn}: {rows[-1]['status']}", flush=True)
    gpu = "cpu" if DEVICE == "cpu" else torch.cuda.get_device_name(int(DEVICE))
    header = {
        "date": datetime.date.today().isoformat(),
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "ultralytics": ultralytics.__version__,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "total_s": time.perf_counter() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"header": header, "rows": rows}, indent=2))
    text = report(rows, header)
    (out / "REPORT.md").write_text(text)
    print(text)
    return 0 if all(r["status"] == COMPLETED for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
