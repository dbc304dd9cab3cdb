"""Messages that tell the truth: what the log names is the file on disk; every `python -m src.run`
line of the README composes as written."""
from __future__ import annotations

import logging

import torch

from src.ultralytics_glue.trainer import stripping_beside


def test_the_strip_log_line_names_the_final_checkpoint(tmp_path):
    from ultralytics.engine import trainer as engine

    last = tmp_path / "last.pt"
    torch.save({"model": torch.nn.Linear(2, 2), "ema": None, "epoch": 3, "train_args": {}}, last)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    engine.LOGGER.addHandler(handler)
    try:
        with stripping_beside():
            engine.strip_optimizer(last)
    finally:
        engine.LOGGER.removeHandler(handler)
    stripped = [line for line in lines if line.startswith("Optimizer stripped")]
    assert stripped == [f"Optimizer stripped from {last}, {last.stat().st_size / 1e6:.1f}MB"]
