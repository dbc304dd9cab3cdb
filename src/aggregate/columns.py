"""The columns of the ablation and cost tables, each declared once: value, headers, format, best mark.

`ABLATION` and `COST` are the tables' columns in the order shown; an entry appears when its
`shown` says so (by default: when some row has a value in `key`). A new column is one entry
here, for a value the job writes into result.json (a metric under `metrics`, whose mean and
std over seeds the table builds, or a cost in `src.results.COST_KEYS`, whose mean it builds).
The CSV keeps every built column; these lists only decide what text, Markdown and LaTeX show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from src.results.costs import HIGH, LOW

from .sequential import DECIDED
from .tables import finite
from .uncertainty import IMAGES


def has(table: pd.DataFrame, key: str) -> bool:
    """True when the frame has column `key` with at least one value."""
    return key in table.columns and table[key].notna().any()


def when(key: str) -> Callable[[pd.DataFrame], bool]:
    """Show a column when the table has values in `key` (another column's, e.g. a Δ's base)."""
    return lambda table: has(table, key)


def always(table: pd.DataFrame) -> bool:
    return True


@dataclass(frozen=True)
class Column:
    key: str  # frame column holding the value compared for "best"
    header: str
    tex: str
    fmt: Callable[[pd.Series], str]
    better: str | None  # "max" | "min" | None (not marked)
    align: str = "r"
    short: str | None = None  # terminal header when `header` is too wide for 120 columns
    shown: Callable[[pd.DataFrame], bool] | None = None  # None: when some row has a value in `key`

    def is_shown(self, table: pd.DataFrame) -> bool:
        return self.shown(table) if self.shown is not None else has(table, self.key)


def mean_std(mean_key: str, std_key: str, scale: float = 100.0) -> Callable[[pd.Series], str]:
    """`mean±std` (the std left out where there is none), times `scale` (fractions -> %)."""

    def fmt(row: pd.Series) -> str:
        m, s = row.get(mean_key), row.get(std_key)
        if not finite(m):
            return ""
        if not finite(s):
            return f"{scale * m:.2f}"
        return f"{scale * m:.2f}±{scale * s:.2f}"

    return fmt


def _signed(v, scale=100.0, digits=2) -> str:
    return f"{scale * v:+.{digits}f}"


def signed_ci(d, low, high, scale: float = 100.0) -> str:
    """`+1.23 [+0.40, +2.06]`, `[n/a]` for an interval that is undefined (one seed)."""
    ci = f"[{_signed(low, scale)}, {_signed(high, scale)}]" if finite(low) and finite(high) else "[n/a]"
    return f"{_signed(d, scale)} {ci}"


def _delta(row: pd.Series) -> str:
    """Δ with the table's main CI (seeds and images, uncertainty.two_level_interval); † the seed
    level is Welch's (seeds unmatched), ‡ the interval covers images only (one seed)."""
    d = row.get("delta_map50_95")
    if not finite(d):
        return ""
    lo, hi = row.get("delta_seeds_images_low"), row.get("delta_seeds_images_high")
    mark = "†" if row.get("test") == "welch" else ""
    if row.get("delta_ci_covers") == IMAGES:
        mark = "‡"
    return signed_ci(d, lo, hi) + mark


def significance(key: str) -> Callable[[pd.Series], str]:
    """Holm-adjusted p < 0.05 of the difference in `key`: yes / no; n/a where no test ran (one seed)."""

    def fmt(row: pd.Series) -> str:
        if row.get("is_baseline") or not finite(row.get(key)):
            return ""
        if not finite(row.get("p_holm")):
            return "n/a"
        return "yes" if row.get("significant") else "no"

    return fmt


def _text(key: str) -> Callable[[pd.Series], str]:
    def fmt(row: pd.Series) -> str:
        v = row.get(key)
        return v if isinstance(v, str) else ""

    return fmt


def num(key: str, scale: float = 1.0, digits: int = 2, signed: bool = False) -> Callable[[pd.Series], str]:
    def fmt(row: pd.Series) -> str:
        v = row.get(key)
        if not finite(v):
            return ""
        return f"{v * scale:+.{digits}f}" if signed else f"{v * scale:.{digits}f}"

    return fmt


def _quartiles(key: str, digits: int = 2) -> Callable[[pd.Series], str]:
    """`[q1, q3]` of a side-by-side timing (its spread over the interleaved runs)."""

    def fmt(row: pd.Series) -> str:
        lo, hi = row.get(key + LOW), row.get(key + HIGH)
        return f"[{lo:.{digits}f}, {hi:.{digits}f}]" if finite(lo) and finite(hi) else ""

    return fmt


def _onnx(row: pd.Series) -> str:
    ok = row.get("onnx_ok")
    return "" if ok is None or (isinstance(ok, float) and math.isnan(ok)) else ("ok" if ok else "fails")


def _stop(row: pd.Series) -> str:
    """How an adaptive sweep's row ended: `better, round 2` / `max seeds, round 5` / `budget, round 3`."""
    stop, rnd, said = row.get("adaptive_stop"), row.get("adaptive_round"), row.get("adaptive_verdict")
    if not isinstance(stop, str) or not stop:
        return ""
    what = said if stop == DECIDED and isinstance(said, str) else stop
    return f"{what}, round {int(rnd)}" if finite(rnd) else what


def _count(row: pd.Series) -> str:
    return str(int(row["n"]))


def metric(name: str, header: str, tex: str) -> Column:
    """A metric of result.json's `metrics` (in %): mean ± std over seeds, best = highest."""
    return Column(f"{name}_mean", f"{header} (%)", tex, mean_std(f"{name}_mean", f"{name}_std"), "max", "c", header)


ABLATION = [
    Column("n", "n", "$n$", _count, None, shown=always),
    metric("map50", "mAP50", r"mAP$_{50}$"),
    metric("map50_95", "mAP50-95", r"mAP$_{50:95}$"),
    metric("map75", "mAP75", r"mAP$_{75}$"),
    metric("ap_small", "AP_S", r"AP$_S$"),
    metric("ap_medium", "AP_M", r"AP$_M$"),
    metric("ap_large", "AP_L", r"AP$_L$"),
    Column(
        "delta_map50_95",
        "Δ mAP50-95 (pp) [95% CI over seeds and images]",
        r"$\Delta$mAP$_{50:95}$ [95\% CI]",
        _delta,
        "max",
        "c",
        "Δ mAP50-95 [95% CI]",
        shown=always,
    ),
    Column("p_improve", "P(Δ>0)", r"P($\Delta{>}0$)", num("p_improve", 1, 2), None),
    Column("verdict", "verdict", "verdict", _text("verdict"), None, "c", shown=when("delta_map50_95")),
    Column("significant", "sig.", "sig.", significance("delta_map50_95"), None, "c", shown=always),
    Column("adaptive_stop", "stopped (adaptive)", "stopped", _stop, None, "c", "stopped"),
    Column("params", "Params (M)", "Params (M)", num("params", 1e-6, 3), "min", "r", "Params(M)"),
    Column("gflops", "GFLOPs", "GFLOPs", num("gflops", 1, 2), "min"),
    Column("latency_ms", "Latency (ms)", "Latency (ms)", num("latency_ms", 1, 2), "min", "r", "Lat.(ms)"),
]


def _delta_pct(base: str, label: str) -> Column:
    """Δ<label> (%) against the baseline, shown where the table has `base`."""
    key = f"delta_{base}_pct"
    return Column(key, f"Δ{label} (%)", rf"$\Delta${label} (\%)", num(key, 1, 1, True), None, shown=when(base))


COST = [
    Column("n", "jobs", "jobs", _count, None, shown=always),
    Column("params", "Params (M)", "Params (M)", num("params", 1e-6, 3), "min"),
    Column(
        "delta_params",
        "ΔParams (M)",
        r"$\Delta$Params (M)",
        num("delta_params", 1e-6, 3, True),
        None,
        shown=when("params"),
    ),
    _delta_pct("params", "Params"),
    Column("gflops", "GFLOPs", "GFLOPs", num("gflops", 1, 2), "min"),
    Column("delta_gflops", "ΔGFLOPs", r"$\Delta$GFLOPs", num("delta_gflops", 1, 2, True), None, shown=when("gflops")),
    _delta_pct("gflops", "GFLOPs"),
    # FlopCounterMode at the job's own image size (README "How we measure")
    Column("gflops_exact", "GFLOPs exact", "GFLOPs (exact)", num("gflops_exact", 1, 3), "min", "r", "GFLOPs@imgsz"),
    # The side-by-side cost pass (costs.json): every variant timed on one device, interleaved
    Column("latency_ms", "Latency (ms)", "Latency (ms)", num("latency_ms", 1, 2), "min"),
    Column(
        "latency_ms_q1",
        "Latency IQR (ms)",
        "IQR (ms)",
        _quartiles("latency_ms"),
        None,
        "r",
        "Lat.IQR",
        shown=when("latency_ms_q1"),
    ),
    Column("delta_latency_ms", "ΔLatency (ms)", r"$\Delta$Latency (ms)", num("delta_latency_ms", 1, 2, True), None),
    Column("throughput_ips", "img/s", "img/s", num("throughput_ips", 1, 1), "max"),
    Column("onnx_cpu_ms", "ONNX CPU (ms)", "ONNX CPU (ms)", num("onnx_cpu_ms", 1, 2), "min", "r", "ONNX(ms)"),
    Column(
        "delta_onnx_cpu_ms",
        "ΔONNX CPU (ms)",
        r"$\Delta$ONNX CPU (ms)",
        num("delta_onnx_cpu_ms", 1, 2, True),
        None,
        "r",
        "ΔONNX(ms)",
    ),
    Column("mem_mb_batch1", "Mem b1 (MiB)", "Mem b1 (MiB)", num("mem_mb_batch1", 1, 1), "min", "r", "Mem1(MiB)"),
    Column("mem_mb_batch", "Mem batch (MiB)", "Mem batch (MiB)", num("mem_mb_batch", 1, 1), "min", "r", "MemB(MiB)"),
    Column("onnx_ok", "ONNX", "ONNX", _onnx, None, "c"),
]


def ablation_columns(table: pd.DataFrame) -> list[Column]:
    return [c for c in ABLATION if c.is_shown(table)]


def cost_columns(table: pd.DataFrame) -> list[Column]:
    return [c for c in COST if c.is_shown(table)]
