"""End to end: a 1-epoch training on YOLO26 and one with attention inside the neck's blocks,
and the inside job's checkpoint and YAML reloaded by plain ultralytics in fresh processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, TINY, load_result, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("positions")
    jobs = {}
    for name, args in {
        "yolo26": ["model=yolo26n", "attn=none"],
        "inside": ["attn=ema", "pos=inside_neck", "pos.inside_mode=conv"],
    }.items():
        proc = run_cli(*args, f"hydra.run.dir={out / name}", *TINY, outputs=out, cache=shared_cache)
        assert proc.returncode == 0, proc.stderr[-3000:]
        jobs[name] = out / name
    return jobs


def test_yolo26_trains_and_is_named_by_its_real_base(trained):
    result = load_result(trained["yolo26"])
    assert result["status"] == "completed" and result["model"] == "yolo26n"
    assert result["model_yaml"].startswith("yolo26n-") and result["metrics"]["map50_95"] is not None


def test_inside_neck_trains_and_records_the_resolved_blocks(trained):
    job = trained["inside"]
    result = load_result(job)
    assert result["status"] == "completed" and result["pos"] == "inside_neck:conv"
    assert result["pos_inside"] == [16, 19, 22] and result["pos_inside_mode"] == "conv"
    assert result["inserted_layers"] == [] and result["params_added"] < 0  # conv mode drops the 3x3 convs
    text = (job / result["model_yaml"]).read_text()
    assert "inside:" in text and "module: ema" in text and "mode: conv" in text


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_plain_ultralytics_reloads_the_inside_checkpoint_and_rebuilds_its_yaml(trained):
    job = trained["inside"]
    result = load_result(job)
    best, yaml_file = job / "train" / "weights" / "best.pt", job / result["model_yaml"]
    code = (
        "import src, torch\n"
        "from ultralytics import YOLO\n"
        f"m = YOLO(r'{best}')\n"
        "n = sum(type(x).__name__ == 'AttentionBottleneck' for x in m.model.modules())\n"
        f"r = YOLO(r'{yaml_file}')\n"  # what a resumed run and a DDP worker build from the YAML
        "k = sum(type(x).__name__ == 'AttentionBottleneck' for x in r.model.modules())\n"
        "head = f'model.{len(m.model.model) - 1}.'\n"  # Detect: the YAML says nc 80, the job had 5
        "shapes = lambda net: [(k, tuple(v.shape)) for k, v in net.state_dict().items() if not k.startswith(head)]\n"
        "same = shapes(m.model) == shapes(r.model)\n"
        "out = m.model.float().eval()(torch.zeros(1, 3, 64, 64))\n"
        "print('COUNTS', n, k, same)\n"
    )
    proc = python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n, k, same = proc.stdout.split("COUNTS")[1].split()
    assert int(n) == int(k) == 4 and same == "True"  # the four bottlenecks of yolo11n layers 16, 19, 22
