"""Checkpoints of every attention module load under ultralytics' opt-in safe load
(`ULTRALYTICS_SAFE_LOAD=1`: `torch.load(weights_only=True)` with an allow-list)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from copy import deepcopy

import pytest
from conftest import ROOT, small_model

from src import attention
from src.results import BASELINE


def _checkpoint(model, path) -> None:
    """best.pt as a training leaves it: ultralytics' save_model dict (the fp16 EMA copy, no `model`),
    then its own strip_optimizer, which final_eval runs on best.pt."""
    import torch
    from ultralytics.utils.torch_utils import strip_optimizer

    torch.save({"epoch": 0, "model": None, "ema": deepcopy(model).half(), "updates": 0, "train_args": {}}, path)
    strip_optimizer(path)


def _load(files: list[str]) -> subprocess.CompletedProcess:
    """YOLO(file) for each file in a fresh process with ULTRALYTICS_SAFE_LOAD=1 (read at import)."""
    code = (
        "import src\nimport json, sys\nfrom ultralytics import YOLO\n"
        + "for f in json.loads(sys.argv[1]):\n"
        + "    m = YOLO(f, task='detect').model\n"
        + "    ours = {type(x).__name__ for x in m.modules() if type(x).__module__.startswith('src.')}\n"
        + "    print(f, json.dumps(sorted(ours)))\n"
    )
    env = {**os.environ, "ULTRALYTICS_SAFE_LOAD": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, json.dumps(files)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_best_pt_of_every_module_loads_with_safe_load(tmp_path):
    """One checkpoint holds every registered module (one after the other between layers, and one
    inside a C3k2): every class a trained best.pt of any of them pickles, in one build and one load."""
    names = [n for n in attention.available() if n != BASELINE]
    model = small_model(names)
    path = tmp_path / "best.pt"
    _checkpoint(model, path)
    expected = sorted({type(m).__name__ for m in model.modules() if type(m).__module__.startswith("src.")})
    assert {"AttentionBottleneck", *(attention.get_class(n).__name__ for n in names)} <= set(expected)

    proc = _load([str(path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(str(tmp_path)))
    assert json.loads(loaded[str(path)]) == expected, loaded

    # ultralytics' safe load refuses the same file once our classes are off the allow-list (the check is real)
    import torch
    from ultralytics.nn.tasks import torch_safe_load

    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals([g for g in allowed if not getattr(g, "__module__", "").startswith("src.")])
    try:
        needed = {g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g.startswith("src.")}
        assert {f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules()} >= needed
        assert {n.rpartition(".")[2] for n in needed} == set(expected)
        with pytest.raises(TypeError, match="outside the supported Ultralytics checkpoint format"):
            torch_safe_load(path, safe_only=True)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(allowed)
