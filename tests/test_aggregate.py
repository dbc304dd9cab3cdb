"""Tests for src.aggregate: statistics, tables, files, plots, CLI and the Hydra callback.

Synthetic sweeps are written with src.results.write_result into tmp_path; nothing here trains.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from anywhere, without a conftest
    sys.path.insert(0, str(ROOT))

from src import sweep_end as hydra_callback  # noqa: E402
from src.aggregate import Summary, aggregate  # noqa: E402
from src.aggregate.__main__ import main as cli_main  # noqa: E402
from src.aggregate.render import tex_escape  # noqa: E402
from src.aggregate.stats import paired_diff, pareto_front, t_ppf, t_sf_two_sided, welch_from_moments  # noqa: E402
from src.results import costs, empty_result, write_result  # noqa: E402

REQUIRED_CSV = [
    "dataset",
    "model",
    "pos",
    "attn",
    "n",
    "map50_mean",
    "map50_std",
    "map50_95_mean",
    "map50_95_std",
    "delta_map50_95",
    "delta_seeds_images_low",
    "delta_seeds_images_high",
    "p_improve",
    "verdict",
    "delta_seeds_low",
    "delta_seeds_high",
    "delta_images_low",
    "delta_images_high",
    "significant",
    "params",
    "gflops",
]


# ----------------------------------------------------------------------------- helpers
class Sweep:
    """Writes jobs 0, 1, 2, ... into one sweep dir."""

    def __init__(self, root: Path):
        self.root = root
        self.i = 0

    def job_dir(self) -> Path:
        d = self.root / str(self.i)
        self.i += 1
        return d

    def add(
        self,
        attn="cbam",
        pos="neck",
        seed=0,
        map50_95=0.40,
        *,
        status="completed",
        dataset="toy",
        model="yolo11n",
        train_key="tk1",
        curve_values=None,
        hydra=None,
        drop=(),
        **extra,
    ) -> Path:
        d = self.job_dir()
        r = empty_result(dataset=dataset, attn=attn, pos=pos, model=model, seed=seed, epochs=10, imgsz=320)
        r["status"] = status
        r["train_key"] = train_key
        if status == "completed":
            r["metrics"] = {
                "map50": None if map50_95 is None else map50_95 + 0.2,
                "map50_95": map50_95,
                "precision": 0.5,
                "recall": 0.4,
            }
            r["params"] = 2_600_000 + (0 if attn == "none" else 10_000)
            r["gflops"] = 6.5 + (0 if attn == "none" else 0.1)
        r.update(extra)
        for key in drop:
            r.pop(key, None)
        if curve_values is not None:
            (d / "train").mkdir(parents=True)
            lines = ["                  epoch,  train/box_loss,  metrics/mAP50(B),  metrics/mAP50-95(B)"]
            lines += [f"{e + 1},1.0,{v + 0.1},{v}" for e, v in enumerate(curve_values)]
            (d / "train" / "results.csv").write_text("\n".join(lines) + "\n")
            r["curve"] = "train/results.csv"
        write_result(d, r)
        if hydra is not None:
            write_hydra(d, **hydra)
        return d


def write_side_by_side(root: Path, latency: dict[Path, float], device: str = "CPU: test, 1 thread") -> None:
    """A costs.json as the cost pass (src/costs) writes it: one variant per job here, `latency` ms each."""
    variants = [{costs.JOBS: [d.name], "latency_ms": ms} for d, ms in latency.items()]
    costs.write_costs(root, {costs.DEVICE: device, costs.VARIANTS: variants})


def write_hydra(d: Path, overrides=(), choices=None, config=None):
    h = d / ".hydra"
    h.mkdir(parents=True, exist_ok=True)
    (h / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides) or "[]\n")
    lines = ["hydra:", "  runtime:", "    choices:"]
    lines += [f"      {k}: {v}" for k, v in (choices or {}).items()] or ["      {}"]
    (h / "hydra.yaml").write_text("\n".join(lines) + "\n")
    cfg = config or {}
    (h / "config.yaml").write_text("".join(f"{k}: {v}\n" for k, v in cfg.items()) or "{}\n")


def row(summary: Summary, attn: str, pos: str | None = None, **match) -> pd.Series:
    t = summary.ablation
    sel = t["attn"] == attn
    if pos is not None:
        sel &= t["pos"] == pos
    for k, v in match.items():
        sel &= t[k] == v
    assert sel.sum() == 1, f"expected one row for {attn}@{pos}, got\n{t[['dataset', 'model', 'pos', 'attn']]}"
    return t[sel].iloc[0]


def three_seed_sweep(tmp_path: Path) -> tuple[Path, list[float], list[float]]:
    sw = Sweep(tmp_path / "sweep")
    base = [0.400, 0.410, 0.420]
    var = [0.420, 0.425, 0.440]
    for s, (b, v) in enumerate(zip(base, var, strict=False)):
        sw.add("none", "neck", s, b)
        sw.add("cbam", "neck", s, v)
    return sw.root, base, var


# ----------------------------------------------------------------------------- statistics
@pytest.mark.parametrize(
    "dof,expected",
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (10, 2.228), (30, 2.042), (120, 1.980)],
)
def test_t_quantile_matches_tables(dof, expected):
    assert t_ppf(0.975, dof) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_properties():
    assert t_ppf(0.025, 4) == pytest.approx(-t_ppf(0.975, 4))
    assert t_ppf(0.5, 7) == 0.0
    assert t_ppf(0.995, 1) == pytest.approx(63.657, abs=1e-3)  # heavy tail: bracket must widen
    assert t_ppf(0.975, float("inf")) == pytest.approx(1.959964, abs=1e-6)
    assert t_ppf(0.975, 1e6) == pytest.approx(1.959966, abs=1e-5)
    assert t_ppf(0.9, 3) < t_ppf(0.9, 2.5) < t_ppf(0.9, 2)  # fractional dof (Welch): between its neighbours
    with pytest.raises(ValueError):
        t_ppf(1.0, 3)


def test_tiny_p_values_are_exact_not_zero():
    # the survival function, not 2*(1 - cdf): t = 40 on 30 dof is p = 1.3726e-27 (R: 2*pt(40, 30, lower=FALSE))
    assert t_sf_two_sided(40, 30) == pytest.approx(1.3726045e-27, rel=1e-6)
    assert 0 < t_sf_two_sided(200, 5) < 1e-10 and t_sf_two_sided(0.0, 4) == 1.0
    assert t_sf_two_sided(-2.776445, 4) == pytest.approx(0.05, abs=1e-6)


def test_paired_and_welch_functions():
    d = paired_diff([0.5, 0.6, 0.7], [0.4, 0.5, 0.5])
    diffs = np.array([0.1, 0.1, 0.2])
    half = 4.302652729749752 * diffs.std(ddof=1) / math.sqrt(3)
    assert (d.mean, d.ci_low, d.ci_high, d.test) == (
        pytest.approx(diffs.mean()),
        pytest.approx(diffs.mean() - half),
        pytest.approx(diffs.mean() + half),
        "paired",
    )
    one = paired_diff([0.5], [0.4])
    assert one.mean == pytest.approx(0.1) and math.isnan(one.ci_low) and not one.significant
    w = welch_from_moments(2.0, 1.0, 3, 1.0, 1.0, 3)  # [1, 2, 3] vs [0, 1, 2]: equal variances -> dof 4
    assert w.dof == pytest.approx(4.0)
    assert w.ci_high - w.mean == pytest.approx(2.776445 * math.sqrt(2 / 3), abs=1e-5)


def test_pareto_front():
    cost = [1.0, 2.0, 3.0, 2.5, 4.0]
    acc = [0.3, 0.5, 0.4, 0.6, 0.6]
    assert list(pareto_front(cost, acc)) == [0, 1, 3]


# ----------------------------------------------------------------------------- tables
def test_mean_std_and_paired_delta_by_hand(tmp_path):
    root, base, var = three_seed_sweep(tmp_path)
    s = aggregate([root], plots=False)
    b, v = row(s, "none"), row(s, "cbam", "neck")
    assert b["pos"] == "-" and b["n"] == 3 and v["n"] == 3
    assert b["map50_95_mean"] == pytest.approx(0.41)
    assert b["map50_95_std"] == pytest.approx(0.01)
    assert v["map50_mean"] == pytest.approx(np.mean(var) + 0.2)
    assert v["map50_95_std"] == pytest.approx(np.std(var, ddof=1))
    # by hand: d = [0.020, 0.015, 0.020]; mean 0.018333; sd 0.0028868; se = sd/sqrt(3); t(0.975, 2) = 4.3027
    d = np.array(var) - np.array(base)
    half = 4.302652729749752 * d.std(ddof=1) / math.sqrt(3)
    assert v["test"] == "paired" and v["n_pairs"] == 3
    assert v["delta_map50_95"] == pytest.approx(0.0183333, abs=1e-6)
    assert v["delta_seeds_low"] == pytest.approx(d.mean() - half, abs=1e-9)
    assert v["delta_seeds_high"] == pytest.approx(d.mean() + half, abs=1e-9)
    assert v["delta_seeds_low"] == pytest.approx(0.011162, abs=1e-5)
    assert bool(v["significant"]) is True
    assert v["delta_params"] == 10_000 and v["delta_gflops"] == pytest.approx(0.1)
    assert "41.00±1.00" in s.terminal and "+1.83 [+1.12, +2.55]" in s.terminal


def test_not_significant_when_ci_spans_zero(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed, (b, v) in enumerate([(0.40, 0.43), (0.41, 0.40), (0.42, 0.44)]):
        sw.add("none", "neck", seed, b)
        sw.add("se", "neck", seed, v)
    r = row(aggregate([sw.root], plots=False), "se")
    assert r["delta_seeds_low"] < 0 < r["delta_seeds_high"]
    assert bool(r["significant"]) is False


def test_single_seed_ci_is_na(tmp_path):
    sw = Sweep(tmp_path / "s")
    sw.add("none", "neck", 0, 0.40)
    sw.add("cbam", "neck", 0, 0.45)
    s = aggregate([sw.root], plots=False)
    r = row(s, "cbam")
    assert r["delta_map50_95"] == pytest.approx(0.05)
    assert math.isnan(r["delta_seeds_low"]) and math.isnan(r["delta_seeds_high"])
    assert bool(r["significant"]) is False
    assert "+5.00 [n/a]" in s.terminal
    assert "+5.00 [n/a]" in (sw.root / "ablation.md").read_text()


def test_baseline_deduped_across_positions(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed in range(3):
        sw.add("none", "neck", seed, 0.40 + 0.01 * seed)
        # the backbone baseline reuses the neck training: the same seed must be counted once, and the
        # original (not the reuse) is kept
        sw.add("none", "backbone", seed, 0.90, reused_from="elsewhere")
        sw.add("cbam", "neck", seed, 0.42 + 0.01 * seed)
        sw.add("cbam", "backbone", seed, 0.43 + 0.01 * seed)
    s = aggregate([sw.root], plots=False)
    base = s.ablation[s.ablation["attn"] == "none"]
    assert len(base) == 1
    assert base.iloc[0]["pos"] == "-" and base.iloc[0]["n"] == 3
    assert base.iloc[0]["map50_95_mean"] == pytest.approx(0.41)
    assert s.n_duplicates == 3
    assert row(s, "cbam", "neck")["delta_map50_95"] == pytest.approx(0.02)
    assert row(s, "cbam", "backbone")["delta_map50_95"] == pytest.approx(0.03)
    assert row(s, "cbam", "backbone")["n_pairs"] == 3


def test_baseline_needs_same_train_key_and_model(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed in range(2):
        sw.add("none", "neck", seed, 0.40, train_key="A")
        sw.add("none", "neck", seed, 0.10, train_key="B")
        sw.add("none", "neck", seed, 0.20, train_key="A", model="yolo11s")
        sw.add("cbam", "neck", seed, 0.45, train_key="A")
    s = aggregate([sw.root], plots=False)
    assert row(s, "cbam", train_key="A")["delta_map50_95"] == pytest.approx(0.05)
    assert len(s.ablation[s.ablation["attn"] == "none"]) == 3


def test_unpaired_welch_fallback(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed, v in zip((0, 1, 2), (0.40, 0.41, 0.42), strict=False):
        sw.add("none", "neck", seed, v)
    for seed, v in zip((10, 11, 12), (0.45, 0.46, 0.47), strict=False):
        sw.add("cbam", "neck", seed, v)
    s = aggregate([sw.root], plots=False)
    r = row(s, "cbam")
    assert r["test"] == "welch" and r["n_pairs"] == 0
    se = math.sqrt(1e-4 / 3 + 1e-4 / 3)  # equal variances and n -> Welch dof = 4
    assert r["delta_map50_95"] == pytest.approx(0.05)
    assert r["delta_seeds_high"] - r["delta_map50_95"] == pytest.approx(2.776445 * se, abs=1e-6)
    assert bool(r["significant"]) is True
    assert "Welch" in s.terminal and "†" in s.terminal
    assert "Welch" in (sw.root / "ablation.md").read_text()


def test_partial_seed_overlap_pairs_the_common_seeds(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed in range(3):
        sw.add("none", "neck", seed, 0.40 + 0.01 * seed)
    for seed in range(4):
        sw.add("cbam", "neck", seed, 0.42 + 0.01 * seed + (0.001 * seed))
    r = row(aggregate([sw.root], plots=False), "cbam")
    assert r["test"] == "paired" and r["n_pairs"] == 3 and r["n"] == 4
    assert r["delta_map50_95"] == pytest.approx(np.mean([0.02, 0.021, 0.022]))


def test_best_value_marked_in_every_format(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed in range(2):
        sw.add("none", "neck", seed, 0.40)
        sw.add("se_x", "neck", seed, 0.43 + 0.001 * seed)
        sw.add("cbam", "neck", seed, 0.41)
    s = aggregate([sw.root], plots=False)
    md = (sw.root / "ablation.md").read_text()
    best_line = next(ln for ln in md.splitlines() if "se\\_x" in ln)
    assert "**43.05±0.07**" in best_line  # best mAP50-95
    cbam_line = next(ln for ln in md.splitlines() if "| cbam |" in ln)
    assert "**" not in cbam_line.split("|")[6]
    base_line = next(ln for ln in md.splitlines() if "| none |" in ln)
    assert "**2.600**" in base_line  # fewest params
    term_line = next(ln for ln in s.terminal.splitlines() if "se_x" in ln)
    assert "43.05±0.07*" in term_line
    tex = (sw.root / "ablation.tex").read_text()
    assert r"\textbf{43.05$\pm$0.07}" in tex


def test_exact_csv_columns_and_runs_csv(tmp_path):
    root, _, _ = three_seed_sweep(tmp_path)
    extra = Sweep(root)
    extra.i = 100  # new job dirs next to the existing ones
    extra.add("eca", "neck", 0, None, status="failed", error="boom")
    s = aggregate([root], plots=False)
    ab = pd.read_csv(root / "ablation.csv")
    missing = [c for c in REQUIRED_CSV if c not in ab.columns]
    assert not missing, missing
    assert list(ab.columns[:4]) == ["dataset", "model", "pos", "attn"]
    assert len(ab) == 2
    runs = pd.read_csv(root / "runs.csv")
    assert len(runs) == s.n_jobs == len(s.runs)
    for col in (
        "job_dir",
        "status",
        "dataset",
        "attn",
        "pos",
        "seed",
        "map50",
        "map50_95",
        "precision",
        "recall",
        "params",
        "gflops",
        "train_key",
        "error",
    ):
        assert col in runs.columns
    assert set(runs["status"]) == {"completed", "failed"}


def test_a_new_column_is_one_entry_in_columns(tmp_path, monkeypatch):
    """README "what each common change touches": a metric result.json holds + one entry in ABLATION."""
    from src.aggregate import columns

    monkeypatch.setattr(columns, "ABLATION", [*columns.ABLATION, columns.metric("precision", "Precision", "P")])
    root, _, _ = three_seed_sweep(tmp_path)
    s = aggregate([root], plots=False)
    assert "| Precision (%) |" in (root / "ablation.md").read_text() and "Precision" in s.terminal
    assert "precision_mean" in pd.read_csv(root / "ablation.csv").columns


def test_latex_escapes_and_bolds(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed in range(2):
        sw.add("none", "neck", seed, 0.40, dataset="my_data&co")
        sw.add("coord_att", "neck_2", seed, 0.45 - 0.01 * seed, dataset="my_data&co")
    aggregate([sw.root], plots=False)
    tex = (sw.root / "ablation.tex").read_text()
    assert r"coord\_att" in tex and r"neck\_2" in tex and r"my\_data\&co" in tex
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex and r"\textbf{" in tex
    for bad in ("coord_att", "±", "Δ", "−", "†"):
        assert bad not in tex, bad
    assert tex_escape("a_b%c#d$e{f}") == r"a\_b\%c\#d\$e\{f\}"


def test_metrics_added_later_show_up(tmp_path):
    sw = Sweep(tmp_path / "s")
    latency = {}
    for seed in range(2):
        for attn in ("none", "cbam"):
            d = sw.add(attn, "neck", seed, 0.4)
            r = json.loads((d / "result.json").read_text())
            r["metrics"]["ap_small"] = 0.1 + 0.05 * (attn == "cbam")
            write_result(d, r)
            latency[d] = 2.0 + (attn == "cbam")
    write_side_by_side(sw.root, latency)
    s = aggregate([sw.root], plots=False)
    assert row(s, "cbam")["ap_small_mean"] == pytest.approx(0.15)
    assert "AP_S" in s.terminal and "Lat.(ms)" in s.terminal
    assert row(s, "cbam")["delta_latency_ms"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- robustness
def test_corrupt_missing_running_and_failed_are_listed(tmp_path):
    root, _, _ = three_seed_sweep(tmp_path)
    sw = Sweep(root)
    sw.i = 100
    sw.add("eca", "neck", 0, None, status="failed", error="RuntimeError: CUDA out of memory\nmore")
    sw.add("se", "neck", 1, None, status="running")  # its heartbeat (the file's mtime) is fresh: live
    sw.add("se", "neck", 2, None, status="running", interrupted=True, error="interrupted by SIGTERM")
    corrupt = root / "corrupt"
    corrupt.mkdir()
    (corrupt / "result.json").write_text('{"status": "compl')
    weird = root / "weird"
    weird.mkdir()
    (weird / "result.json").write_text('{"status": "exploded"}')
    listy = root / "listy"
    listy.mkdir()
    (listy / "result.json").write_text("[1, 2]")
    missing = root / "missing"
    write_hydra(missing, overrides=["attn=ca", "pos=head", "seed=2"], choices={"dataset": "toy", "model": "yolo11n"})
    s = aggregate([root], plots=False)
    assert (s.n_failed, s.n_interrupted, s.n_corrupt, s.n_missing) == (1, 2, 3, 1)
    assert s.n_problems == 7 and not s.ok
    reasons = dict(zip(s.problems["job_dir"].map(lambda p: Path(p).name), s.problems["error"], strict=False))
    assert "corrupt JSON" in reasons["corrupt"]
    assert "unknown status" in reasons["weird"]
    assert "expected a JSON object" in reasons["listy"]
    assert "no result.json" in reasons["missing"]
    assert "still running" in reasons["101"] and "interrupted by SIGTERM" in reasons["102"]
    text = s.terminal
    assert "FAILED" in text and "CUDA out of memory" in text and "more" not in text.split("CUDA out of memory")[1][:5]
    assert "MISSING" in text and "toy yolo11n ca@head seed=2" in text
    assert "INTERRUPTED" in text and "RUNNING" in text and "CORRUPT" in text
    md = (root / "ablation.md").read_text()
    assert "CUDA out of memory" in md and "no result.json" in md
    # the healthy rows still made it
    assert row(s, "cbam")["n"] == 3


def test_hydra_choices_fill_missing_keys(tmp_path):
    sw = Sweep(tmp_path / "s")
    for seed in range(2):
        sw.add(
            "none",
            "neck",
            seed,
            0.40,
            drop=("attn", "pos"),
            hydra={"overrides": [f"seed={seed}"], "choices": {"attn": "none", "pos": "neck"}},
        )
        sw.add(
            "cbam",
            "neck",
            seed,
            0.44,
            drop=("attn", "pos", "dataset"),
            hydra={"overrides": ["attn=cbam"], "choices": {"attn": "cbam", "pos": "neck", "dataset": "toy"}},
        )
    s = aggregate([sw.root], plots=False)
    r = row(s, "cbam", "neck")
    assert r["dataset"] == "toy" and r["delta_map50_95"] == pytest.approx(0.04)


def test_real_job_fields_are_flattened(tmp_path):
    """Fields src.job writes (nested dicts, lists) end up as columns of runs.csv, not crashes."""
    sw = Sweep(tmp_path / "s")
    for seed in range(2):
        for attn in ("none", "ema"):
            sw.add(
                attn,
                "neck",
                seed,
                0.4 + 0.01 * (attn == "ema"),
                attn_params={"factor": 8},
                pos_after=[6, 10],
                pos_replace=[],
                inserted_layers=[7, 11],
                params_trainable=123,
                model_yaml="m.yaml",
                versions={"python": "3.11", "torch": "2.5", "git_commit": "abc1234"},
                overrides=[f"attn={attn}", f"seed={seed}"],
                started_at="2025-01-01T00:00:00+00:00",
                finished_at="2025-01-01T01:00:00+00:00",
                train_seconds=3600,
            )
    s = aggregate([sw.root], plots=False)
    runs = pd.read_csv(sw.root / "runs.csv")
    assert {"attn_params.factor", "versions.git_commit", "pos_after", "params_trainable"} <= set(runs.columns)
    assert runs["overrides"].iloc[0].startswith("attn=")
    assert "git_commit abc1234" in (sw.root / "report.md").read_text()
    assert row(s, "ema")["delta_map50_95"] == pytest.approx(0.01)


def test_empty_and_nonexistent_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    s = aggregate([tmp_path / "empty"], plots=False)
    assert s.n_jobs == 0 and s.ablation.empty
    assert list((tmp_path / "empty").iterdir()) == [] and not s.files  # no results: nothing written
    s = aggregate([tmp_path / "nope"], tmp_path / "out", plots=False)
    assert s.n_jobs == 0 and any("nope" in n for n in s.notes)


def test_dry_run_sweep_gives_cost_table(tmp_path):
    sw = Sweep(tmp_path / "dry")
    for pos in ("neck", "backbone"):
        for attn, extra in (("none", 0), ("cbam", 25_000)):
            sw.add(
                attn,
                pos,
                0,
                None,
                status="dry_run",
                params=2_600_000 + extra,
                gflops=6.5 + extra / 1e5,
                latency_ms=3.0 + extra / 1e4,
            )
    s = aggregate([sw.root])
    assert s.ablation.empty and s.n_dry_run == 4
    cost = s.cost.set_index(["pos", "attn"])
    assert len(s.cost) == 3  # the baseline once
    assert cost.loc[("neck", "cbam"), "delta_params"] == 25_000
    assert cost.loc[("neck", "cbam"), "delta_gflops"] == pytest.approx(0.25)
    assert cost.loc[("-", "none"), "params"] == 2_600_000
    assert "cost only" in s.terminal and "+0.025" in s.terminal
    assert "Cost" in (sw.root / "report.md").read_text()
    assert (sw.root / "cost.csv").exists()
    assert not list((sw.root).glob("plots/*.png"))
    assert any("no plots" in n or "skipped" in n for n in s.notes)


def test_many_results_fast(tmp_path):
    root = tmp_path / "big"
    n = 0
    for attn in ("none", "cbam", "se", "eca", "ca"):
        for pos in ("neck", "backbone"):
            for seed in range(100):
                d = root / f"{n}"
                d.mkdir(parents=True)
                r = empty_result(dataset="toy", attn=attn, pos=pos, model="yolo11n", seed=seed, epochs=1, imgsz=64)
                r.update(
                    status="completed",
                    train_key="k",
                    metrics={"map50": 0.5, "map50_95": 0.3 + seed * 1e-4},
                    params=1000,
                    gflops=1.0,
                )
                (d / "result.json").write_text(json.dumps(r))
                n += 1
    t0 = time.perf_counter()
    s = aggregate([root], plots=False)
    elapsed = time.perf_counter() - t0
    assert s.n_jobs == 1000 and len(s.ablation) == 9 and s.n_duplicates == 100
    assert elapsed < 10, elapsed


# ----------------------------------------------------------------------------- plots
def test_plots_written_and_nonempty(tmp_path):
    sw = Sweep(tmp_path / "s")
    rng = np.random.default_rng(0)
    latency = {}
    for seed in range(2):
        for attn, pos, m in (("none", "neck", 0.40), ("cbam", "neck", 0.43), ("se", "backbone", 0.41)):
            curve = list(m * (1 - np.exp(-np.arange(1, 6) / 2)) + rng.normal(0, 0.002, 5))
            latency[sw.add(attn, pos, seed, m + 0.002 * seed, curve_values=curve)] = 1.0 + (attn != "none")
    write_side_by_side(sw.root, latency)
    aggregate([sw.root])
    pngs = sorted(p.name for p in (sw.root / "plots").glob("*.png"))
    assert pngs == [
        "toy_yolo11n_curves.png",
        "toy_yolo11n_delta.png",
        "toy_yolo11n_map_vs_gflops.png",
        "toy_yolo11n_map_vs_latency.png",
    ]
    for p in (sw.root / "plots").glob("*.png"):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    report = (sw.root / "report.md").read_text()
    assert "plots/toy_yolo11n_delta.png" in report and "## Study" in report and "Findings" in report


def test_plots_skipped_when_data_absent(tmp_path):
    sw = Sweep(tmp_path / "s")
    sw.add("cbam", "neck", 0, 0.4, gflops=None)  # no baseline, no GFLOPs, no latency, no curve
    s = aggregate([sw.root])
    assert not list(sw.root.glob("plots/*.png"))
    notes = " ".join(s.notes)
    for what in ("GFLOPs", "latency", "learning curves", "Δ plot"):
        assert what in notes, what


# ----------------------------------------------------------------------------- CLI
def test_cli_writes_files_and_exit_codes(tmp_path, capsys):
    root, _, _ = three_seed_sweep(tmp_path)
    assert cli_main([str(root), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "cbam" in out and "Δ mAP50-95" in out
    for name in ("ablation.md", "ablation.csv", "ablation.tex", "runs.csv", "report.md"):
        assert (root / name).stat().st_size > 0, name
    assert max(len(line) for line in out.splitlines() if not line.startswith("Wrote")) <= 120
    # a glob needs --out; with it, files go there
    with pytest.raises(SystemExit) as exc:
        cli_main([str(tmp_path / "sw*")])
    assert exc.value.code == 2
    assert cli_main([str(tmp_path / "sw*"), "--out", str(tmp_path / "agg"), "--quiet", "--no-plots"]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "agg" / "ablation.csv").exists()
    # strict: a failed job makes it non-zero
    (root / "zz").mkdir()
    write_result(
        root / "zz",
        dict(
            empty_result(dataset="toy", attn="eca", pos="neck", model="yolo11n", seed=0), status="failed", error="boom"
        ),
    )
    assert cli_main([str(root), "--quiet", "--no-plots"]) == 0
    assert cli_main([str(root), "--quiet", "--no-plots", "--strict"]) == 1
    (tmp_path / "empty").mkdir()
    assert cli_main([str(tmp_path / "empty"), "--quiet"]) == 2


def test_cli_names_a_missing_path_writes_nothing_without_results_and_counts_what_it_wrote(tmp_path, capsys):
    from src.visualize import main as visualize_main

    for main in (cli_main, visualize_main):
        assert main([str(tmp_path / "does-not-exist")]) == 2
        assert f"no such file or directory: {tmp_path / 'does-not-exist'}" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    for main in (cli_main, visualize_main):
        assert main([str(tmp_path / "empty")]) == 2
        assert list((tmp_path / "empty").iterdir()) == [], main.__module__
    root, _, _ = three_seed_sweep(tmp_path)
    before = set(root.rglob("*"))
    assert cli_main([str(root)]) == 0
    wrote = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Wrote ")]
    written = [p for p in set(root.rglob("*")) - before if p.is_file() and ".cache" not in p.parts]
    assert wrote == [f"Wrote {len(written)} file(s) to {root}"], sorted(map(str, written))


def test_no_aggregate_module_imports_torch_the_job_or_visualize():
    """Every module of src.aggregate (plots included; the Hydra callback aside, which draws figures)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import src.aggregate as A\n"
        "for m in pkgutil.iter_modules(A.__path__):\n"
        "    if m.name != 'hydra_callback':\n"
        "        importlib.import_module(f'src.aggregate.{m.name}')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ultralytics', 'torchvision')\n"
        "             or m.startswith(('src.job', 'src.visualize')))\n"
        "assert not bad, bad[:8]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_subprocess_does_not_import_training_code(tmp_path):
    """`python -m src.aggregate` itself pulls in no torch / ultralytics (whatever `import src` does)."""
    root, _, _ = three_seed_sweep(tmp_path)
    code = (
        "import sys, runpy\n"
        "import src\n"
        "before = set(sys.modules)\n"
        "sys.argv = ['src.aggregate', sys.argv[1], '--quiet', '--no-plots']\n"
        "rc = 0\n"
        "try:\n"
        "    runpy.run_module('src.aggregate', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "new = set(sys.modules) - before\n"
        "bad = sorted(m for m in new if m.split('.')[0] in ('torch', 'ultralytics', 'torchvision')\n"
        "             or m.startswith(('src.job', 'src.ultralytics_glue.model', 'src.ultralytics_glue.trainer'))\n"
        "             or m.startswith(('src.arch', 'src.visualize')) or m == 'src.run')\n"
        "print('RC', rc, 'BAD', bad)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-c", code, str(root)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert "RC 0 BAD []" in res.stdout, res.stdout + res.stderr
    assert (root / "ablation.csv").exists()


def test_the_hydra_callback_does_not_load_pandas_until_a_sweep_ends():
    """Every job process instantiates the callback; aggregation's imports are paid only at the end."""
    code = (
        "import sys\n"
        "from src.sweep_end import AggregateOnMultirunEnd\n"
        "AggregateOnMultirunEnd()\n"
        "print('PANDAS', 'pandas' in sys.modules)\n"
        "from src.aggregate import aggregate\n"
        "print('PANDAS', 'pandas' in sys.modules)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.stdout.split() == ["PANDAS", "False", "PANDAS", "True"], res.stdout + res.stderr


# ----------------------------------------------------------------------------- Hydra callback
def test_the_callback_passes_the_studys_aggregate_options_on(tmp_path):
    """`aggregate.rope` (pp) set by a study reaches the table's verdicts through the end-of-sweep callback."""
    from omegaconf import OmegaConf

    root, _, _ = three_seed_sweep(tmp_path)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}}, "aggregate": {"rope": 2.0, "bootstrap": 0}})
    outcome = hydra_callback.AggregateOnMultirunEnd(plots=False, quiet=True).aggregate_sweep(config)
    ropes = pd.read_csv(root / "ablation.csv")["rope"].dropna().unique()
    assert outcome.error is None and list(ropes) == [pytest.approx(0.02)]


def test_callback_writes_files_and_records_problems(tmp_path, capsys):
    from omegaconf import OmegaConf

    root, _, _ = three_seed_sweep(tmp_path)
    write_hydra(root / "never_ran", overrides=["attn=se"])
    cb = hydra_callback.AggregateOnMultirunEnd(plots=False)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}}})
    outcome = cb.aggregate_sweep(config)
    assert (root / "ablation.md").exists() and (root / "report.md").exists()
    assert outcome.n_missing == 1 and outcome.n_failed == 0 and outcome.n_problems == 1
    assert outcome.error is None and outcome.n_completed == 6 and outcome.summary.n_jobs == 7
    assert outcome.exit_code == 1
    assert "cbam" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ended:  # the sweep's exit status, after the table is out
        cb.on_multirun_end(config)
    assert ended.value.code == 1 and "cbam" in capsys.readouterr().out
    hydra_callback.AggregateOnMultirunEnd(plots=False, exit_on_problems=False).on_multirun_end(config)


def test_callback_never_raises(tmp_path, monkeypatch, caplog):
    from omegaconf import OmegaConf

    cb = hydra_callback.AggregateOnMultirunEnd()
    outcome = cb.aggregate_sweep(OmegaConf.create({"nothing": 1}))  # no hydra.sweep.dir at all
    assert outcome.error and outcome.exit_code == 1

    import src.aggregate.pipeline as pipeline

    def broken(*a, **k):
        raise RuntimeError("aggregation exploded")

    monkeypatch.setattr(pipeline, "aggregate", broken)
    outcome = cb.aggregate_sweep(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert "aggregation exploded" in outcome.error
    assert "aggregation exploded" in caplog.text


def test_callback_in_a_real_hydra_multirun(tmp_path):
    """End to end: Hydra runs two jobs that write result.json; the callback aggregates the sweep."""
    app = tmp_path / "app.py"
    app.write_text(
        "import hydra, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from hydra.core.hydra_config import HydraConfig\n"
        "from src.results import empty_result, write_result\n"
        "@hydra.main(version_base=None, config_path='conf', config_name='config')\n"
        "def main(cfg):\n"
        "    r = empty_result(dataset='toy', attn=cfg.attn, pos='neck', model='yolo11n', seed=cfg.seed)\n"
        "    r.update(status='completed', train_key='k', metrics={'map50': 0.6, 'map50_95': 0.4 + 0.01 * cfg.seed"
        " + (0.02 if cfg.attn != 'none' else 0)})\n"
        "    write_result(HydraConfig.get().runtime.output_dir, r)\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    )
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        "attn: none\nseed: 0\nhydra:\n  sweep:\n    dir: " + str(tmp_path / "multirun") + "\n"
        "  callbacks:\n    aggregate:\n      _target_: src.sweep_end.AggregateOnMultirunEnd\n"
        "      plots: false\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, str(app), "-m", "attn=none,cbam", "seed=0,1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Aggregated 4 job(s)" in res.stdout
    ab = pd.read_csv(tmp_path / "multirun" / "ablation.csv")
    cbam = ab[ab["attn"] == "cbam"].iloc[0]
    assert cbam["delta_map50_95"] == pytest.approx(0.02) and cbam["test"] == "paired"
    assert "attn=none,cbam seed=0,1" in (tmp_path / "multirun" / "report.md").read_text()


def test_rope_decides_the_verdict_from_the_cli(tmp_path):
    root, _, _ = three_seed_sweep(tmp_path)  # Δ +1.83 pp, CI [+1.12, +2.55]
    assert row(aggregate([root], plots=False), "cbam")["verdict"] == "better"  # default ±0.5 pp
    assert cli_main([str(root), "--rope", "3", "--quiet", "--no-plots"]) == 0
    table = pd.read_csv(root / "ablation.csv")
    cbam = table[table["attn"] == "cbam"].iloc[0]
    assert cbam["verdict"] == "equivalent" and cbam["rope"] == pytest.approx(0.03)
    assert cbam["seeds_needed_for"] == pytest.approx(0.03)  # min_effect defaults to the rope
    assert "±3 pp" in (root / "ablation.md").read_text()


def test_caption_says_the_evaluation_split_and_checkpoint(tmp_path):
    old = Sweep(tmp_path / "old")  # results from before the keys existed: val / best
    old.add("none", "neck", 0, 0.40)
    assert "Evaluated on the val split with the best checkpoint." in aggregate([old.root], plots=False).terminal
    new = Sweep(tmp_path / "new")
    for attn, m in (("none", 0.40), ("cbam", 0.42)):
        new.add(attn, "neck", 0, m, eval_split="test", eval_checkpoint="last")
    s = aggregate([new.root], plots=False)
    assert "Evaluated on the test split with the last checkpoint." in s.terminal
    assert "Evaluated on the test split with the last checkpoint." in (new.root / "ablation.md").read_text()
    assert "test split with the last checkpoint" in (new.root / "ablation.tex").read_text()
    assert row(s, "cbam")["eval_split"] == "test" and row(s, "cbam")["eval_checkpoint"] == "last"


def test_findings_are_written_from_verdicts(tmp_path):
    sw = Sweep(tmp_path / "s")
    base = [0.400, 0.410, 0.420, 0.415]
    deltas = {"ema": [0.0005, -0.0003, 0.0002, 0.0001], "cot": [0.030, -0.010, 0.020, 0.001]}
    for seed, b in enumerate(base):
        sw.add("none", "neck", seed, b)
        for attn, ds in deltas.items():
            sw.add(attn, "neck", seed, b + ds[seed])
    s = aggregate([sw.root], plots=False)
    assert row(s, "ema")["verdict"] == "equivalent" and row(s, "cot")["verdict"] == "undecided"
    report = (sw.root / "report.md").read_text()
    assert "`ema @ neck`: equivalent to the baseline within ±0.5 pp" in report
    cot = row(s, "cot")
    more = int(cot["seeds_needed"]) - 4
    assert (
        f"`cot @ neck`: undecided, CI [{100 * cot['delta_seeds_images_low']:+.2f}, "
        f"{100 * cot['delta_seeds_images_high']:+.2f}]"
    ) in report
    assert f"about {more} more seeds ({int(cot['seeds_needed'])} in all" in report
    assert "1 equivalent" in report and "1 undecided" in report
