"""The reference modules (se, cbam, eca, coordatt, simam) against their official code, and the capacity control."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import randomize
from test_attention import YOLO_CHANNELS
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from src import attention
from src.attention.capacity import CapacityControl, block_params, matchable
from src.attention.cbam import CBAM
from src.attention.coordatt import CoordAtt
from src.attention.eca import ECA, eca_kernel_size
from src.attention.se import SELayer
from src.attention.simam import SimAM

CHANNELS = [16, 48, 96, 256]
SIZES = [(2, 7, 5), (3, 1, 9), (1, 5, 1), (2, 2, 2)]  # (batch, h, w): odd, 1-wide, batch 1


# ---------------------------------------------------------------- the official forwards, transcribed
# Each is the official module as published (pools, class and attribute names included), so its
# state_dict is the official one. Sources: moskomule/senet.pytorch senet/se_module.py,
# Jongchan/attention-module MODELS/cbam.py, BangguWu/ECANet models/eca_module.py,
# houqb/CoordAttention coordatt.py, ZjjConan/SimAM simam_module.


class OfficialSELayer(nn.Module):
    def __init__(self, channel, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class OfficialBasicConv(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, stride=1, padding=0, relu=True, bn=True, bias=False):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class OfficialFlatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class OfficialChannelGate(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16):
        super().__init__()
        self.mlp = nn.Sequential(
            OfficialFlatten(),
            nn.Linear(gate_channels, gate_channels // reduction_ratio),
            nn.ReLU(),
            nn.Linear(gate_channels // reduction_ratio, gate_channels),
        )

    def forward(self, x):
        size = (x.size(2), x.size(3))
        att = self.mlp(F.avg_pool2d(x, size, stride=size)) + self.mlp(F.max_pool2d(x, size, stride=size))
        return x * torch.sigmoid(att).unsqueeze(2).unsqueeze(3).expand_as(x)


class OfficialSpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = OfficialBasicConv(2, 1, 7, stride=1, padding=3, relu=False)

    def forward(self, x):
        compressed = torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)
        return x * torch.sigmoid(self.spatial(compressed))


class OfficialCBAM(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16, no_spatial=False):
        super().__init__()
        self.ChannelGate = OfficialChannelGate(gate_channels, reduction_ratio)
        self.no_spatial = no_spatial
        if not no_spatial:
            self.SpatialGate = OfficialSpatialGate()

    def forward(self, x):
        x_out = self.ChannelGate(x)
        if not self.no_spatial:
            x_out = self.SpatialGate(x_out)
        return x_out


class OfficialECA(nn.Module):
    def __init__(self, channel, k_size=3):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.avg_pool(x)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y).expand_as(x)


class OfficialHSigmoid(nn.Module):
    def __init__(self, inplace=True):
        super().__init__()
        self.relu = nn.ReLU6(inplace=inplace)

    def forward(self, x):
        return self.relu(x + 3) / 6


class OfficialHSwish(nn.Module):
    def __init__(self, inplace=True):
        super().__init__()
        self.sigmoid = OfficialHSigmoid(inplace=inplace)

    def forward(self, x):
        return x * self.sigmoid(x)


class OfficialCoordAtt(nn.Module):
    def __init__(self, inp, oup, reduction=32):
        super().__init__()
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))
        mip = max(8, inp // reduction)
        self.conv1 = nn.Conv2d(inp, mip, kernel_size=1, stride=1, padding=0)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = OfficialHSwish()
        self.conv_h = nn.Conv2d(mip, oup, kernel_size=1, stride=1, padding=0)
        self.conv_w = nn.Conv2d(mip, oup, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        identity = x
        n, c, h, w = x.size()
        x_h = self.pool_h(x)
        x_w = self.pool_w(x).permute(0, 1, 3, 2)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        x_h, x_w = torch.split(y, [h, w], dim=2)
        x_w = x_w.permute(0, 1, 3, 2)
        a_h = self.conv_h(x_h).sigmoid()
        a_w = self.conv_w(x_w).sigmoid()
        return identity * a_w * a_h


class OfficialSimAM(nn.Module):
    def __init__(self, channels=None, e_lambda=1e-4):
        super().__init__()
        self.activaton = nn.Sigmoid()  # sic
        self.e_lambda = e_lambda

    def forward(self, x):
        b, c, h, w = x.size()
        n = w * h - 1
        x_minus_mu_square = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        y = x_minus_mu_square / (4 * (x_minus_mu_square.sum(dim=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5
        return x * self.activaton(y)


# (attn name, official constructor at `c` channels with the defaults ours uses)
OFFICIAL = {
    "se": lambda c: OfficialSELayer(c, 16),
    "cbam": lambda c: OfficialCBAM(c, 16),
    "eca": lambda c: OfficialECA(c, eca_kernel_size(c)),  # the adaptive k that `auto` picks
    "coordatt": lambda c: OfficialCoordAtt(c, c, 32),
    "simam": lambda c: OfficialSimAM(c, 1e-4),
}


def _pair(name: str, channels: int):
    official = randomize(OFFICIAL[name](channels), seed=channels)
    ours = attention.build(name, channels)
    ours.load_state_dict(official.state_dict())  # strict: the same keys and shapes
    return official, ours


# ---------------------------------------------------------------- equality with the official code


@pytest.mark.parametrize("name", sorted(OFFICIAL))
@pytest.mark.parametrize("channels", CHANNELS)
def test_state_dict_keys_and_shapes_are_the_official_ones(name, channels):
    official, ours = OFFICIAL[name](channels), attention.build(name, channels)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in official.state_dict().items()}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_same_output_and_gradients_as_the_official_forward(name, channels, mode):
    official, ours = _pair(name, channels)
    official.train(mode == "train"), ours.train(mode == "train")
    for b, h, w in SIZES:
        if name == "simam" and h * w == 1:
            continue  # the official energy is 0/0 there (see test_simam_on_a_1x1_map)
        x1 = torch.randn(b, channels, h, w, generator=torch.Generator().manual_seed(b * h * w)) * 2
        x2 = x1.clone().requires_grad_(True)
        x1.requires_grad_(True)
        y_official, y_ours = official(x1), ours(x2)
        torch.testing.assert_close(y_ours, y_official, atol=1e-5, rtol=1e-4)
        y_official.square().sum().backward()
        y_ours.square().sum().backward()
        torch.testing.assert_close(x2.grad, x1.grad, atol=1e-4, rtol=1e-4)
    for key, value in official.state_dict().items():  # BN statistics updated alike in train mode
        torch.testing.assert_close(ours.state_dict()[key], value, atol=1e-5, rtol=1e-5, msg=key)


def test_ours_have_no_adaptive_pools():
    for name in OFFICIAL:
        module = attention.build(name, 64)
        assert not any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) for m in module.modules()), name


def test_cbam_channel_gate_only_and_it_is_not_ultralytics_cbam():
    official = randomize(OfficialCBAM(32, 16, no_spatial=True))
    ours = CBAM(32, 16, no_spatial=True)
    ours.load_state_dict(official.state_dict())
    x = torch.randn(2, 32, 5, 3)
    torch.testing.assert_close(ours(x), official(x))
    assert set(CBAM(32).state_dict()) == {
        "ChannelGate.mlp.1.weight",
        "ChannelGate.mlp.1.bias",
        "ChannelGate.mlp.3.weight",
        "ChannelGate.mlp.3.bias",
        "SpatialGate.spatial.conv.weight",
        "SpatialGate.spatial.bn.weight",
        "SpatialGate.spatial.bn.bias",
        "SpatialGate.spatial.bn.running_mean",
        "SpatialGate.spatial.bn.running_var",
        "SpatialGate.spatial.bn.num_batches_tracked",
    }
    assert CBAM(32).SpatialGate.spatial.bn.momentum == 0.01
    from ultralytics.nn.modules import CBAM as UltralyticsCBAM

    assert set(UltralyticsCBAM(32).state_dict()).isdisjoint(CBAM(32).state_dict())


# ---------------------------------------------------------------- what the official code cannot do


@pytest.mark.parametrize("name,cls,knob", [("se", SELayer, "reduction"), ("cbam", CBAM, "reduction_ratio")])
def test_hidden_size_is_at_least_one_and_logged(caplog, name, cls, knob):
    with caplog.at_level(logging.INFO, logger=f"src.attention.{name}"):
        module = cls(8, **{knob: 16})
        cls(16, **{knob: 16})  # 16 // 16 = 1: the official size, nothing to log
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears][0] == 1
    assert len(caplog.records) == 1 and "8 channels / reduction 16 < 1" in caplog.text
    x = torch.randn(1, 8, 1, 1)
    assert module.train()(x).shape == x.shape


def test_simam_on_a_1x1_map():
    """Official: 0/0 = NaN. Ours: n is at least 1, so the gate is sigmoid(1/2)."""
    x = torch.randn(2, 8, 1, 1)
    assert torch.isnan(OfficialSimAM()(x)).all()
    torch.testing.assert_close(SimAM(8)(x), x * torch.sigmoid(torch.tensor(0.5)))


def test_simam_in_float16_where_the_official_energy_overflows():
    x = torch.randn(1, 4, 16, 16) * 50
    x[..., 0, 0] = 300.0  # (300 - mean)^2 ~ 9e4 > 65504, float16's largest value
    reference = SimAM(4)(x)
    assert not torch.isfinite(OfficialSimAM()(x.half())).all()
    ours = SimAM(4)(x.half())
    assert ours.dtype == torch.float16 and torch.isfinite(ours).all()
    torch.testing.assert_close(ours.float(), reference, atol=0.5, rtol=2e-3)


@pytest.mark.parametrize("channels", [1, 16, 31, 64, 127, 128, 255, 256, 1024, 1536, 2047, 2048, 4096])
def test_eca_adaptive_kernel_is_the_papers_rule(channels):
    t = int(abs((math.log(channels, 2) + 1) / 2))  # gamma = 2, b = 1
    assert eca_kernel_size(channels) == (t if t % 2 else t + 1) == ECA(channels).conv.kernel_size[0]
    assert ECA(channels).conv.padding[0] == (eca_kernel_size(channels) - 1) // 2


def test_eca_fixed_kernel_and_bad_values():
    assert ECA(64, k_size=7).conv.kernel_size == (7,)
    for bad in (4, 0, -3, "big", True, 2.5):
        with pytest.raises(ValueError, match="k_size"):
            ECA(64, k_size=bad)
    with pytest.raises(ValueError, match="k_size"):  # before any model is built
        attention.yaml_args("eca", 64, {"k_size": 4})


def test_coordatt_hidden_size_is_the_official_rule():
    assert [CoordAtt(c).conv1.out_channels for c in (16, 256, 512, 1024)] == [8, 8, 16, 32]
    assert CoordAtt(1024, reduction=16).conv1.out_channels == 64


# ---------------------------------------------------------------- capacity control


class _Ops(TorchDispatchMode):
    """Records the aten ops a forward runs."""

    def __init__(self):
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("match", matchable())
def test_capacity_matches_each_modules_params_within_5_percent_or_the_closest(caplog, match):
    for channels in YOLO_CHANNELS:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="src.attention.capacity"):
            control = CapacityControl(channels, match=match)
        own = sum(p.numel() for p in control.parameters())
        target = sum(p.numel() for p in attention.build(match, channels).parameters())
        assert (control.n_params, control.matched_params, control.matched_module) == (own, target, match)
        best = min(abs(block_params(channels, w) - target) for w in range(1, control.width + 3))
        assert abs(own - target) == best  # no width does better
        if abs(own - target) > 0.05 * max(target, 1):
            assert "closest block" in caplog.text, (match, channels)
        else:
            assert "closest block" not in caplog.text


def test_capacity_matched_to_cot_is_within_5_percent_at_every_yolo_channel_count():
    for channels in YOLO_CHANNELS:
        control = CapacityControl(channels)  # default: match=cot
        assert control.matched_module == "cot"
        assert abs(control.n_params - control.matched_params) <= 0.05 * control.matched_params, channels


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_capacity_has_no_gating_at_all(mode):
    control = randomize(CapacityControl(32)).train(mode == "train")
    assert not any(
        isinstance(m, (nn.Sigmoid, nn.Softmax, nn.SiLU, nn.Hardsigmoid, nn.Hardswish, nn.Tanh))
        for m in control.modules()
    )
    with _Ops() as recorder:
        control(torch.randn(2, 32, 5, 5))
    gating = {"sigmoid", "softmax", "_softmax", "hardsigmoid", "silu", "tanh", "mul", "div", "hardswish"}
    assert not recorder.ops & gating, recorder.ops  # only convs, BN, ReLU and the residual add
    assert "convolution" in recorder.ops and "add" in recorder.ops


@pytest.mark.parametrize("bad", ["none", "capacity", "emma"])
def test_capacity_rejects_what_it_cannot_match_and_lists_the_choices(bad):
    choices = ", ".join(n for n in attention.available() if n not in ("none", "capacity"))
    with pytest.raises(ValueError, match=rf"match={bad!r}.*valid choices: {choices}$"):
        CapacityControl(16, match=bad)
    with pytest.raises(ValueError, match=rf"match={bad!r}"):  # before any model is built (config checks)
        attention.yaml_args("capacity", 16, {"match": bad})


def test_capacity_report_lists_each_control_and_none_without():
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3), CapacityControl(16, match="cbam"), nn.Conv2d(16, 32, 1), nn.Sequential(CapacityControl(32))
    )
    report = attention.capacity_report(model)
    assert report == [
        {
            "channels": 16,
            "params": model[1].n_params,
            "matched_module": "cbam",
            "matched_params": sum(p.numel() for p in CBAM(16).parameters()),
        },
        {
            "channels": 32,
            "params": model[3][0].n_params,
            "matched_module": "cot",
            "matched_params": sum(p.numel() for p in attention.build("cot", 32).parameters()),
        },
    ]
    assert attention.capacity_report(nn.Sequential(nn.Conv2d(3, 16, 3), attention.build("ema", 16))) is None
