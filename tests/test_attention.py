"""Attention modules: registry, shapes, gradients, tiny maps, copies, export, and equality with the seeds."""
from __future__ import annotations

import copy
import io
import logging
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src import attention
from src.attention import EMA, BatchNorm2d, CoTAttention, CoTBlock
from src.attention.cot import local_aggregate
from src.bench.seed_reference import SeedCoTAttention, SeedEMA  # the seeds, as written there

MODULES = [name for name in attention.available() if name != "none"]  # every registered module
SHAPES = [(16, 7, 5), (64, 2, 2), (256, 1, 1), (48, 9, 9), (6, 3, 1)]


# ---------------------------------------------------------------- references: the seeds as written


def _randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights and BN statistics (GroupNorm bias included), so equality checks mean something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module


# ---------------------------------------------------------------- every registered module


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_shape_and_gradients_batch1_train_mode(name, shape):
    torch.manual_seed(0)
    module = attention.build(name, shape[0]).train()
    x = torch.randn(1, *shape, requires_grad=True)
    y = module(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", MODULES)
def test_deepcopy_and_pickle_round_trip(name):
    module = _randomize(attention.build(name, 32)).eval()
    cls = type(module)
    assert cls.__module__ == f"src.attention.{cls.__module__.rsplit('.', 1)[-1]}"  # importable where defined
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        reference = module(x)
        for clone in (copy.deepcopy(module), pickle.loads(pickle.dumps(module))):
            assert type(clone) is cls
            assert torch.equal(clone.eval()(x), reference)


@pytest.mark.parametrize("name", MODULES)
def test_onnx_export_matches_torch(name):
    ort = pytest.importorskip("onnxruntime")
    module = _randomize(attention.build(name, 32)).eval()
    x = torch.randn(1, 32, 7, 5)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), f, dynamo=False, opset_version=17, input_names=["x"])  # as ultralytics does
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), module(x), atol=1e-4)


# ---------------------------------------------------------------- registry


def test_registry_names_and_none():
    assert attention.available() == ["cot", "cot_lite", "ema", "none"]
    assert attention.get_class("none") is None
    assert isinstance(attention.build("none", 16), nn.Identity)
    assert attention.get_class("ema") is EMA and attention.get_class("cot_lite") is CoTAttention
    assert attention.get_class("cot") is CoTBlock


def test_registry_errors_name_the_bad_value_and_the_choices():
    with pytest.raises(ValueError, match=r"'emma'.*cot, cot_lite, ema, none"):
        attention.build("emma", 16)
    with pytest.raises(ValueError, match=r"'emma'.*cot, cot_lite, ema, none"):
        attention.yaml_args("emma", 16, {})
    with pytest.raises(ValueError, match=r"'groups'.*'ema'.*valid parameters: factor$"):
        attention.build("ema", 16, groups=4)
    with pytest.raises(ValueError, match=r"'kernel'.*valid parameters: kernel_size, share_planes"):
        attention.yaml_args("cot", 16, {"kernel": 5})
    with pytest.raises(ValueError, match=r"'factor'.*'none'"):
        attention.build("none", 16, factor=4)
    with pytest.raises(ValueError, match="registered twice"):
        attention.register("ema")(CoTAttention)


def test_yaml_args_are_positional_in_signature_order(monkeypatch):
    assert attention.yaml_args("ema", 64, {}) == [64, 32]
    assert attention.yaml_args("ema", 64, {"factor": 8}) == [64, 8]
    assert attention.yaml_args("cot_lite", 64, None) == [64, 3]
    assert attention.yaml_args("cot", 64, {"kernel_size": 5}) == [64, 5, 8]

    class Dummy(nn.Module):  # signature order, not alphabetical nor the order given
        def __init__(self, channels, zeta=2, alpha=1):
            super().__init__()
            self.args = (channels, zeta, alpha)

    monkeypatch.setitem(attention._REGISTRY, "dummy", Dummy)
    assert attention.yaml_args("dummy", 8, {"alpha": 5, "zeta": 7}) == [8, 7, 5]
    assert attention.yaml_args("dummy", 8, {"alpha": 5}) == [8, 2, 5]
    for name in MODULES:  # ultralytics calls Module(*args): same module as the keyword build
        args = attention.yaml_args(name, 16, {})
        assert attention.get_class(name)(*args).state_dict().keys() == attention.build(name, 16).state_dict().keys()


# ---------------------------------------------------------------- ema


def test_ema_loads_a_seed_state_dict_and_matches_its_output():
    seed = _randomize(SeedEMA(64, factor=8)).eval()
    ours = EMA(64, factor=8).eval()
    ours.load_state_dict(seed.state_dict())  # strict: same names, same shapes
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in ours.modules())
    x = torch.randn(2, 64, 11, 7)
    with torch.no_grad():
        assert torch.allclose(ours(x), seed(x), atol=1e-5)
        seed.train(), ours.train()  # GroupNorm only: train mode gives the same too
        assert torch.allclose(ours(x), seed(x), atol=1e-5)
        assert torch.allclose(ours(x[:1, :, :1, :1]), seed(x[:1, :, :1, :1]), atol=1e-5)  # 1x1 map


def test_ema_backward_matches_the_seed():
    """Input and parameter gradients too, although the GroupNorm-mean branch is computed from gn.bias."""
    seed = _randomize(SeedEMA(32, factor=4))
    ours = EMA(32, factor=4)
    ours.load_state_dict(seed.state_dict())
    x1 = torch.randn(2, 32, 5, 9, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    seed(x1).square().sum().backward()
    ours(x2).square().sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-4)
    seed_grads = dict(seed.named_parameters())
    for pname, p in ours.named_parameters():
        assert torch.allclose(p.grad, seed_grads[pname].grad, atol=1e-4, rtol=1e-4), pname


@pytest.mark.parametrize("channels,factor,groups", [(48, 32, 24), (16, 32, 8), (6, 32, 3), (64, 32, 32), (32, 32, 32)])
def test_ema_group_fallback_is_deterministic_and_logged(caplog, channels, factor, groups):
    with caplog.at_level(logging.INFO, logger="src.attention.ema"):
        module = EMA(channels, factor=factor)
        again = EMA(channels, factor=factor)
    assert module.groups == again.groups == groups
    records = [r.getMessage() for r in caplog.records if r.name == "src.attention.ema"]
    if groups == factor:  # the seed's own setting: kept, nothing logged
        assert records == []
    else:
        assert records == [records[0]] * 2  # once per construction
        assert f"{channels} channels" in records[0] and f"factor={factor}" in records[0]
        assert f"using {groups} groups" in records[0]
        assert channels // groups >= 2
    x = torch.randn(1, channels, 4, 3)
    assert module.train()(x).shape == x.shape


def test_ema_rejects_nonsense_factor():
    with pytest.raises(ValueError, match="factor=0"):
        EMA(16, factor=0)


# ---------------------------------------------------------------- cot_lite


def test_cot_lite_has_the_seed_init_and_matches_its_forward():
    seed = _randomize(SeedCoTAttention(32, 3)).eval()
    ours = CoTAttention(32, 3).eval()
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in seed.named_parameters()]
    assert ours.key_embed[0].groups == 4
    ours.load_state_dict(seed.state_dict())
    x = torch.randn(2, 32, 6, 7)
    with torch.no_grad():
        assert torch.allclose(ours(x), seed(x), atol=1e-5)
        assert torch.allclose(ours.train()(x), seed.train()(x), atol=1e-5)  # batch statistics


def test_cot_lite_falls_back_to_gcd_key_groups_and_logs(caplog):
    with caplog.at_level(logging.INFO, logger="src.attention.cot_lite"):
        module = CoTAttention(18)
    assert module.key_embed[0].groups == 2
    assert "18 channels" in caplog.text and "groups=2" in caplog.text


# ---------------------------------------------------------------- BatchNorm on a single value per channel


def test_batchnorm_uses_running_stats_for_one_value_per_channel_and_is_plain_bn_otherwise():
    ours, plain = _randomize(BatchNorm2d(8)), _randomize(nn.BatchNorm2d(8))
    assert ours.state_dict().keys() == plain.state_dict().keys()
    single = torch.randn(1, 8, 1, 1)
    running = ours.running_mean.clone()
    out = ours.train()(single)
    assert torch.allclose(out, plain.eval()(single))
    assert torch.equal(ours.running_mean, running)  # one value says nothing about the statistics
    x = torch.randn(2, 8, 3, 3)
    assert torch.allclose(ours.train()(x), plain.train()(x))
    assert torch.allclose(ours.running_mean, plain.running_mean)


# ---------------------------------------------------------------- cot


def _naive_aggregate(values, weights, k):
    b, c, h, w = values.shape
    maps, r = weights.shape[1], k // 2
    padded = F.pad(values, (r, r, r, r))
    out = torch.zeros_like(values)
    for n in range(b):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    for j in range(k * k):
                        dy, dx = divmod(j, k)
                        out[n, ch, y, x] += weights[n, ch % maps, j, y, x] * padded[n, ch, y + dy, x + dx]
    return out


@pytest.mark.parametrize("k,h,w", [(3, 4, 3), (5, 2, 3), (3, 1, 1)])
def test_local_aggregate_matches_a_naive_loop(k, h, w):
    torch.manual_seed(0)
    values, weights = torch.randn(2, 6, h, w), torch.randn(2, 3, k * k, h, w)  # 3 maps, channel i uses i % 3
    assert torch.allclose(local_aggregate(values, weights, k), _naive_aggregate(values, weights, k), atol=1e-5)


def test_cot_aggregation_is_local():
    """With the per-pixel weights fixed, a value reaches only its k x k neighbourhood.
    (The block as a whole is not local: GroupNorm over the map and the fusion's global pool.)"""
    torch.manual_seed(0)
    block = CoTBlock(16).eval()
    x = torch.randn(1, 16, 9, 9)
    y = x.clone()
    y[0, :, 8, 8] += 5.0
    with torch.no_grad():
        weights = block.embed(torch.cat([x, block.key_embed(x)], 1)).view(1, block.maps, -1, 9, 9)
        before = local_aggregate(block.value_embed(x), weights, 3)
        after = local_aggregate(block.value_embed(y), weights, 3)
    changed = (before - after).abs().sum(dim=(0, 1)) > 0
    assert changed[7:, 7:].all() and changed.sum() == 4  # exactly the 2x2 corner within reach


def test_cot_group_fallbacks_and_param_count(caplog):
    with caplog.at_level(logging.INFO, logger="src.attention.cot"):
        odd = CoTBlock(12)
    assert odd.key_embed[0].groups == 4 and odd.maps == 3  # gcd(12, 8) = 4 channels per weight map
    assert "share_planes=8" in caplog.text
    default = CoTBlock(64)
    assert default.maps == 8 and default.embed[-1].num_groups == 8 and default.embed[-2].out_channels == 9 * 8
    with pytest.raises(ValueError, match="odd kernel_size"):
        CoTBlock(16, kernel_size=4)
