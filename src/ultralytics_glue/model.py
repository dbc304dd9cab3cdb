"""Building a detection model from a YAML, ultralytics' GFLOPs figure, and ONNX export."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops


def build_model(model_yaml: str | Path | dict, nc: int, verbose: bool = False) -> DetectionModel:
    return DetectionModel(str(model_yaml) if isinstance(model_yaml, Path) else model_yaml, nc=nc, verbose=verbose)


def ultralytics_gflops(model: torch.nn.Module, imgsz: int = 640) -> float:
    """GFLOPs as ultralytics reports them (fused model, batch 1, 640 px); an error, never a silent 0."""
    fused = model
    if hasattr(model, "fuse") and not (hasattr(model, "is_fused") and model.is_fused()):
        fused = deepcopy(model).eval().fuse(verbose=False)
    value = get_flops(fused, imgsz)  # profiles a copy of its own
    if not value:
        raise RuntimeError("ultralytics' FLOPs counter failed (it returns 0.0 on any error)")
    return float(value)


def export_onnx(model_yaml: Path, out_dir: Path, imgsz: int, nc: int) -> Path:
    """ONNX export through ultralytics' exporter, then one onnxruntime inference checked against torch."""
    import numpy as np
    import onnxruntime

    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(model_yaml, nc=nc).eval()
    weights = out_dir / f"{Path(model_yaml).stem}.pt"
    torch.save({"model": model, "train_args": {"imgsz": imgsz}, "date": None, "version": None}, weights)
    path = Path(YOLO(str(weights), task="detect").export(format="onnx", imgsz=imgsz, simplify=False, verbose=False))
    x = torch.rand(1, 3, imgsz, imgsz)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})[:1]
    with torch.no_grad():
        reference = model.fuse(verbose=False)(x)[0].numpy()
    if not np.allclose(onnx_out, reference, rtol=1e-3, atol=1e-3):
        raise RuntimeError(
            f"onnxruntime output differs from torch (max abs diff {float(np.abs(onnx_out - reference).max()):.3g})"
        )
    weights.unlink(missing_ok=True)
    return path
