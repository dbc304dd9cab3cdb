"""The attention module's own heatmap (src.ultralytics_glue.explain.effect_map) on real models: each
holds its module between layers (layer 2) and inside the C3k2's bottleneck (layer 1)."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
import torch.nn.functional as F
from conftest import small_model

from src.ultralytics_glue.explain import attention_layers, effect_map

SIZE = (32, 32)


@lru_cache(maxsize=None)
def model_with(attn: str):
    torch.manual_seed(0)
    return small_model(attn).eval()


def _upsampled(change: torch.Tensor) -> torch.Tensor:
    return F.interpolate(change.abs().mean(1, keepdim=True), size=SIZE, mode="bilinear", align_corners=False)[0, 0]


def _layer(model, index: int):
    layers = dict(attention_layers(model))
    assert sorted(layers) == [1, 2]
    return [(index, layers[index])]


@pytest.mark.parametrize("attn", ["se", "ema"])
def test_between_layers_the_map_is_what_the_module_does_to_its_input(attn):
    model, x = model_with(attn), torch.rand(1, 3, *SIZE)
    heat = effect_map(model, _layer(model, 2), x)
    with torch.no_grad():  # the module's input, computed here: layer 1's output
        feature = model.model[1](model.model[0](x))
        expected = _upsampled(model.model[2](feature) - feature)
    assert heat.shape == SIZE and torch.allclose(heat, expected, atol=1e-6)
    assert (heat > 0).all()  # SE and EMA rescale every position of a positive feature map


def test_inside_a_block_the_map_is_the_block_with_and_without_the_module():
    model, x = model_with("se"), torch.rand(1, 3, *SIZE)
    heat = effect_map(model, _layer(model, 1), x)
    block = model.model[1]
    with torch.no_grad():
        feature = model.model[0](x)
        with_module = block(feature)
        bottlenecks = [m for m in block.modules() if type(m).__name__ == "AttentionBottleneck"]
        kept = [m.attn for m in bottlenecks]
        for m in bottlenecks:  # the bottleneck's residual branch without the SE: cv2's output as is
            m.attn = torch.nn.Identity()
        expected = _upsampled(with_module - block(feature))
        for m, attn in zip(bottlenecks, kept, strict=True):
            m.attn = attn
    assert torch.allclose(heat, expected, atol=1e-6) and heat.max() > 0


def test_a_module_that_changes_nothing_gives_a_zero_map_between_layers_and_inside_blocks():
    torch.manual_seed(0)
    model, x = small_model("capacity").eval(), torch.rand(1, 3, *SIZE)
    for index in (1, 2):
        assert effect_map(model, _layer(model, index), x).abs().max() > 0  # the residual block changes x
    for block in (m for m in model.modules() if type(m).__name__ == "CapacityControl"):
        torch.nn.init.zeros_(block.bn2.weight)  # x + 0: the module is now an identity
        torch.nn.init.zeros_(block.bn2.bias)
    for index in (1, 2):
        assert effect_map(model, _layer(model, index), x).abs().max() == 0, index
