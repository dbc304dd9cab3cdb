"""The deployed model's latency: each variant exported to ONNX by ultralytics' exporter (what users
run next; custom attention modules included) and run under onnxruntime's CPU provider at batch 1,
with a fixed thread count, interleaved with the other variants like the PyTorch timings."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from src.costs.timing import TimeRuns
from src.ultralytics_glue.model import export_onnx


def onnx_session(model_yaml: Path, out_dir: Path, imgsz: int, nc: int, threads: int):
    """Export (checked against torch by the glue) and open a CPU session of `threads` intra-op threads."""
    import onnxruntime

    path = export_onnx(model_yaml, out_dir, imgsz, nc)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_runs(session, imgsz: int, warmup: int = 3) -> TimeRuns:
    """A slot for `timing.interleaved`: k timed batch-1 runs of `session` (after `warmup` untimed ones)."""
    feed = {session.get_inputs()[0].name: np.zeros((1, 3, imgsz, imgsz), dtype=np.float32)}
    for _ in range(warmup):
        session.run(None, feed)

    def runs(k: int) -> list[float]:
        times = []
        for _ in range(k):
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
        return times

    return runs
