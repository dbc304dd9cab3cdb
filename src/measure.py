"""Model cost figures that go into result.json."""
from __future__ import annotations

from typing import Any

import torch

from src import ultralytics_glue


def params(model: torch.nn.Module) -> dict[str, int]:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def cost(model: torch.nn.Module) -> dict[str, Any]:
    """Params and GFLOPs (ultralytics' convention: fused model, batch 1, 640 px)."""
    return {**params(model), "gflops": round(ultralytics_glue.ultralytics_gflops(model, 640), 3)}
