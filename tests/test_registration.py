"""Importing `src` is all a process needs for ultralytics to parse and unpickle our models."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("order", ["src first", "ultralytics first"])
def test_modules_registered_whichever_is_imported_first(order):
    imports = (
        "import src; import ultralytics.nn.tasks as t"
        if order == "src first"
        else "import ultralytics.nn.tasks as t; import src"
    )
    proc = python(
        f"{imports}\nfrom src.attention.ema import EMA\nfrom src.attention.cot_lite import CoTAttention\n"
        "from src.attention.cot import CoTBlock\n"
        "assert t.EMA is EMA and t.CoTAttention is CoTAttention and t.CoTBlock is CoTBlock\nprint('ok')"
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_plain_ultralytics_builds_and_reloads_our_yaml_and_checkpoint(tmp_path):
    """What a user's own script, a resumed run or a DDP worker does: no framework code but `import src`."""
    from src import attention
    from src.arch import architecture
    from src.arch.rewrite import dump_yaml, insert_attention
    from src.ultralytics_glue.layout import base_layout

    arch = architecture.resolve("yolo11", "n", {"after": [16, 19, 22]}, base_layout)
    rewrite = insert_attention(
        arch.base, arch.channels, "EMA", lambda c: attention.yaml_args("ema", c, {}), arch.position
    )
    path = dump_yaml(rewrite.model, tmp_path / "yolo11n-ema-neck.yaml")
    ckpt = tmp_path / "model.pt"
    proc = python(
        f"import src, torch\nfrom ultralytics import YOLO\nm = YOLO(r'{path}')\n"
        f"torch.save({{'model': m.model}}, r'{ckpt}')\nprint(type(m.model.model[17]).__name__)"
    )
    assert proc.returncode == 0 and "EMA" in proc.stdout, proc.stderr[-2000:]
    # unpickling in a fresh process that never imported src itself: the class path imports it
    proc = python(
        f"import torch\nm = torch.load(r'{ckpt}', weights_only=False)['model']\n"
        "import ultralytics.nn.tasks as t\nprint(type(m.model[17]).__module__, hasattr(t, 'EMA'))"
    )
    assert proc.returncode == 0 and "src.attention.ema True" in proc.stdout, proc.stderr[-2000:]


def test_importing_the_aggregator_loads_no_torch():
    proc = python("import sys, src.aggregate, src.results\nprint('torch' in sys.modules, 'ultralytics' in sys.modules)")
    assert proc.stdout.split() == ["False", "False"], proc.stderr[-2000:]
