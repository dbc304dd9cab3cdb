"""What a job measures of its model before training: params, both GFLOPs, latency, ONNX."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from src import attention, measure, model_yaml
from src.ultralytics_glue.model import build_model


def measure_model(cfg: dict[str, Any], model, model_file: Path, job_dir: Path) -> dict[str, Any]:
    """Params (also as added over the plain model), both GFLOPs, latency and, if asked, ONNX export."""
    opts, imgsz = cfg["measure"], cfg["train"]["imgsz"]
    nc = len(cfg["dataset"]["names"])
    base = model_yaml.load_base(cfg["model"]["base"])
    baseline = build_model({**base, "scale": cfg["model"]["scale"]}, nc=nc)
    figures = measure.cost(model, imgsz, baseline)
    capacity = attention.capacity_report(model)  # a capacity control: its params next to the matched module's
    if capacity:
        figures["capacity"] = capacity
    figures.update(measure.latency(model, imgsz, device=measure_device(cfg["train"].get("device")),
                                   threads=opts.get("threads"), runs=opts["latency_runs"],
                                   batch=opts["throughput_batch"]))
    if opts.get("onnx"):
        figures.update(measure.onnx_export(model_file, job_dir / "export", imgsz, nc))
    return figures


def measure_device(device: Any) -> str:
    """The device latency is timed on: the job's own (its first GPU for multi-GPU jobs)."""
    import torch

    text = str(device if device is not None else "auto").lower()
    if text in ("auto", "", "none"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if text == "cpu" or text == "mps":
        return text
    first = text.split(",")[0].replace("cuda:", "")
    return f"cuda:{first}" if first.isdigit() and torch.cuda.is_available() else "cpu"
