"""Every published figure has a test that could fail."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from src import architecture as arch
from src import attention, coco_eval, measure, ultralytics_glue


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
    return ultralytics_glue.build_model({**arch.load_base(), "scale": "n"}, nc=80)


def test_baseline_gflops_equal_what_ultralytics_prints(yolo11n):
    from copy import deepcopy

    from ultralytics.utils.torch_utils import model_info

    fused = deepcopy(yolo11n).fuse(verbose=False)
    printed = model_info(fused, imgsz=640)[3]  # the "(fused) ... GFLOPs" figure of its summary line
    figures = measure.cost(yolo11n, 640)
    assert figures["gflops"] == pytest.approx(printed, abs=1e-3)
    assert figures["params"] == sum(p.numel() for p in yolo11n.parameters())
    # at 640 px a plain conv net has no super-linear cost, so both counters agree closely
    assert figures["gflops_exact"] == pytest.approx(figures["gflops"], rel=0.01)


def test_exact_gflops_scale_with_the_real_input_size(yolo11n):
    at_160, at_320 = measure.exact_gflops(yolo11n, 160), measure.exact_gflops(yolo11n, 320)
    assert at_320 == pytest.approx(4 * at_160, rel=0.01)


def _inserted(attn, after):
    cls = attention.get_class(attn).__name__
    rewrite = arch.insert_attention(arch.load_base(), "n", cls, lambda c: attention.yaml_args(attn, c, {}),
                                    after=after)
    return ultralytics_glue.build_model({**rewrite.model, "scale": "n"}, nc=80)


def test_ema_matmuls_are_counted_in_exact_flops():
    """EMA at P5 of a 160 px image: 256 ch, 5x5 map, factor 32 -> 8 channels per group."""
    model = _inserted("ema", [10])
    by_type = measure.flops_by_module(model, 160)
    b_groups, cg, hw = 32, 256 // 32, 5 * 5
    convs = 2 * b_groups * cg * cg * (5 + 5) + 2 * b_groups * cg * cg * 9 * hw  # conv1x1 on h+w, conv3x3
    matmuls = 2 * (2 * b_groups * 1 * cg * hw)  # two (1 x cg) @ (cg x hw) per group
    assert by_type["EMA"] * 1e9 == pytest.approx(convs + matmuls, rel=1e-6)


def test_cot_aggregation_is_counted_in_exact_flops():
    """The k x k aggregation of the values: 2*k*k FLOPs per value element, on top of the convs."""
    model = _inserted("cot", [10])
    block = next(m for m in model.modules() if type(m).__name__ == "CoTBlock")
    # a conv's MACs are weight.numel() per output pixel (groups included): 25 pixels on the 5x5 map,
    # one for the fusion MLP that runs on the pooled features
    fuse = set(block.se.modules())  # the split-attention MLP on the pooled features
    conv_flops = sum(2 * m.weight.numel() * (1 if m in fuse else 25)
                     for m in block.modules() if isinstance(m, torch.nn.Conv2d))
    by_type = measure.flops_by_module(model, 160)
    aggregation = 2 * 9 * 256 * 25  # P5 of 160 px: 256 channels on a 5x5 map, k = 3
    assert by_type["CoTBlock"] * 1e9 == pytest.approx(conv_flops + aggregation, rel=1e-9)


def test_latency_fields_are_present_and_positive(yolo11n):
    figures = measure.latency(yolo11n, 64, threads=1, runs=3, batch=2)
    assert figures["latency_ms"] > 0 and figures["throughput_ips"] > 0
    assert figures["latency_threads"] == 1 and figures["latency_device"].startswith("cpu")
    assert figures["throughput_batch"] == 2 and figures["latency_runs"] == 3


def _small_box_fixture(tmp_path):
    """Four 200x100 images, each with two 10x8 px boxes (all COCO-small)."""
    images, labels = tmp_path / "images" / "val", tmp_path / "labels" / "val"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    boxes = {}
    for i in range(4):
        Image.new("RGB", (200, 100)).save(images / f"im{i}.png")
        rows = [(0, 20 + 30 * i, 30, 10, 8), (1, 150, 60 + 5 * i, 10, 8)]
        (labels / f"im{i}.txt").write_text("".join(
            f"{c} {x / 200:.6f} {y / 100:.6f} {w / 200:.6f} {h / 100:.6f}\n" for c, x, y, w, h in rows))
        boxes[f"im{i}"] = rows
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(f"path: {tmp_path}\ntrain: images/val\nval: images/val\nnames: [a, b]\n")
    return data_yaml, boxes


def test_ap_by_size_on_all_small_boxes_marks_medium_and_large_undefined(tmp_path):
    data_yaml, boxes = _small_box_fixture(tmp_path)
    gt = coco_eval.cached_ground_truth(data_yaml, ["a", "b"], tmp_path / "cache")
    perfect = [{"image_id": stem, "category_id": c + 1, "bbox": [x - w / 2, y - h / 2, w, h], "score": 0.9}
               for stem, rows in boxes.items() for c, x, y, w, h in rows]
    stats = coco_eval.evaluate(gt, perfect)
    assert stats["ap_small"] == pytest.approx(1.0) and stats["map50_95"] == pytest.approx(1.0)
    assert stats["ap_medium"] is None and stats["ap_large"] is None
    shifted = [{**p, "bbox": [p["bbox"][0] + 4, *p["bbox"][1:]]} for p in perfect]  # IoU 6*8/(14*8) < .5
    assert coco_eval.evaluate(gt, shifted)["ap_small"] == pytest.approx(0.0)
    nothing = coco_eval.evaluate(gt, [])  # no detections: 0 where there is ground truth, undefined elsewhere
    assert nothing["ap_small"] == 0.0 and nothing["map50_95"] == 0.0
    assert nothing["ap_medium"] is None and nothing["ap_large"] is None


def test_ground_truth_json_is_cached_until_labels_change(tmp_path):
    data_yaml, _ = _small_box_fixture(tmp_path)
    first = coco_eval.cached_ground_truth(data_yaml, ["a", "b"], tmp_path / "cache")
    assert coco_eval.cached_ground_truth(data_yaml, ["a", "b"], tmp_path / "cache") == first
    label = tmp_path / "labels" / "val" / "im0.txt"
    label.write_text(label.read_text() + "0 0.5 0.5 0.5 0.5\n")
    second = coco_eval.cached_ground_truth(data_yaml, ["a", "b"], tmp_path / "cache")
    assert second != first and math.isclose(
        max(a["area"] for a in __import__("json").loads(second.read_text())["annotations"]), 100 * 50)
