"""The attention module's own heatmap (src.ultralytics_glue.explain.effect_map) on real models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import small_model

from src.ultralytics_glue.explain import attention_layers, effect_map


def _upsampled(change: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(change.abs().mean(1, keepdim=True), size=size, mode="bilinear", align_corners=False)[0, 0]


@pytest.mark.parametrize("attn", ["se", "ema"])
def test_between_layers_the_map_is_what_the_module_does_to_its_input(attn):
    torch.manual_seed(0)
    model = small_model(attn, inside=False).eval()
    x = torch.rand(1, 3, 32, 32)
    layers = attention_layers(model)
    assert [i for i, _ in layers] == [2]
    heat = effect_map(model, layers, x)
    with torch.no_grad():  # the module's input, computed here: layer 1's output
        feature = model.model[1](model.model[0](x))
        expected = _upsampled(model.model[2](feature) - feature, (32, 32))
    assert heat.shape == (32, 32) and torch.allclose(heat, expected, atol=1e-6)
    assert (heat > 0).all()  # SE and EMA rescale every position of a positive feature map


def test_a_module_that_changes_nothing_gives_a_zero_map_between_layers_and_inside_blocks():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    for between, inside in ((True, False), (False, True)):
        model = small_model("capacity", between=between, inside=inside).eval()
        layers = attention_layers(model)
        assert [i for i, _ in layers] == ([2] if between else [1])
        before = effect_map(model, layers, x)
        assert before.abs().max() > 1e-4, (between, inside)  # the residual conv block changes its input
        for block in (m for m in model.modules() if type(m).__name__ == "CapacityControl"):
            torch.nn.init.zeros_(block.bn2.weight)  # x + 0: the module is now an identity
            torch.nn.init.zeros_(block.bn2.bias)
        assert effect_map(model, layers, x).abs().max() == 0, (between, inside)


def test_inside_a_block_the_map_is_the_block_with_and_without_the_module():
    torch.manual_seed(0)
    model = small_model("se", between=False).eval()
    x = torch.rand(1, 3, 32, 32)
    heat = effect_map(model, attention_layers(model), x)
    block = model.model[1]
    with torch.no_grad():
        feature = model.model[0](x)
        with_module = block(feature)
        for m in block.modules():  # the bottleneck's residual branch without the SE: cv2's output as is
            if type(m).__name__ == "AttentionBottleneck":
                m.attn = torch.nn.Identity()
        expected = _upsampled(with_module - block(feature), (32, 32))
    assert torch.allclose(heat, expected, atol=1e-6) and heat.max() > 0
