"""What a job measures of its model before training: params (also as added over the plain base),
two GFLOPs figures, latency, throughput and, if asked, ONNX exportability.

Why two GFLOPs: papers quote ultralytics' figure (thop on a small stride-sized proxy, scaled to
640 px), which misses work that grows faster than H*W and anything thop does not know. The exact
figure runs the real input size through torch's FlopCounterMode. See README "How we measure".
"""

from __future__ import annotations

import statistics
import time
from copy import deepcopy
from pathlib import Path
from typing import Any, Sequence

import torch

from src import attention
from src.arch.architecture import Architecture
from src.arch.bases import plain_graph
from src.arch.rewrite import Placed
from src.results import BASELINE
from src.results.schema import LATENCY_MS_JOB, THROUGHPUT_IPS_JOB
from src.ultralytics_glue.model import build_model, export_onnx, ultralytics_gflops


def measure_model(cfg: dict[str, Any], arch: Architecture, model, model_file: Path, job_dir: Path) -> dict[str, Any]:
    """Params (also as added over the plain model), both GFLOPs, latency and, if asked, ONNX export."""
    opts, imgsz = cfg["measure"], cfg["train"]["imgsz"]
    nc = len(cfg["dataset"]["names"])
    baseline = (
        model
        if cfg["attn"]["name"] == BASELINE
        else build_model({**plain_graph(arch.base), "scale": arch.scale}, nc=nc)
    )
    fused = inference_copy(model)  # one fused copy for every count and timing
    figures = {**params(model, params(baseline)["params"]), **gflops(fused, imgsz)}
    capacity = attention.capacity_report(model)  # a capacity control: its params next to the matched module's
    if capacity:
        figures["capacity"] = capacity
    figures.update(
        latency(
            fused,
            imgsz,
            device=measure_device(cfg["train"].get("device")),
            threads=opts.get("threads"),
            runs=opts["latency_runs"],
            batch=opts["throughput_batch"],
        )
    )
    if opts.get("onnx"):
        figures.update(onnx_export(model_file, job_dir / "export", imgsz, nc))
    return figures


def measure_device(device: Any) -> str:
    """The device latency is timed on: the job's own (its first GPU for multi-GPU jobs)."""
    text = str(device if device is not None else "auto").lower()
    if text in ("auto", "", "none"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if text == "cpu" or text == "mps":
        return text
    first = text.split(",")[0].replace("cuda:", "")
    return f"cuda:{first}" if first.isdigit() and torch.cuda.is_available() else "cpu"


def gflops(model: torch.nn.Module, imgsz: int) -> dict[str, Any]:
    """Both GFLOPs figures: ultralytics' (at 640 px) and the exact one at the job's image size."""
    fused = inference_copy(model)
    return {
        "gflops": round(ultralytics_gflops(fused, 640), 3),
        "gflops_exact": round(exact_gflops(fused, imgsz), 4),
        "gflops_exact_imgsz": imgsz,
    }


def params(model: torch.nn.Module, baseline_params: int | None = None) -> dict[str, int | None]:
    total = sum(p.numel() for p in model.parameters())
    return {
        "params": total,
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "params_added": None if baseline_params is None else total - baseline_params,
    }


def entry_costs(model: torch.nn.Module, placed: Sequence[Placed], imgsz: int) -> list[dict[str, Any]]:
    """Params and exact GFLOPs (at `imgsz`) that each entry of a several-module model adds: its
    inserted layers and the attention modules inside its blocks, read off one forward pass
    (FlopCounterMode counts per module)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = inference_copy(model)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, imgsz, imgsz))
    flops = {name.partition(".")[2]: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    named = dict(model.named_modules())
    out = []
    for entry in placed:
        names = [f"model.{i}" for i in sorted(entry.inserted)]
        names += [n for i in entry.inside for n in named if n.startswith(f"model.{i}.") and n.endswith(".attn")]
        out.append(
            {
                "label": entry.label,
                "params_added": sum(p.numel() for n in names for p in named[n].parameters()),
                "gflops_exact_added": round(sum(flops.get(n, 0) for n in names) / 1e9, 4),
            }
        )
    return out


def exact_gflops(model: torch.nn.Module, imgsz: int) -> float:
    """Conv and matmul/bmm FLOPs (2 per MAC) of one forward pass at the real input size, batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    net = inference_copy(model)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, imgsz, imgsz))
    total = counter.get_total_flops()
    if not total:
        raise RuntimeError("FlopCounterMode counted 0 FLOPs")
    return total / 1e9


def latency(
    model: torch.nn.Module,
    imgsz: int,
    *,
    device: str = "cpu",
    threads: int | None = None,
    runs: int = 20,
    warmup: int = 3,
    batch: int = 8,
) -> dict[str, Any]:
    """Median ms per image at batch 1 and images/s at `batch`, fused model, fixed thread count: the
    job's own figure, a diagnostic (the table's comes from the sweep's side-by-side pass, src/costs)."""
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        net = inference_copy(model).to(device)
        one = torch.zeros(1, 3, imgsz, imgsz, device=device)
        many = torch.zeros(batch, 3, imgsz, imgsz, device=device)
        per_image = timed_runs(net, one, runs, warmup, device)
        per_batch = timed_runs(net, many, max(3, runs // 4), 1, device)
        return {
            LATENCY_MS_JOB: round(statistics.median(per_image) * 1000, 3),
            THROUGHPUT_IPS_JOB: round(batch / statistics.median(per_batch), 2),
            "throughput_batch": batch,
            "latency_runs": runs,
            "latency_device": device_name(device),
            "latency_threads": torch.get_num_threads(),
        }
    finally:
        torch.set_num_threads(previous_threads)


def device_name(device: str) -> str:
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"cpu ({platform.processor() or platform.machine()})"


def onnx_export(model_yaml: Path, out_dir: Path, imgsz: int, nc: int) -> dict[str, Any]:
    """Export with ultralytics' own exporter (what users run next) and run it once in onnxruntime."""
    try:
        path = export_onnx(model_yaml, out_dir, imgsz, nc)
        return {"onnx_ok": True, "onnx_error": None, "onnx_file": str(path)}
    except Exception as exc:  # the reason is the result
        return {"onnx_ok": False, "onnx_error": f"{type(exc).__name__}: {exc}"[:500], "onnx_file": None}


def inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A fused float eval copy to measure on; given one, it is returned as it is."""
    if getattr(model, "_measure_copy", False):
        return model
    net = deepcopy(model).float().eval()
    if hasattr(net, "fuse"):
        net = net.fuse(verbose=False)
    net._measure_copy = True
    return net


def timed_runs(net: torch.nn.Module, x: torch.Tensor, runs: int, warmup: int, device: str) -> list[float]:
    """Seconds of each of `runs` forward passes after `warmup` untimed ones (CUDA synchronised)."""
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            sync()
            start = time.perf_counter()
            net(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times
