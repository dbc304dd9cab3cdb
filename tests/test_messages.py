"""Messages that tell the truth: what the log names is the file on disk; every `python -m src.run`
line of the README composes as written."""

from __future__ import annotations

import logging
import re
import shlex

import pytest
import torch
from conftest import ROOT

from src.ultralytics_glue.trainer import stripping_beside


def readme_run_lines() -> list[str]:
    """Every `python -m src.run ...` of the README with values to run: code-block lines and inline
    commands (those with placeholders such as `attn=<name>` or without an override aside)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"`(python -m src\.run [^`]*)`", text)
    return sorted({line for line in lines if line.startswith("python -m src.run ") and "=" in line and "<" not in line})


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


@pytest.mark.parametrize("line", readme_run_lines())
def test_every_readme_run_line_composes_as_written(line, tmp_path):
    from src.sweep.plan import main as plan

    args = shlex.split(line)[3:]
    assert plan([*args, "plan=true", f"paths.outputs={tmp_path}"]) == 0


def test_the_readme_lines_include_the_figures_switch():
    assert any("hydra.callbacks.aggregate.figures=false" in line for line in readme_run_lines())
