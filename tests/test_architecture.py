"""YAML graph rewriting: pure checks first, then builds and forwards through ultralytics."""
from __future__ import annotations

import pytest
import torch
import yaml

from src import architecture as arch
from src import attention
from src.job import position_label

PRESETS = {
    "backbone_p5": ([10], []),
    "backbone": ([4, 6, 10], []),
    "neck": ([16, 19, 22], []),
    "replace_c2psa": ([], [10]),
}
# Expected `from` of every Concat and of Detect after the rewrite, by preset (index in new graph).
EXPECTED_FROMS = {
    "backbone_p5": {13: [-1, 6], 16: [-1, 4], 19: [-1, 14], 22: [-1, 11], 24: [17, 20, 23]},
    "backbone": {15: [-1, 8], 18: [-1, 5], 21: [-1, 16], 24: [-1, 13], 26: [19, 22, 25]},
    "neck": {12: [-1, 6], 15: [-1, 4], 19: [-1, 13], 23: [-1, 10], 26: [17, 21, 25]},
    "replace_c2psa": {12: [-1, 6], 15: [-1, 4], 18: [-1, 13], 21: [-1, 10], 23: [16, 19, 22]},
}


@pytest.fixture(scope="module")
def base():
    return arch.load_base("yolo11")


def identity_rewrite(base, preset, scale="n"):
    after, replace = PRESETS[preset]
    return arch.insert_attention(base, scale, "nn.Identity", lambda c: [], after=after, replace=replace)


def test_channels_match_ultralytics_build(base):
    from ultralytics.nn.tasks import DetectionModel

    for scale in ("n", "s", "x"):
        model = DetectionModel({**base, "scale": scale}, nc=3, verbose=False)
        seen = []
        for layer in model.model[:-1]:
            layer.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
        model.eval()(torch.zeros(1, 3, 64, 64))
        assert arch.layer_channels(base, scale)[:-1] == seen, scale


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_rewrite_remaps_absolute_froms(base, preset):
    rewrite = identity_rewrite(base, preset)
    layers = arch.layers_of(rewrite.model)
    after, replace = PRESETS[preset]
    assert len(layers) == 24 + len(after)
    for index, expected in EXPECTED_FROMS[preset].items():
        assert layers[index][0] == expected, (index, layers[index])
    assert layers[-1][2] == "Detect"
    # every unchanged base layer is mapped to a layer of the same type and args
    base_layers = arch.layers_of(base)
    for old, new in rewrite.layer_map.items():
        assert layers[new][1:] == base_layers[old][1:]
    assert set(range(24)) - set(rewrite.layer_map) == set(replace)
    assert all(layers[i][2] == "nn.Identity" for i in rewrite.inserted)


def test_inserted_channels_resolved_per_scale(base):
    for scale, expected in {"n": [64, 128, 256], "s": [128, 256, 512], "m": [256, 512, 512],
                            "x": [384, 768, 768]}.items():
        rewrite = arch.insert_attention(base, scale, "EMA", lambda c: [c, 32], after=[16, 19, 22])
        layers = arch.layers_of(rewrite.model)
        assert [layers[i][3] for i in sorted(rewrite.inserted)] == [[c, 32] for c in expected], scale
        assert sorted(rewrite.inserted.values()) == sorted(expected)


@pytest.mark.parametrize("after,replace,needle", [
    ([99], [], "outside the model"),
    ([23], [], "Detect layer"),
    ([-1], [], "outside the model"),
    ([4, 4], [], "twice"),
    ([10], [10], "both"),
    ([], [9], None),  # SPPF: 256 -> 256 at n, allowed
    ([], [12], "inputs"),  # Concat
    ([], [1], "channels"),  # Conv 16 -> 32 at n changes channels
    (["6"], [], "not an integer"),
])
def test_invalid_positions_are_named(base, after, replace, needle):
    if needle is None:
        arch.validate_position(base, after, replace, "n")
        return
    with pytest.raises(arch.PositionError, match=needle) as info:
        arch.validate_position(base, after, replace, "n")
    if needle in ("outside the model", "Detect layer"):
        assert "valid layer indices are 0..22" in str(info.value)


def test_dumped_yaml_round_trips_and_keeps_scale_in_name(base, tmp_path):
    rewrite = identity_rewrite(base, "neck", "s")
    name = arch.model_file_name("yolo11", "s", "ema", "neck")
    assert name == "yolo11s-ema-neck.yaml"
    path = arch.dump_yaml(rewrite.model, tmp_path / name)
    loaded = yaml.safe_load(path.read_text())
    assert loaded["backbone"] + loaded["head"] == arch.layers_of(rewrite.model)
    from ultralytics.nn.tasks import guess_model_scale

    assert guess_model_scale(path) == "s"


def test_custom_positions_get_a_descriptive_label():
    assert position_label({"name": "neck", "after": [16, 19, 22], "replace": []}) == "neck"
    assert position_label({"name": "neck", "after": [6, 10], "replace": []}) == "custom:after6-10"
    assert position_label({"name": "neck", "after": [], "replace": [10]}) == "custom:replace10"


@pytest.mark.parametrize("scale", ["n", "s"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("attn", ["ema", "cot", "cot_lite"])
def test_real_modules_build_and_forward_64px(base, tmp_path, scale, preset, attn):
    from src import ultralytics_glue

    after, replace = PRESETS[preset]
    cls = attention.get_class(attn).__name__
    rewrite = arch.insert_attention(base, scale, cls, lambda c: attention.yaml_args(attn, c, {}),
                                    after=after, replace=replace)
    path = arch.dump_yaml(rewrite.model, tmp_path / arch.model_file_name("yolo11", scale, attn, preset))
    model = ultralytics_glue.build_model(path, nc=3)
    for i, channels in rewrite.inserted.items():
        assert type(model.model[i]).__name__ == cls
    model.train()
    out = model(torch.zeros(1, 3, 64, 64))  # train mode, batch 1
    assert [f.shape[-1] for f in out["feats"]] == [8, 4, 2]  # P3, P4, P5 of a 64 px image
    assert out["scores"].shape == (1, 3, 8 * 8 + 4 * 4 + 2 * 2)
