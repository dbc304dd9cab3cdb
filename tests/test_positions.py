"""Positions by role on every base (YOLO11, YOLO26, YOLOv8, YOLO12), and attention inside blocks:
resolution, counts, both modes, forward/backward, weight transfer and the errors."""

from __future__ import annotations

import pytest
import torch
from conftest import compose, group_options, position_presets

from src import attention
from src.arch import architecture
from src.arch.bases import SCALES, layers_of, load_base, plain_graph
from src.arch.positions import PositionError
from src.arch.rewrite import insert_attention
from src.config.checks import ConfigError, check_config
from src.job.measurements import exact_gflops, params
from src.ultralytics_glue.inside import AttentionBottleneck, bottlenecks
from src.ultralytics_glue.layout import base_layout
from src.ultralytics_glue.model import build_model

PRESETS = position_presets()
BASES = sorted({compose(f"model={m}").model.base for m in group_options("model")})

# Read off each base YAML by hand (cfg/models/{11,26,v8,12}/*.yaml), role by role.
BY_ROLE = {
    #          feeds Detect    head reads + last backbone   last    C2PSA   blocks: neck / backbone
    "yolo11": ([16, 19, 22], [4, 6, 10], [10], [10], [16, 19, 22], [2, 4, 6, 8]),
    "yolo26": ([16, 19, 22], [4, 6, 10], [10], [10], [16, 19, 22], [2, 4, 6, 8]),
    "yolov8": ([15, 18, 21], [4, 6, 9], [9], None, [15, 18, 21], [2, 4, 6, 8]),
    "yolo12": ([14, 17, 20], [4, 6, 8], [8], None, [14, 17, 20], [2, 4]),  # A2C2f(a2) holds no bottleneck
}
PRESET_FIELD = {
    "neck": ("after", 0),
    "backbone": ("after", 1),
    "backbone_p5": ("after", 2),
    "replace_c2psa": ("replace", 3),
    "inside_neck": ("inside", 4),
    "inside_backbone": ("inside", 5),
}


def test_every_base_has_all_five_scales_as_model_presets():
    assert BASES == sorted(BY_ROLE)
    for base in BASES:
        assert {f"{base}{s}" for s in SCALES} <= set(group_options("model"))


@pytest.mark.parametrize("scale", ["n", "s"])
@pytest.mark.parametrize("base_name", sorted(BY_ROLE))
@pytest.mark.parametrize("preset", sorted(PRESET_FIELD))
def test_every_preset_resolves_to_its_role_on_every_base(preset, base_name, scale):
    kind, column = PRESET_FIELD[preset]
    expected = BY_ROLE[base_name][column]
    if expected is None:
        with pytest.raises(
            PositionError,
            match=rf"{base_name} has no C2PSA layer; bases that have one: "
            r"yolo11, yolo26",
        ):
            architecture.resolve(base_name, scale, PRESETS[preset], base_layout)
        return
    pos = architecture.resolve(base_name, scale, PRESETS[preset], base_layout).position
    assert getattr(pos, kind) == expected
    assert [getattr(pos, k) for k in ("after", "replace", "inside") if k != kind] == [[], []]
    if preset == "neck":  # the role is what the YAML's Detect layer reads
        assert expected == layers_of(load_base(base_name))[-1][0]


def build_inside(base_name: str, scale: str, mode: str, attn: str = "ema", where: str = "neck"):
    arch = architecture.resolve(base_name, scale, {"inside": where, "inside_mode": mode}, base_layout)
    cls = attention.get_class(attn).__name__
    rewrite = insert_attention(
        arch.base,
        arch.channels,
        cls,
        lambda c: attention.yaml_args(attn, c, {}),
        arch.position,
        inside_spec={"module": attn, "params": {}, "mode": mode},
    )
    plain = build_model({**plain_graph(arch.base), "scale": scale}, nc=3)
    return rewrite, build_model({**rewrite.model, "scale": scale}, nc=3), plain, arch.position


def total(out) -> torch.Tensor:
    if torch.is_tensor(out):
        return out.float().sum()
    values = out.values() if isinstance(out, dict) else out
    return sum(total(v) for v in values if torch.is_tensor(v) or isinstance(v, (dict, list, tuple)))


@pytest.mark.parametrize("mode", ["branch", "conv"])
@pytest.mark.parametrize("scale", ["n", "m"])
@pytest.mark.parametrize("base_name", ["yolo11", "yolo26"])
def test_inside_neck_puts_one_module_in_each_bottleneck_and_trains(base_name, scale, mode):
    rewrite, model, plain, pos = build_inside(base_name, scale, mode)
    expected = sum(len(bottlenecks(plain.model[i])) for i in pos.inside)  # counted in the plain model
    wrapped = [m for m in model.modules() if isinstance(m, AttentionBottleneck)]
    assert expected > 0 and len(wrapped) == expected
    assert all(type(w.attn).__name__ == "EMA" and w.mode == mode for w in wrapped)
    assert rewrite.model["inside"] == {"layers": pos.inside, "module": "ema", "params": {}, "mode": mode}
    originals = [b for i in pos.inside for _, _, b in bottlenecks(plain.model[i])]
    for w, b in zip(wrapped, originals, strict=False):  # a projection exactly where the replaced conv changed channels
        assert hasattr(w, "proj") == (mode == "conv" and b.cv1.conv.out_channels != b.cv2.conv.out_channels)
    model.train()
    total(model(torch.zeros(1, 3, 64, 64))).backward()  # train mode, batch 1
    assert all(p.grad is not None for w in wrapped for p in w.attn.parameters())


def test_branch_mode_output_is_the_residual_branch_through_the_module():
    _, model, _, _ = build_inside("yolo11", "n", "branch")
    block = next(m for m in model.modules() if isinstance(m, AttentionBottleneck))
    x = torch.randn(2, block.cv1.conv.in_channels, 8, 8)
    block.eval()
    with torch.no_grad():
        expected = x + block.attn(block.cv2(block.cv1(x))) if block.add else block.attn(block.cv2(block.cv1(x)))
        assert torch.allclose(block(x), expected)


@pytest.mark.parametrize("where", ["neck", "backbone"])
@pytest.mark.parametrize("base_name", ["yolov8", "yolo12"])
def test_inside_blocks_on_c2f_and_a2c2f_bases(base_name, where):
    rewrite, model, plain, pos = build_inside(base_name, "n", "branch", where=where)
    expected = sum(len(bottlenecks(plain.model[i])) for i in pos.inside)
    assert sum(isinstance(m, AttentionBottleneck) for m in model.modules()) == expected > 0
    model.train()
    total(model(torch.zeros(1, 3, 64, 64))).backward()


def test_inside_and_between_layer_counters_see_the_inner_modules():
    _, model, plain, _ = build_inside("yolo11", "n", "branch", attn="cot")
    inner = sum(p.numel() for m in model.modules() if isinstance(m, AttentionBottleneck) for p in m.attn.parameters())
    assert params(model)["params"] - params(plain)["params"] == inner > 0
    assert exact_gflops(model, 64) > exact_gflops(plain, 64)
    from src.ultralytics_glue.model import ultralytics_gflops

    assert ultralytics_gflops(model) > ultralytics_gflops(plain)


@pytest.mark.parametrize("mode", ["branch", "conv"])
def test_a_plain_base_checkpoint_transfers_into_an_inside_model(tmp_path, mode):
    """Every base tensor lands in branch mode; in conv mode only the replaced convs do not."""
    from src.ultralytics_glue.trainer import transfer_weights

    rewrite, model, plain, _ = build_inside("yolo11", "n", mode)
    ckpt = tmp_path / "base.pt"
    torch.save({"model": plain}, ckpt)
    done, total_ = transfer_weights(model, ckpt, rewrite.layer_map)
    if mode == "branch":
        assert done == total_
    else:
        cv2_tensors = sum(len(b.cv2.state_dict()) for i in rewrite.inside for _, _, b in bottlenecks(plain.model[i]))
        assert done == total_ - cv2_tensors and cv2_tensors > 0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["attn=ema", "pos.inside=[12]", "pos.after=[]"],
            r"pos.inside index 12 \(Concat\) is not a block with bottlenecks; "
            r"blocks with bottlenecks in yolo11: 2, 4, 6, 8, 13, 16, 19, 22",
        ),
        (
            ["attn=ema", "pos=replace_c2psa", "model=yolov8n"],
            r"yolov8 has no C2PSA layer; bases that have one: yolo11, yolo26",
        ),
        (
            ["attn=ema", "pos=inside_neck", "pos.inside_mode=sideways"],
            r"pos.inside_mode='sideways'; valid choices: branch, conv",
        ),
        (
            ["attn=ema", "pos.after=tail"],
            r"pos.after='tail' is not a role; valid roles for pos.after: neck, backbone, "
            r"backbone_p5",
        ),
        (
            ["attn=ema", "pos=neck", "model=yolo12n", "pos.after=[22]"],
            r"index 22 is outside the model; valid layer "
            r"indices are 0..20",
        ),
        (["attn=ema", "model.base=yolo99"], r"unknown model.base 'yolo99'; valid choices: .*yolo11.*yolov8"),
    ],
)
def test_position_errors_name_the_valid_choices_before_any_work(overrides, message):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(*overrides), resolve=True)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
