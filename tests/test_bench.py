"""The benchmark's pieces on tiny inputs: statistics, interleaving, the report writer, parsers, the seeds'
reference modules, one module-bench shape and the `--quick` aggregation section end to end. No timing asserts."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from src import attention
from src.bench import report
from src.bench.__main__ import main as bench_main
from src.bench.common import QUICK, interleave, median, paired_difference, paired_ratio, spread
from src.bench.overhead import parse_importtime
from src.bench.seed_reference import SeedCoTAttention, SeedEMA
from src.bench.throughput import count_train_images, epoch_seconds, images_per_second


def test_median_ratio_spread_ignore_missing_values():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, None, 2.0]) == 3.0
    assert median([]) is None and median([None]) is None
    assert paired_ratio([2.0, 6.0, 3.0], [1.0, 2.0, 3.0]) == 2.0  # median of 2, 3, 1
    assert paired_ratio([1.0, None], [0.0, 2.0]) is None  # a zero or missing side is skipped
    assert spread([3.0, None, 1.0]) == (1.0, 3.0)


def test_interleave_alternates_the_sides():
    calls = []
    out = interleave({"a": lambda i: calls.append(f"a{i}") or i, "b": lambda i: calls.append(f"b{i}") or 10 * i}, 3)
    assert calls == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert out == {"a": [0, 1, 2], "b": [0, 10, 20]}


def _fake_bench():
    return {
        "schema": 1,
        "quick": True,
        "command": "python -m src.bench --quick",
        "total_seconds": 75.5,
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "torch": "2.x",
            "ultralytics": "8.x",
            "git_commit": "abc1234",
            "git_dirty": True,
            "date": "2026-01-01T00:00:00+00:00",
            "load_avg_at_start": [0.1, 0.2, 0.3],
        },
        "sections": [
            {
                "name": "overhead",
                "title": "1. Framework overhead",
                "about": "whole processes",
                "headline": [["overhead ratio", "1.012", "<= 1.03"]],
                "tables": [
                    {
                        "title": "Wall time",
                        "columns": ["side", "median s"],
                        "rows": [["src.run", "10.12"], ["a|b", None]],
                    }
                ],
                "notes": ["a note"],
                "figures": {"ratio": 1.0123, "seconds": {"src.run": [10.12]}},
                "seconds": 30.0,
            },
            {"name": "sweep", "title": "5. Sweep", "error": "BenchError: boom\n\ntraceback here", "seconds": 1.0},
        ],
    }


def test_report_writes_markdown_tables_and_json_with_the_same_numbers(tmp_path):
    bench = _fake_bench()
    md_path, json_path = report.write(bench, tmp_path / "bench")
    md = md_path.read_text()
    assert md.startswith("# Benchmarks") and "--quick run" in md
    assert "| CPU | Test CPU |" in md and "abc1234 (uncommitted changes)" in md
    assert "| overhead ratio | 1.012 | <= 1.03 |" in md  # summary
    assert "| side | median s |\n|---|---|\n| src.run | 10.12 |\n| a\\|b | n/a |" in md  # pipes escaped
    assert "- a note" in md and "1m15.5s in all" in md
    assert "**5. Sweep failed**: BenchError: boom" in md and "traceback here" in md
    assert "make bench" in md  # how to reproduce
    data = json.loads(json_path.read_text())
    assert data["sections"][0]["figures"]["ratio"] == 1.0123
    assert data["sections"][0]["tables"][0]["rows"][0] == ["src.run", "10.12"]


def test_md_table_formats_cells():
    assert report.md_table(["x", "y"], [[0.000123456, float("nan")]]) == "| x | y |\n|---|---|\n| 0.000123 | n/a |"


def test_parse_importtime_sums_self_time_per_top_level_package():
    text = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   torch._C",
            "import time:      1000 |       1100 | torch",
            "import time:        50 |         50 |     hydra.core",
            "import time:       200 |        250 |   hydra",
            "import time:        10 |       1360 | src.run",
            "junk line",
        ]
    )
    parsed = parse_importtime(text)
    assert parsed["packages"] == pytest.approx({"torch": 0.0011, "hydra": 0.00025, "src": 0.00001})
    assert list(parsed["packages"]) == ["torch", "hydra", "src"]
    assert parsed["total_seconds"] == pytest.approx(0.00136)


def test_throughput_helpers(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    for i in range(5):
        (tmp_path / "images" / "train" / f"{i}.jpg").write_bytes(b"")
    (tmp_path / "images" / "train" / "notes.txt").write_text("not an image")
    data = tmp_path / "data.yaml"
    data.write_text(f'path: "{tmp_path}"\ntrain: images/train\nval: images/val\nnames: {{0: a}}\n')
    assert count_train_images(data) == 5
    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,train/box_loss\n1,10.0,1.0\n2,25.5,0.9\n")
    assert epoch_seconds(csv) == pytest.approx([10.0, 15.5])
    assert epoch_seconds(tmp_path / "missing.csv") == []
    assert images_per_second(256, 2, 12.8) == pytest.approx(40.0)
    assert images_per_second(256, 2, None) is None


@pytest.mark.parametrize("seed_cls,ours", [(SeedEMA, "ema"), (SeedCoTAttention, "cot_lite")])
def test_seed_references_load_into_ours_and_agree(seed_cls, ours):
    torch.manual_seed(0)
    seed = seed_cls(32).train()
    mine = attention.build(ours, 32).train()
    mine.load_state_dict(seed.state_dict())  # strict: same names and shapes
    x = torch.randn(2, 32, 6, 5)
    assert torch.allclose(mine(x), seed(x), atol=1e-5)


def test_module_bench_one_small_shape(monkeypatch):
    from src.bench import modules
    from src.bench.modules import measure_shape

    torch.set_num_threads(1)
    res = measure_shape((2, 128, 6, 6), repeats=1, torch=torch)
    rows = res["rows"]
    assert set(rows) == {"ema", "seed EMA", "cot_lite", "seed CoTAttention", "cot", "C2PSA (ultralytics)"}
    for name, row in rows.items():
        assert "error" not in row, (name, row)
        assert row["median_ms"] > 0 and row["peak_mib"] > 0
    assert rows["ema"]["max_abs_diff_vs_seed"] < 1e-4 and rows["cot_lite"]["max_abs_diff_vs_seed"] < 1e-4
    assert rows["ema"]["time_ratio_vs_seed"] > 0 and rows["cot_lite"]["memory_ratio_vs_seed"] > 0
    assert rows["cot"]["same_function"] is False and "max_abs_diff_vs_seed" not in rows["cot"]
    # a module that cannot be built at some shape is recorded, not raised
    build = modules.build
    monkeypatch.setattr(
        modules,
        "build",
        lambda name, c: (_ for _ in ()).throw(ValueError("no")) if name.startswith("C2PSA") else build(name, c),
    )
    res = measure_shape((2, 64, 4, 4), repeats=1, torch=torch)
    assert res["rows"]["C2PSA (ultralytics)"]["error"] == "ValueError: no" and "median_ms" in res["rows"]["ema"]


def test_quick_aggregation_section_end_to_end_keeps_the_other_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "src.bench.__main__.QUICK", dataclasses.replace(QUICK, aggregation_sizes=(24,), aggregation_repeats={24: 1})
    )
    earlier = _fake_bench()  # an earlier --quick run in the same place: its good sections stay in the report
    report.write(earlier, tmp_path / "b")
    assert bench_main(["--quick", "--only", "aggregation", "--out", str(tmp_path / "b")]) == 0
    data = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [s["name"] for s in data["sections"]] == ["overhead", "aggregation"]  # bench order; the failed one gone
    assert data["kept_from_earlier_run"] == ["overhead"]
    assert data["sections"][0]["figures"] == earlier["sections"][0]["figures"]
    assert data["sections"][0]["date"] == earlier["machine"]["date"]
    section = data["sections"][1]
    size = section["figures"]["sizes"]["24"]
    assert size["files"] == 24 and size["median_plots"] > 0 and size["median_no_plots"] > 0
    md = (tmp_path / "b" / "BENCH.md").read_text()
    assert "Kept from an earlier run: overhead" in md and "at commit abc1234" in md
    assert f"| 24 | {size['median_no_plots']:.2f} | {size['median_plots']:.2f} |" in md  # the same numbers
    assert len(list((tmp_path / "b" / "aggregation" / "n24").glob("*/result.json"))) == 24


def test_cli_rejects_an_unknown_section(tmp_path):
    with pytest.raises(SystemExit) as exc:
        bench_main(["--only", "nope", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_paired_difference_takes_the_drift_between_repeats_out():
    ours, plain = [10.0, 20.0, 30.0], [9.0, 18.0, 10.0]  # the machine slowed down between repeats
    assert paired_difference(ours, plain) == 2.0  # the pairs' differences 1, 2, 20: median 2
    assert median(ours) - median(plain) == 10.0  # the difference of medians mixes the drift in
    assert paired_difference([1.0, None], [0.5, 2.0]) == 0.5 and paired_difference([], []) is None
