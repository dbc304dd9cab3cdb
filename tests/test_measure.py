"""Every published figure has a test that could fail."""

from __future__ import annotations

import pytest
import torch

from src import attention
from src.arch import architecture
from src.arch.bases import load_base, plain_graph
from src.arch.rewrite import insert_attention
from src.job import measurements as measure
from src.results.schema import LATENCY_MS_JOB, THROUGHPUT_IPS_JOB
from src.ultralytics_glue import model as glue_model
from src.ultralytics_glue.layout import base_layout


class Tiny(torch.nn.Module):
    """FLOPs by hand: conv 3->8, 3x3, 16x16 out: 2*8*3*9*256 = 110592; linear 8->4: 2*8*4 = 64."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.fc = torch.nn.Linear(8, 4, bias=False)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_exact_flops_of_a_tiny_model_match_the_hand_count():
    assert measure.exact_gflops(Tiny(), 16) * 1e9 == 2 * 8 * 3 * 9 * 16 * 16 + 2 * 8 * 4


@pytest.fixture(scope="module")
def yolo11n():
    return glue_model.build_model({**plain_graph(load_base()), "scale": "n"}, nc=80)


def test_baseline_gflops_equal_what_ultralytics_prints(yolo11n):
    from copy import deepcopy

    from ultralytics.utils.torch_utils import model_info

    fused = deepcopy(yolo11n).fuse(verbose=False)
    printed = model_info(fused, imgsz=640)[3]  # the "(fused) ... GFLOPs" figure of its summary line
    figures = {**measure.params(yolo11n), **measure.gflops(yolo11n, 640)}
    assert figures["gflops"] == pytest.approx(printed, abs=1e-3)
    assert figures["params"] == sum(p.numel() for p in yolo11n.parameters())
    # at 640 px a plain conv net has no super-linear cost, so both counters agree closely
    assert figures["gflops_exact"] == pytest.approx(figures["gflops"], rel=0.01)


def test_exact_gflops_scale_with_the_real_input_size(yolo11n):
    at_160, at_320 = measure.exact_gflops(yolo11n, 160), measure.exact_gflops(yolo11n, 320)
    assert at_320 == pytest.approx(4 * at_160, rel=0.01)


def _inserted(attn, after):
    arch = architecture.resolve("yolo11", "n", {"after": after}, base_layout)
    cls = attention.get_class(attn).__name__
    rewrite = insert_attention(arch.base, arch.channels, cls, lambda c: attention.yaml_args(attn, c, {}), arch.position)
    return glue_model.build_model({**rewrite.model, "scale": "n"}, nc=80)


def module_gflops(model, yolo11n, imgsz):
    """What the inserted layers cost: they keep channels, so every other layer costs what it did."""
    return measure.exact_gflops(model, imgsz) - measure.exact_gflops(yolo11n, imgsz)


def test_ema_matmuls_are_counted_in_exact_flops(yolo11n):
    """EMA at P5 of a 160 px image: 256 ch, 5x5 map, factor 32 -> 8 channels per group."""
    model = _inserted("ema", [10])
    b_groups, cg, hw = 32, 256 // 32, 5 * 5
    convs = 2 * b_groups * cg * cg * (5 + 5) + 2 * b_groups * cg * cg * 9 * hw  # conv1x1 on h+w, conv3x3
    matmuls = 2 * (2 * b_groups * 1 * cg * hw)  # two (1 x cg) @ (cg x hw) per group
    assert module_gflops(model, yolo11n, 160) * 1e9 == pytest.approx(convs + matmuls, rel=1e-6)


def test_cot_aggregation_is_counted_in_exact_flops(yolo11n):
    """The k x k aggregation of the values: 2*k*k FLOPs per value element, on top of the convs."""
    model = _inserted("cot", [10])
    block = next(m for m in model.modules() if type(m).__name__ == "CoTBlock")
    # a conv's MACs are weight.numel() per output pixel (groups included): 25 pixels on the 5x5 map,
    # one for the fusion MLP that runs on the pooled features
    fuse = set(block.se.modules())  # the split-attention MLP on the pooled features
    conv_flops = sum(
        2 * m.weight.numel() * (1 if m in fuse else 25) for m in block.modules() if isinstance(m, torch.nn.Conv2d)
    )
    aggregation = 2 * 9 * 256 * 25  # P5 of 160 px: 256 channels on a 5x5 map, k = 3
    assert module_gflops(model, yolo11n, 160) * 1e9 == pytest.approx(conv_flops + aggregation, rel=1e-9)


def test_latency_fields_are_present_and_positive(yolo11n):
    figures = measure.latency(yolo11n, 64, threads=1, runs=3, batch=2)
    assert figures[LATENCY_MS_JOB] > 0 and figures[THROUGHPUT_IPS_JOB] > 0
    assert figures["latency_threads"] == 1 and figures["latency_device"].startswith("cpu")
    assert figures["throughput_batch"] == 2 and figures["latency_runs"] == 3


def test_ap_by_size_takes_ultralytics_coco_figures_undefined_sizes_null():
    """faster-coco-eval's -1 (no ground truth of that size) is null; with no detection at all
    ultralytics does not evaluate, and AP is 0 exactly where there is ground truth."""
    from types import SimpleNamespace

    from src.ultralytics_glue.validation import _ap_by_size

    evaluated = SimpleNamespace(
        coco_stats={"AP_all": 0.41, "AP_50": 0.8, "AP_small": 0.3, "AP_medium": 0.52, "AP_large": -1.0}, gdict=None
    )
    assert _ap_by_size(evaluated) == {"coco_map50_95": 0.41, "ap_small": 0.3, "ap_medium": 0.52, "ap_large": None}
    small_boxes_only = {"annotations": [{"area": 10 * 8}, {"area": 31 * 31}]}
    nothing = _ap_by_size(SimpleNamespace(coco_stats={}, gdict=small_boxes_only))
    assert nothing == {"coco_map50_95": 0.0, "ap_small": 0.0, "ap_medium": None, "ap_large": None}
