"""The side-by-side cost pass (src/costs) and the table that takes its latency, throughput, ONNX and
memory columns from it (src/aggregate/side_by_side.py).

The sweep here is written the way a dry-run job writes it (the model YAML from the real rewrite,
result.json, Hydra's saved config) without running the jobs, so the real pass times real
ultralytics models at 64 px in a few seconds: `none` and `cot` after layers 2 and 4 (+33 % exact
GFLOPs at 64 px), the baseline at two seeds (one architecture: timed once).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from src import attention
from src.aggregate import aggregate
from src.arch import architecture
from src.arch import rewrite as arch_rewrite
from src.costs.__main__ import main as costs_main
from src.costs.cost_pass import run_costs
from src.job.peak_memory import training_peak
from src.results import DRY_RUN, costs, empty_result, write_result
from src.results.schema import (
    LATENCY_MS,
    LATENCY_MS_JOB,
    MEM_MB_BATCH,
    MEM_MB_BATCH1,
    MODEL_YAML,
    ONNX_CPU_MS,
    THROUGHPUT_IPS,
    TRAIN_PEAK_MEM_HOW,
    TRAIN_PEAK_MEM_MB,
)
from src.sweep_end import AggregateOnMultirunEnd
from src.ultralytics_glue.layout import base_layout

IMGSZ = 64
NAMES = ["a", "b", "c"]
JOBS = [("none", "-", None, 0), ("none", "-", None, 1), ("cot", "early", [2, 4], 0)]  # attn, pos, after, seed
LEGACY_MS = 999.0  # a per-job figure in the old key: the table must not show it


def _model_yaml(attn: str, after: list[int] | None, job_dir: Path) -> Path:
    arch = architecture.resolve("yolo11", "n", {"after": after or [10]}, base_layout)
    if after is None:
        graph = arch_rewrite.unchanged(arch.base)
    else:
        cls = attention.get_class(attn).__name__
        graph = arch_rewrite.insert_attention(
            arch.base, arch.channels, cls, lambda c: attention.yaml_args(attn, c, {}), arch.position
        )
    return arch_rewrite.dump_yaml({**graph.model, "scale": "n"}, job_dir / f"yolo11n-{attn}.yaml")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("costs") / "sweep"
    for i, (attn, pos, after, seed) in enumerate(JOBS):
        job = root / f"{i}_attn={attn},seed={seed}"
        job.mkdir(parents=True)
        model_file = _model_yaml(attn, after, job)
        result = empty_result(dataset="toy", model="yolo11n", attn=attn, pos=pos, seed=seed, epochs=1, imgsz=IMGSZ)
        result.update({"status": DRY_RUN, MODEL_YAML: model_file.name})
        if i == 0:
            result[LATENCY_MS] = LEGACY_MS  # as results from before the cost pass carry the job's own timing
        write_result(job, result)
        (job / ".hydra").mkdir()
        config = {"dataset": {"names": NAMES}, "measure": {"threads": 1, "throughput_batch": 2}}
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_the_sweep_end_times_each_architecture_once_and_the_table_takes_its_figures(sweep):
    """The multirun-end callback runs the pass (ONNX included), then the table shows its figures
    with the device in the caption, Δ against the baseline, never the jobs' own timings."""
    from omegaconf import OmegaConf

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "train": {"device": "cpu"}})
    callback = AggregateOnMultirunEnd(plots=False, figures=False, quiet=True, costs_rounds=2)
    outcome = callback.aggregate_sweep(config)
    assert outcome.error is None
    found = costs.read_costs(sweep)
    by_attn = {v["attn"]: v for v in found[costs.VARIANTS]}
    assert sorted(by_attn) == ["cot", "none"] and len(by_attn["none"][costs.JOBS]) == 2  # two seeds, one model
    assert found[costs.DEVICE].startswith("CPU: ") and found[costs.DEVICE].endswith(", 1 thread")
    assert found[costs.THREADS] == found[costs.ONNX_THREADS] == 1 and found[costs.BATCH] == 2  # the sweep's own
    for v in by_attn.values():
        for key in (LATENCY_MS, THROUGHPUT_IPS, ONNX_CPU_MS):
            assert 0 < v[key + costs.LOW] <= v[key] <= v[key + costs.HIGH], (key, v)
        assert 0 < v[MEM_MB_BATCH1] <= v[MEM_MB_BATCH]
    assert by_attn["cot"][MEM_MB_BATCH1] > by_attn["none"][MEM_MB_BATCH1]  # its weights and activations
    assert len(pd.read_csv(sweep / costs.COSTS_CSV)) == 2
    assert not (sweep / costs.COSTS_EXPORT_DIR).exists()  # the timed ONNX exports are not left behind

    s = outcome.summary
    table = s.cost.set_index("attn")
    assert table.loc["none", LATENCY_MS] == pytest.approx(by_attn["none"][LATENCY_MS])  # not LEGACY_MS
    assert table.loc["cot", "delta_latency_ms"] == pytest.approx(
        by_attn["cot"][LATENCY_MS] - by_attn["none"][LATENCY_MS]
    )
    onnx_delta = by_attn["cot"][ONNX_CPU_MS] - by_attn["none"][ONNX_CPU_MS]
    assert table.loc["cot", "delta_onnx_cpu_ms"] == pytest.approx(onnx_delta)
    assert LEGACY_MS in set(s.runs[LATENCY_MS_JOB])  # the old key, read as the job's own diagnostic
    assert found[costs.DEVICE] in s.terminal and found[costs.DEVICE] in (sweep / "ablation.md").read_text()
    none = by_attn["none"]
    spread = f"[{none[LATENCY_MS + costs.LOW]:.2f}, {none[LATENCY_MS + costs.HIGH]:.2f}]"  # its quartiles
    assert "ONNX CPU (ms)" in (sweep / "ablation.md").read_text() and spread in (sweep / "ablation.md").read_text()


def test_without_a_cost_pass_the_table_shows_no_timing_and_says_how_to_get_it(tmp_path):
    """An old sweep (the jobs' own latency_ms in result.json, no costs.json): no latency column from
    the per-job figures; the note names the command. A pass that failed: its reason."""
    root = tmp_path / "old"
    for i, (attn, ms) in enumerate((("none", 231.5), ("cot", 35.4))):  # the inversion of issue 24
        r = empty_result(dataset="toy", model="yolo11n", attn=attn, pos="neck", seed=0, epochs=1, imgsz=64)
        r.update(status=DRY_RUN, params=1000 + i, gflops=6.4 + i, latency_ms=ms, throughput_ips=1000 / ms)
        write_result(root / str(i), r)
    s = aggregate([root], plots=False)
    assert LATENCY_MS not in s.cost.columns or s.cost[LATENCY_MS].isna().all()
    assert "Latency" not in s.terminal and sorted(s.runs[LATENCY_MS_JOB]) == [35.4, 231.5]
    assert any(f"python -m src.costs {root.resolve()}" in n for n in s.notes), s.notes

    costs.write_costs(root, {costs.PASS_ERROR: "ModuleNotFoundError: No module named 'torch'", costs.VARIANTS: []})
    s = aggregate([root], plots=False)
    assert any("did not run: ModuleNotFoundError" in n for n in s.notes), s.notes


def test_the_pass_keeps_the_gflops_order_while_another_process_loads_the_cpu(sweep):
    """Per-job timings inverted none < cot under load; timed interleaved, the order holds in most repeats."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        kept, seen = 0, []
        for _ in range(3):
            found = run_costs(sweep, device="cpu", batch=1, rounds=4, runs_per_round=3, warmup=1, onnx=False)
            ms = {v["attn"]: v[LATENCY_MS] for v in found[costs.VARIANTS]}
            kept += ms["none"] < ms["cot"]
            seen.append(ms)
    finally:
        burner.kill()
        burner.wait()
    assert kept >= 2, f"none < cot in {kept} of 3 repeats under load: {seen}"


def test_bad_input_is_named_before_any_model_is_built(tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:
        costs_main([str(tmp_path / "nope")])
    assert ended.value.code == 2 and "no such sweep directory" in capsys.readouterr().err
    for args, says in ((["--device", "tpu"], "auto, cpu, cuda, cuda:N"), (["--rounds", "0"], "--rounds=0")):
        with pytest.raises(SystemExit) as ended:
            costs_main([str(tmp_path), *args])
        assert ended.value.code == 2 and says in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_training_peak_memory_is_this_blocks_own():
    """The peak RSS is reset at the start: a block that touches 64 MiB of fresh pages records at least
    that much more than a later block that touches none (an earlier job's peak is not carried over)."""
    import mmap

    size = 64 * 2**20
    with training_peak("cpu") as big:
        with mmap.mmap(-1, size) as fresh:  # new pages whatever the allocator keeps around
            fresh.write(b"\x01" * size)
    with training_peak("cpu") as small:
        pass
    assert "reset" in big[TRAIN_PEAK_MEM_HOW] and "reset" in small[TRAIN_PEAK_MEM_HOW], (big, small)
    assert big[TRAIN_PEAK_MEM_MB] - small[TRAIN_PEAK_MEM_MB] >= 56, (big, small)  # 64 MiB, less noise
