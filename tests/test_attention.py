"""Attention modules: registry, shapes, gradients, tiny maps, copies, export, precision, torch.compile,
modules from ATTENTION_MODULE_PATH, and equality with the seeds."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import io
import json
import logging
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import ROOT, randomize, run_cli
from torch import nn

from src import attention
from src.attention import BatchNorm2d
from src.attention.cot import CoTBlock, local_aggregate
from src.attention.cot_lite import CoTAttention
from src.attention.ema import EMA
from src.bench.seed_reference import SeedCoTAttention, SeedEMA  # the seeds, as written there

MODULES = [name for name in attention.available() if name != "none"]  # every registered module
SHAPES = [(16, 7, 5), (64, 2, 2), (256, 1, 1), (48, 9, 9), (6, 3, 1)]
CONF_ATTN = ROOT / "conf" / "attn"
# Every channel count a layer of YOLO11 or YOLO26 outputs at scales n..x (base_layout(...).channels
# of each base and scale; not computed here because that builds ten models), plus 48.
YOLO_CHANNELS = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1152, 1536]


# ---------------------------------------------------------------- references: the seeds as written


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
    module = randomize(attention.build(name, 32)).eval()
    cls = type(module)
    assert getattr(importlib.import_module(cls.__module__), cls.__name__) is cls  # importable where defined
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        reference = module(x)
        for clone in (copy.deepcopy(module), pickle.loads(pickle.dumps(module))):
            assert type(clone) is cls
            assert torch.equal(clone.eval()(x), reference)


@pytest.mark.parametrize("name", MODULES)
def test_onnx_export_matches_torch(name):
    ort = pytest.importorskip("onnxruntime")
    module = randomize(attention.build(name, 32)).eval()
    x = torch.randn(1, 32, 7, 5)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), f, dynamo=False, opset_version=17, input_names=["x"])  # as ultralytics does
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), module(x), atol=1e-4)


# ---------------------------------------------------------------- reduced precision and torch.compile

# Relative L2 error against fp32 that an output may have: 10x the format's unit roundoff (bfloat16
# 2^-8 = 3.9e-3, float16 2^-11 = 4.9e-4). Measured: cot 2.1e-2 / 2.0e-3 (the longest chain of convs
# and normalisations), every other module at most 7.8e-3 / 9e-4. Tight enough to catch an overflow
# (SimAM's official energy gives NaN in float16) or a lost branch.
PRECISION_TOLERANCE = {"bf16": 4e-2, "fp16": 5e-3}


def _activations(channels: int) -> torch.Tensor:
    """Feature maps of realistic size: spread of +-60, a block of 300s (YOLO activations reach a few hundred)."""
    x = torch.randn(2, channels, 12, 10, generator=torch.Generator().manual_seed(channels)) * 60
    x[0, :, :2, :3] = 300.0
    return x


def _calibrated(name: str, channels: int, x: torch.Tensor) -> nn.Module:
    """Default initialisation, BN statistics those of `x` (as training would leave them), eval mode."""
    torch.manual_seed(0)
    module = attention.build(name, channels)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass gives the statistics of x
    with torch.no_grad():
        module.train()(x)
    return module.eval()


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("case", ["bf16 autocast", "bf16 autocast, bf16 input", "fp16 module (half validation)"])
@pytest.mark.parametrize("channels", [64, 256])
def test_reduced_precision_is_finite_and_close_to_fp32(name, case, channels):
    x = _activations(channels)
    module = _calibrated(name, channels, x)
    with torch.no_grad():
        reference = module(x)
        if case.startswith("bf16"):
            with torch.autocast("cpu", dtype=torch.bfloat16):  # what train(amp=True) does, on the CPU
                y = module(x.bfloat16() if "bf16 input" in case else x)
        else:  # ultralytics validates the best checkpoint with model.half() on GPUs
            y = copy.deepcopy(module).half()(x.half())
    y = y.float()
    assert torch.isfinite(y).all()
    error = ((y - reference).norm() / reference.norm()).item()
    assert error <= PRECISION_TOLERANCE[case[:4]], f"{name} {case}: relative error {error:.2e}"


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_torch_compile_fullgraph_without_graph_breaks(name, mode):
    """fullgraph=True raises on any graph break; the eager backend checks tracing without codegen."""
    torch._dynamo.reset()
    module = randomize(attention.build(name, 32)).train(mode == "train")
    compiled = torch.compile(module, backend="eager", fullgraph=True)
    x = torch.randn(2, 32, 7, 5, requires_grad=True)
    y = compiled(x)
    y.square().mean().backward()
    with torch.no_grad():
        torch.testing.assert_close(y, module(x))  # train mode: outputs use the batch's statistics
    assert x.grad is not None and torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- modules from ATTENTION_MODULE_PATH

THROWAWAY_PY = '''
    """A throwaway attention module that a test drops into a folder of its own."""
    import torch
    from torch import nn

    from src.attention import register


    @register("{name}")
    class {cls}(nn.Module):
        def __init__(self, channels, gain=1.0):
            super().__init__()
            self.gain = nn.Parameter(torch.full((channels,), float(gain)))

        def forward(self, x):
            return x * self.gain.view(1, -1, 1, 1)
'''


def _throwaway(folder, name: str = "throwaway", cls: str = "Throwaway"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(THROWAWAY_PY).format(name=name, cls=cls))
    return folder


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, and the modules a test imports from a search path forgotten afterwards."""
    monkeypatch.setattr(attention, "_REGISTRY", dict(attention._REGISTRY))
    before = set(sys.modules)
    yield
    package = sys.modules.get("src.attention._ext")
    for name in set(sys.modules) - before:
        if name.startswith("src.attention._ext."):
            del sys.modules[name]
            if package is not None and hasattr(package, name.rsplit(".", 1)[1]):
                delattr(package, name.rsplit(".", 1)[1])


def test_search_path_imports_and_registers_a_dropped_in_module(tmp_path, scratch_registry):
    mods = _throwaway(tmp_path / "mods", "inproc_mod", "InprocMod")
    (mods / "_helper.py").write_text("raise RuntimeError('files starting with _ are not imported')\n")
    other = _throwaway(tmp_path / "other", "second_mod", "SecondMod")
    assert attention.import_search_path(os.pathsep.join([str(mods), str(other)])) == [
        "src.attention._ext.inproc_mod",
        "src.attention._ext.second_mod",
    ]
    assert {"inproc_mod", "second_mod"} <= set(attention.available())
    assert attention.import_search_path(str(mods)) == []  # already imported: nothing twice
    module = attention.build("inproc_mod", 8, gain=2.0)
    assert type(module).__module__ == "src.attention._ext.inproc_mod"
    x = torch.randn(1, 8, 3, 3)
    assert torch.equal(pickle.loads(pickle.dumps(module))(x), 2.0 * x)
    clash = _throwaway(tmp_path / "clash", "inproc_mod", "InprocMod")
    with pytest.raises(ValueError, match="two attention files named 'inproc_mod.py'"):
        attention.import_search_path(str(clash))
    with pytest.warns(UserWarning, match="not a directory"):
        attention.import_search_path(str(tmp_path / "missing"))


def test_a_dropped_in_module_unpickles_in_a_fresh_process(tmp_path):
    """As a checkpoint holding it would: the class path alone finds it, given ATTENTION_MODULE_PATH."""
    mods = _throwaway(tmp_path / "mods")
    env = {**os.environ, attention.MODULE_PATH_ENV: str(mods)}
    saved = tmp_path / "module.pkl"
    code = [
        f"import pickle, src.attention as a; pickle.dump(a.build('throwaway', 4, gain=3.), open(r'{saved}', 'wb'))",
        f"import pickle; m = pickle.load(open(r'{saved}', 'rb')); print(type(m).__module__, m.gain.sum().item())",
    ]
    for line in code:
        proc = subprocess.run(
            [sys.executable, "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["src.attention._ext.throwaway", "12.0"]


@pytest.mark.e2e
def test_a_dropped_in_module_runs_through_src_run(tmp_path, monkeypatch):
    """One .py in any folder + one conf/attn/*.yaml on Hydra's search path: `attn=<name>` works, and
    the module is an entry of a `variant=` too."""
    mods = _throwaway(tmp_path / "mods")
    conf = tmp_path / "conf" / "attn"
    conf.mkdir(parents=True)
    (conf / "throwaway.yaml").write_text("name: throwaway\nparams:\n  gain: 1.0\n")
    monkeypatch.setenv(attention.MODULE_PATH_ENV, str(mods))
    small = ["dry_run=true", "logger=none", "measure.onnx=false", "train.imgsz=64", "measure.latency_runs=2"]
    small += ["measure.throughput_batch=1", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]
    proc = run_cli("attn=throwaway", *small, outputs=tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result_file,) = (tmp_path / "out" / "runs").glob("*/result.json")
    result = json.loads(result_file.read_text())
    assert (result["status"], result["attn"]) == ("dry_run", "throwaway")
    model = yaml.safe_load((result_file.parent / result["model_yaml"]).read_text())
    layers = model["backbone"] + model["head"]
    inserted = [layers[i] for i in result["inserted_layers"]]
    assert inserted and all(layer[2] == "Throwaway" for layer in inserted)
    assert result["params_added"] == sum(layer[3][0] for layer in inserted)  # one gain per channel and layer
    assert result["params"] > result["params"] - result["params_added"]  # more than the plain model
    # ... and as an entry of a several-module variant, read from the same search path
    proc = run_cli("variant=throwaway@neck+se@backbone_p5", *small, outputs=tmp_path / "out2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result_file,) = (tmp_path / "out2" / "runs").glob("*/result.json")
    result = json.loads(result_file.read_text())
    assert [e["label"] for e in result["entries"]] == ["throwaway@neck", "se@backbone_p5"]
    assert result["entries"][0]["attn_params"] == {"gain": 1.0}


# ---------------------------------------------------------------- registry


def _conf_attn() -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted(CONF_ATTN.glob("*.yaml"))}


def test_every_conf_attn_yaml_is_registered_and_vice_versa():
    confs = _conf_attn()
    assert sorted(confs) == attention.available()  # one .py + one .yaml: neither without the other
    for stem, conf in confs.items():
        assert conf["name"] == stem
        params = conf.get("params") or {}
        assert set(params) <= set(attention.knobs(stem)), stem
        attention.yaml_args(stem, 64, params)  # the config's values pass the module's own checks


def test_registry_none_and_class_names():
    assert attention.get_class("none") is None and attention.knobs("none") == {}
    assert isinstance(attention.build("none", 16), nn.Identity)
    classes = [attention.get_class(name) for name in MODULES]
    assert all(isinstance(cls, type) and issubclass(cls, nn.Module) for cls in classes)
    # ultralytics' YAML parser finds a module by its class name: one name, one class
    assert len({cls.__name__ for cls in classes}) == len(classes)
    assert attention.get_class("ema") is EMA and attention.get_class("cot") is CoTBlock


@pytest.mark.parametrize("name", MODULES)
def test_every_module_builds_and_keeps_shape_at_every_yolo_channel_count(name):
    for channels in YOLO_CHANNELS:
        module = attention.build(name, channels).train()
        for shape in ((2, channels, 3, 2), (1, channels, 1, 1)):  # batch 1 on a 1x1 map trains too
            x = torch.randn(*shape)
            with torch.no_grad():
                y = module(x)
            assert y.shape == x.shape and torch.isfinite(y).all(), (name, channels, shape)


def test_registry_errors_name_the_bad_value_and_the_choices():
    choices = re.escape(", ".join(attention.available()))
    with pytest.raises(ValueError, match=rf"'emma'.*{choices}$"):
        attention.build("emma", 16)
    with pytest.raises(ValueError, match=rf"'emma'.*{choices}$"):
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
    seed = randomize(SeedEMA(64, factor=8)).eval()
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
    seed = randomize(SeedEMA(32, factor=4))
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
    seed = randomize(SeedCoTAttention(32, 3)).eval()
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
    ours, plain = randomize(BatchNorm2d(8)), randomize(nn.BatchNorm2d(8))
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


# ---------------------------------------------------------- src.bench.gpu_check (its GPU path needs a GPU)


def test_gpu_check_without_cuda_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from src.bench import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "gpu-check")]) == 0
    assert "gpu-check needs a CUDA GPU" in capsys.readouterr().out
    assert not (tmp_path / "gpu-check").exists()


def test_gpu_check_report_table():
    from src.bench import gpu_check

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: tensorrt_fp16_ms would export")

    rows = [
        {
            "attn": "none",
            "status": "completed",
            "params": 2_590_000,
            "train_seconds": 21.4,
            "train_map50_95": 0.301,
            "val_fp32": {"map50": 0.61, "map50_95": 0.30},
            "val_fp16": {"map50": 0.612, "map50_95": 0.2995},
            "latency_fp16_ms": 3.2,
            "latency_fp32_ms": 4.1,
            **gpu_check.tensorrt_fp16_ms(Path("unused.pt"), 320),  # no tensorrt here: the note, no export
        },
        {"attn": "cot", "status": "failed", "error": "exit code 1; see runs/cot.log"},
    ]
    header = {
        "date": "2026-12-01",
        "gpu": "NVIDIA H200",
        "torch": "2.14.1",
        "cuda": "13.0",
        "ultralytics": "8.4.190",
        "epochs": 2,
        "imgsz": 320,
        "total_s": 123.0,
    }
    text = gpu_check.report(rows, header)
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 4 and all(line.count("|") == table[0].count("|") for line in table)
    assert "| none | completed | 2.590 | 21 | 30.10 | 61.00 | 61.20 | 30.00 | 29.95 | -0.05 | 3.20 | 4.10 |  |" in text
    assert "- cot: exit code 1" in text and "NVIDIA H200" in text
    assert f"TensorRT: {gpu_check.TRT_NOT_INSTALLED}" in text  # said, not a blank column without a reason
