"""YAML graph rewriting: pure checks first, then builds and forwards through ultralytics."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import position_presets

from src import attention
from src.arch import architecture
from src.arch.bases import layers_of, load_base, plain_graph
from src.arch.positions import Position, PositionError, position_label, resolve_position
from src.arch.rewrite import dump_yaml, insert_attention, model_file_name
from src.ultralytics_glue.layout import base_layout

PRESETS = position_presets()  # loaded from conf/pos/, as a job gets them
BETWEEN = sorted(p for p, spec in PRESETS.items() if not spec["inside"])  # between-layer presets
# Expected `from` of every Concat and of Detect after the rewrite, by preset (index in new graph).
EXPECTED_FROMS = {
    "backbone_p5": {13: [-1, 6], 16: [-1, 4], 19: [-1, 14], 22: [-1, 11], 24: [17, 20, 23]},
    "backbone": {15: [-1, 8], 18: [-1, 5], 21: [-1, 16], 24: [-1, 13], 26: [19, 22, 25]},
    "neck": {12: [-1, 6], 15: [-1, 4], 19: [-1, 13], 23: [-1, 10], 26: [17, 21, 25]},
    "replace_c2psa": {12: [-1, 6], 15: [-1, 4], 18: [-1, 13], 21: [-1, 10], 23: [16, 19, 22]},
}


@pytest.fixture(scope="module")
def base():
    return load_base("yolo11")


def resolved(preset, scale="n"):
    return architecture.resolve("yolo11", scale, PRESETS[preset], base_layout)


def identity_rewrite(preset, scale="n"):
    arch = resolved(preset, scale)
    return insert_attention(arch.base, arch.channels, "nn.Identity", lambda c: [], arch.position)


def check(base, pos):
    return resolve_position(base, pos, base_layout(plain_graph(base), "n"))


def test_channels_match_ultralytics_build(base):
    from ultralytics.nn.tasks import DetectionModel

    for scale in ("n", "s", "x"):
        model = DetectionModel({**base, "scale": scale}, nc=3, verbose=False)
        seen = []
        for layer in model.model[:-1]:
            layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.shape[1]))
        model.eval()(torch.zeros(1, 3, 64, 64))
        assert list(base_layout(plain_graph(base), scale).channels[:-1]) == seen, scale


@pytest.mark.parametrize("preset", BETWEEN)
def test_rewrite_remaps_absolute_froms(base, preset):
    rewrite = identity_rewrite(preset)
    layers = layers_of(rewrite.model)
    after, replace = resolved(preset).position.after, resolved(preset).position.replace
    assert len(layers) == 24 + len(after)
    for index, expected in EXPECTED_FROMS[preset].items():
        assert layers[index][0] == expected, (index, layers[index])
    assert layers[-1][2] == "Detect"
    # every unchanged base layer is mapped to a layer of the same type and args
    base_layers = layers_of(base)
    for old, new in rewrite.layer_map.items():
        assert layers[new][1:] == base_layers[old][1:]
    assert set(range(24)) - set(rewrite.layer_map) == set(replace)
    assert all(layers[i][2] == "nn.Identity" for i in rewrite.inserted)


def test_inserted_channels_resolved_per_scale(base):
    for scale, expected in {
        "n": [64, 128, 256],
        "s": [128, 256, 512],
        "m": [256, 512, 512],
        "x": [384, 768, 768],
    }.items():
        channels = base_layout(plain_graph(base), scale).channels
        rewrite = insert_attention(base, channels, "EMA", lambda c: [c, 32], Position(after=[16, 19, 22]))
        layers = layers_of(rewrite.model)
        assert [layers[i][3] for i in sorted(rewrite.inserted)] == [[c, 32] for c in expected], scale
        assert sorted(rewrite.inserted.values()) == sorted(expected)


@pytest.mark.parametrize(
    "after,replace,needle",
    [
        ([99], [], "outside the model"),
        ([23], [], "Detect layer"),
        ([-1], [], "outside the model"),
        ([4, 4], [], "twice"),
        ([10], [10], "both"),
        ([], [9], None),  # SPPF: 256 -> 256 at n, allowed
        ([], [12], "inputs"),  # Concat
        ([], [1], "channels"),  # Conv 16 -> 32 at n changes channels
        (["6"], [], "not an integer"),
    ],
)
def test_invalid_positions_are_named(base, after, replace, needle):
    pos = {"after": after, "replace": replace}
    if needle is None:
        check(base, pos)
        return
    with pytest.raises(PositionError, match=needle) as info:
        check(base, pos)
    if needle in ("outside the model", "Detect layer"):
        assert "valid layer indices are 0..22" in str(info.value)


def test_dumped_yaml_round_trips_and_keeps_scale_in_name(tmp_path):
    rewrite = identity_rewrite("neck", "s")
    name = model_file_name("yolo11", "s", "ema", "neck")
    assert name == "yolo11s-ema-neck.yaml"
    path = dump_yaml(rewrite.model, tmp_path / name)
    loaded = yaml.safe_load(path.read_text())
    assert loaded["backbone"] + loaded["head"] == layers_of(rewrite.model)
    from ultralytics.nn.tasks import guess_model_scale

    assert guess_model_scale(path) == "s"


def test_custom_positions_get_a_descriptive_label():
    assert position_label({"name": "neck", "after": [16, 19, 22], "replace": []}, "neck") == "neck"
    assert position_label({"name": "neck", "after": [6, 10], "replace": []}, None) == "custom:after6-10"
    assert position_label({"name": "neck", "after": [], "replace": [10]}, None) == "custom:replace10"
    assert position_label({"name": "neck", "after": [4], "replace": [10]}, None) == "custom:after4+replace10"
    assert position_label({"after": [], "inside": [6, 8]}, None) == "custom:inside6-8"
    assert position_label({"inside": "neck", "inside_mode": "conv"}, "inside_neck") == "inside_neck:conv"
    assert position_label({"inside": "neck", "inside_mode": "branch"}, "inside_neck") == "inside_neck"
    assert position_label({"after": "neck", "inside_mode": "conv"}, "neck") == "neck"  # no inside: no mode


MODULES = [name for name in attention.available() if attention.get_class(name) is not None]
# every module at every preset at scale n; at scale s (twice the channels) every module at the neck
GRID = [(a, p, "n") for a in MODULES for p in BETWEEN] + [(a, "neck", "s") for a in MODULES]


@pytest.mark.parametrize("attn,preset,scale", GRID)
def test_real_modules_build_and_forward_64px(tmp_path, scale, preset, attn):
    from src.ultralytics_glue.model import build_model

    arch = resolved(preset, scale)
    cls = attention.get_class(attn).__name__
    rewrite = insert_attention(arch.base, arch.channels, cls, lambda c: attention.yaml_args(attn, c, {}), arch.position)
    path = dump_yaml(rewrite.model, tmp_path / model_file_name("yolo11", scale, attn, preset))
    model = build_model(path, nc=3)
    for i in rewrite.inserted:
        assert type(model.model[i]).__name__ == cls
    model.train()
    out = model(torch.zeros(1, 3, 64, 64))  # train mode, batch 1
    assert [f.shape[-1] for f in out["feats"]] == [8, 4, 2]  # P3, P4, P5 of a 64 px image
    assert out["scores"].shape == (1, 3, 8 * 8 + 4 * 4 + 2 * 2)
