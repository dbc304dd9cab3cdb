"""8. The side-by-side cost pass: its wall time against `make run`'s, and its run-to-run spread.

`make run`'s variants (attn=none,cot,ema at the default embedded-dataset settings) as a dry-run
sweep (`dry_run=true`, no training, the pass itself switched off), then `python -m src.costs SWEEP`
as a user runs it, a whole process, repeated: its wall time (imports included) and the pass's own
time from costs.json, both against the budget of 10 % of `make run` (5-8 min on a quiet machine,
so 30 s). The spread: per variant, the range of its latency over the repeats, and the ratio of each
variant's latency to the baseline's per repeat (what the table's Δ compares).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from src.bench.common import PY, Mode, fresh_dir, median, rel, spread, src_run, timed_run
from src.results import BASELINE
from src.results import costs as C
from src.results.schema import LATENCY_MS, ONNX_CPU_MS

MAKE_RUN = (BASELINE, "cot", "ema")  # `make run`'s attn=none,cot,ema
BUDGET_S = 30.0  # 10 % of make run's 5 min on a quiet machine


def run(out: Path, mode: Mode, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    work = fresh_dir(out / "costs")
    sweep = work / "sweep"
    overrides = [
        f"attn={','.join(MAKE_RUN)}",
        "dry_run=true",
        "logger=none",
        "measure.onnx=false",
        "++hydra.callbacks.aggregate.costs=false",
        *([o for o in mode.tiny if o.startswith("train.imgsz")] if mode.quick else []),
    ]
    timed_run(src_run(overrides, work, cache, sweep_dir=sweep, multirun=True), work / "sweep.log")
    repeats = 1 if mode.quick else 3
    runs = []
    for i in range(repeats):
        wall = timed_run([PY, "-m", "src.costs", str(sweep)], work / f"costs_{i}.log")
        found = C.read_costs(sweep) or {}
        runs.append(
            {
                "wall_seconds": wall,
                "pass_seconds": found.get(C.SECONDS),
                "device": found.get(C.DEVICE),
                "latency_ms": {v["attn"]: v.get(LATENCY_MS) for v in found.get(C.VARIANTS, [])},
                "onnx_cpu_ms": {v["attn"]: v.get(ONNX_CPU_MS) for v in found.get(C.VARIANTS, [])},
            }
        )
    figures = _figures(runs)
    figures["sweep"] = rel(sweep)
    wall = figures["wall_seconds"]
    return {
        "name": "costs",
        "title": "8. Cost pass",
        "about": (
            f"`python -m src.costs SWEEP` over a dry-run sweep of `make run`'s variants ({', '.join(MAKE_RUN)}; "
            f"{'64 px' if mode.quick else 'default settings'}), {repeats} whole process(es): PyTorch latency and "
            f"throughput, memory and ONNX Runtime latency, 10 interleaved rounds, on {runs[0]['device']}."
        ),
        "figures": figures,
        "headline": [
            ["cost pass wall time (process, median)", f"{wall:.1f} s", f"< {BUDGET_S:.0f} s (10 % of make run)"],
            ["cost pass run-to-run spread of cot/none latency", _range(figures["ratio_spread"]), ""],
        ],
        "tables": _tables(figures),
        "notes": [
            "Wall time includes starting Python and importing torch and ultralytics; `pass` is the pass alone.",
            "Spread: min-max over the repeats; a machine busy with other work widens it (run on a quiet one).",
        ],
        "seconds": time.perf_counter() - started,
    }


def _figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    attns = list(runs[0]["latency_ms"])
    ratios = {
        a: [r["latency_ms"][a] / r["latency_ms"][BASELINE] for r in runs if r["latency_ms"].get(BASELINE)]
        for a in attns
        if a != BASELINE
    }
    return {
        "runs": runs,
        "wall_seconds": median(r["wall_seconds"] for r in runs),
        "pass_seconds": median(r["pass_seconds"] for r in runs),
        "latency_spread": {a: spread(r["latency_ms"][a] for r in runs) for a in attns},
        "ratio_to_none": ratios,
        "ratio_spread": spread(x for a in ("cot",) for x in ratios.get(a, [])),
    }


def _range(pair: tuple[float, float] | None, digits: int = 3) -> str:
    return "n/a" if pair is None else f"{pair[0]:.{digits}f}-{pair[1]:.{digits}f}"


def _tables(f: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        [
            f"`{a}`",
            _range(f["latency_spread"][a], 2),
            _range(spread(f["ratio_to_none"].get(a, [])) if a != BASELINE else None),
        ]
        for a in f["latency_spread"]
    ]
    times = [[i + 1, f"{r['wall_seconds']:.1f}", f"{r['pass_seconds']:.1f}"] for i, r in enumerate(f["runs"])]
    return [
        {"title": "Latency over the repeats (ms, min-max)", "columns": ["attn", "latency", "vs none"], "rows": rows},
        {"title": "Wall time per repeat (s)", "columns": ["repeat", "process", "pass"], "rows": times},
    ]
