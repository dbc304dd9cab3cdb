"""Build the ablation and cost tables from the runs frame, and render them (terminal, md, tex).

Rows of the ablation table are variants `(dataset, model, train_key, pos, attn)`; the baseline
(attn == "none") is one variant per (dataset, model, train_key) whatever its `pos` was, shown with
pos "-". Its duplicates (the same seed run at several positions) are merged before anything is
counted. Δ mAP50-95 compares each variant with that baseline: paired by seed when the seeds match
(mean of per-seed differences, t interval with n-1 dof), Welch otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from src.results import COMPLETED, COST_KEYS, DRY_RUN

from .stats import paired_diff, welch_from_moments

BASELINE = "none"
BASE_POS = "-"
BLOCK = ["dataset", "model", "train_key"]          # what a baseline is shared within
VARIANT = BLOCK + ["pos", "attn"]
PRIMARY = "map50_95"

# Metrics shown (in %) when measured, in this order: (column, header, tex header).
SHOWN_METRICS = [("map50", "mAP50", r"mAP$_{50}$"),
                 ("map50_95", "mAP50-95", r"mAP$_{50:95}$"),
                 ("map75", "mAP75", r"mAP$_{75}$"),
                 ("ap_small", "AP_S", r"AP$_S$"),
                 ("ap_medium", "AP_M", r"AP$_M$"),
                 ("ap_large", "AP_L", r"AP$_L$")]


# ============================================================================ preparation
def is_baseline(attn: pd.Series) -> pd.Series:
    return attn.astype(str).str.lower().eq(BASELINE)


def _finite(v) -> bool:
    """True for a real, finite number (False for None, NaN, pd.NA, strings)."""
    try:
        return v is not None and not pd.isna(v) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def prepare(runs: pd.DataFrame) -> pd.DataFrame:
    """Add the grouping keys: pos ("-" for the baseline), train_key (filled), seed_key."""
    df = runs.copy()
    if df.empty:
        for c in ("is_base", "seed_key"):
            df[c] = pd.Series(dtype=object)
        return df
    for c in COST_KEYS:  # nullable ints (params) -> float, so means and deltas are plain floats
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["is_base"] = is_baseline(df["attn"])
    df["attn"] = df["attn"].where(df["attn"].notna(), "?").astype(str)
    df.loc[df["is_base"], "attn"] = BASELINE
    df["pos"] = df["pos"].where(df["pos"].notna(), "?").astype(str)
    df.loc[df["is_base"], "pos"] = BASE_POS
    df["dataset"] = df["dataset"].where(df["dataset"].notna(), "?").astype(str)
    df["model"] = df["model"].where(df["model"].notna(), "?").astype(str)
    # Old results have no train_key: their epochs/imgsz are the best stand-in.
    legacy = ("legacy:e" + df["epochs"].astype("Int64").astype(str) + "-i"
              + df["imgsz"].astype("Int64").astype(str))
    df["train_key"] = df["train_key"].where(df["train_key"].notna(), legacy).astype(str)
    seeds = df["seed"].astype("Int64").astype(str)
    df["seed_key"] = seeds.where(df["seed"].notna(), "job:" + df["job_dir"].astype(str))
    return df


def dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One run per (variant, seed): the original training over reuses, then the latest."""
    if df.empty:
        return df, 0
    order = df.assign(_reused=df.get("reused_from", pd.Series(index=df.index, dtype=object)).notna(),
                      _fin=df.get("finished_at", pd.Series(index=df.index, dtype=object)).astype(str))
    order = order.sort_values(["_reused", "_fin", "job_dir"], ascending=[True, False, True], kind="stable")
    kept = order.drop_duplicates(VARIANT + ["seed_key"], keep="first").drop(columns=["_reused", "_fin"])
    return kept.sort_index(), len(df) - len(kept)


def _setup_labels(df: pd.DataFrame) -> dict[tuple, str]:
    """A short label per (dataset, model, train_key) when one dataset has several training setups."""
    labels: dict[tuple, str] = {}
    if df.empty:
        return labels
    blocks = df.groupby(BLOCK, sort=True).agg(epochs=("epochs", "first"), imgsz=("imgsz", "first")).reset_index()
    for (_, _), grp in blocks.groupby(["dataset", "model"]):
        if len(grp) == 1:
            labels[tuple(grp.iloc[0][BLOCK])] = ""
            continue
        texts = [f"{_int(r.epochs)}ep/{_int(r.imgsz)}px" for r in grp.itertuples()]
        if len(set(texts)) < len(texts):
            texts = [f"{t} {r.train_key[:8]}" for t, r in zip(texts, grp.itertuples())]
        for t, r in zip(texts, grp.itertuples()):
            labels[(r.dataset, r.model, r.train_key)] = t
    return labels


def _int(v) -> str:
    return "?" if v is None or pd.isna(v) else str(int(v))


# ============================================================================ ablation table
def build_ablation(runs: pd.DataFrame, metric_columns: list[str], *, bootstrap: int = 0, bootstrap_seed: int = 0,
                   cache_dir=None, min_effect: float | None = None) -> tuple[pd.DataFrame, int]:
    """The tidy ablation frame (one row per variant) and how many duplicate runs were merged.

    `bootstrap` > 0 adds each variant's test-set CI of Δ (paired image bootstrap per seed, see
    test_set.py); `min_effect` (a fraction, 0.01 = 1 pp) is the Δ the seeds-needed figure aims at
    instead of the observed one.
    """
    df = prepare(runs)
    if df.empty:
        return _empty_ablation(metric_columns), 0
    done = df[df["status"].eq(COMPLETED) & df[metric_columns].notna().any(axis=1)]
    done, n_dupes = dedupe(done)
    if done.empty:
        return _empty_ablation(metric_columns), n_dupes

    g = done.groupby(VARIANT, sort=False, dropna=False)
    table = g.size().rename("n").to_frame()
    table["seeds"] = g["seed"].agg(lambda s: " ".join(str(int(v)) for v in sorted(s.dropna())))
    stats = g[metric_columns].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    table = table.join(stats)
    costs = [c for c in COST_KEYS if c in done.columns and done[c].notna().any()]
    for c in ("params", "gflops"):
        if c not in costs:
            costs.append(c)
    cost_means = g[[c for c in costs if c in done.columns]].mean()
    table = table.join(cost_means)
    for c in costs:
        if c not in table.columns:
            table[c] = np.nan
    extra = {"epochs": ("epochs", "first"), "imgsz": ("imgsz", "first")}
    if "train_seconds" in done.columns:
        extra["train_seconds_mean"] = ("train_seconds", "mean")
    table = table.join(g.agg(**extra))
    table = table.reset_index()
    table["is_baseline"] = table["attn"].eq(BASELINE)

    table = _add_deltas(table, done)
    table = _add_test_set(table, done, bootstrap, bootstrap_seed, cache_dir)
    table = _add_multiplicity(table, min_effect)
    labels = _setup_labels(done)
    table["setup"] = [labels.get((d, m, k), "") for d, m, k in
                      zip(table["dataset"], table["model"], table["train_key"])]
    table = table.sort_values(["dataset", "model", "train_key", "is_baseline", "pos", "attn"],
                              ascending=[True, True, True, False, True, True], kind="stable")
    front = ["dataset", "model", "pos", "attn", "n", "seeds", "map50_mean", "map50_std",
             "map50_95_mean", "map50_95_std", "delta_map50_95", "delta_ci_low", "delta_ci_high",
             "delta_boot_low", "delta_boot_high", "significant", "p_value", "p_holm", "test", "n_pairs",
             "seeds_needed", "params", "gflops"]
    rest = [c for c in table.columns if c not in front]
    return table[front + rest].reset_index(drop=True), n_dupes


def _empty_ablation(metric_columns: list[str]) -> pd.DataFrame:
    cols = ["dataset", "model", "pos", "attn", "n", "seeds"]
    for m in metric_columns:
        cols += [f"{m}_mean", f"{m}_std"]
    cols += ["delta_map50_95", "delta_ci_low", "delta_ci_high", "delta_boot_low", "delta_boot_high",
             "significant", "p_value", "p_holm", "test", "n_pairs", "seeds_needed", "params", "gflops",
             "delta_params", "delta_gflops", "train_key", "setup", "is_baseline", "epochs", "imgsz"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in dict.fromkeys(cols)})


def _add_deltas(table: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    base_runs = done[done["is_base"] & done[PRIMARY].notna()]
    var_runs = done[~done["is_base"] & done[PRIMARY].notna()]
    # Per-seed differences where the seeds match: one merge for the whole table.
    pairs = var_runs[VARIANT + ["seed_key", PRIMARY]].merge(
        base_runs[BLOCK + ["seed_key", PRIMARY]], on=BLOCK + ["seed_key"], suffixes=("", "_base"))
    pairs["d"] = pairs[PRIMARY] - pairs[f"{PRIMARY}_base"]
    pair_groups = {k: v.to_numpy() for k, v in pairs.groupby(VARIANT, sort=False)["d"]}
    table = table.copy()
    table["delta_sd"] = [np.std(pair_groups[k], ddof=1) if len(pair_groups.get(k, ())) >= 2 else np.nan
                         for k in zip(*(table[c] for c in VARIANT))]
    var_groups = {k: v.to_numpy() for k, v in var_runs.groupby(VARIANT, sort=False)[PRIMARY]}
    base_moments = base_runs.groupby(BLOCK, sort=False)[PRIMARY].agg(["mean", "var", "count"])
    base_costs = table[table["is_baseline"]].set_index(BLOCK)

    out = {k: [] for k in ("delta_map50_95", "delta_ci_low", "delta_ci_high", "significant",
                           "p_value", "test", "n_pairs", "delta_params", "delta_gflops")}
    has_latency = "latency_ms" in table.columns
    if has_latency:
        out["delta_latency_ms"] = []
    for row in table.itertuples(index=False):
        block = (row.dataset, row.model, row.train_key)
        key = block + (row.pos, row.attn)
        bc = base_costs.loc[block] if block in base_costs.index else None
        out["delta_params"].append(row.params - bc["params"] if bc is not None else np.nan)
        out["delta_gflops"].append(row.gflops - bc["gflops"] if bc is not None else np.nan)
        if has_latency:
            out["delta_latency_ms"].append(row.latency_ms - bc["latency_ms"] if bc is not None else np.nan)
        diff = None
        if not row.is_baseline and block in base_moments.index and key in var_groups:
            d = pair_groups.get(key, np.empty(0))
            v = var_groups[key]
            if len(d) >= 2 or (len(d) == 1 and len(v) == 1):
                diff = paired_diff(d, np.zeros_like(d))
            else:
                bm = base_moments.loc[block]
                diff = welch_from_moments(v.mean(), v.var(ddof=1) if len(v) > 1 else math.nan, len(v),
                                          bm["mean"], bm["var"], int(bm["count"]))
        if diff is None:
            for k in ("delta_map50_95", "delta_ci_low", "delta_ci_high", "p_value"):
                out[k].append(np.nan)
            out["significant"].append(False)
            out["test"].append("")
            out["n_pairs"].append(0)
        else:
            out["delta_map50_95"].append(diff.mean)
            out["delta_ci_low"].append(diff.ci_low)
            out["delta_ci_high"].append(diff.ci_high)
            out["significant"].append(diff.significant)
            out["p_value"].append(diff.p_value)
            out["test"].append(diff.test)
            out["n_pairs"].append(diff.n if diff.test == "paired" else 0)
    for k, v in out.items():
        table[k] = v
    table["significant"] = table["significant"].astype(bool)
    table["n_pairs"] = table["n_pairs"].astype(int)
    return table


def _add_test_set(table: pd.DataFrame, done: pd.DataFrame, bootstrap: int, seed: int, cache_dir) -> pd.DataFrame:
    """delta_boot_low/high: the mean over seeds of each seed's paired bootstrap CI bounds of Δ
    mAP50-95 (variant and baseline resampled on the same images); boot_n: seeds that had one."""
    table = table.assign(delta_boot_low=np.nan, delta_boot_high=np.nan, boot_n=0)
    if not bootstrap or done.empty:
        return table
    from . import test_set

    done = done.assign(matches=[test_set.matches_path(r) for r in done.itertuples(index=False)])
    base = done[done["is_base"]][BLOCK + ["seed_key", "matches"]]
    pairs = done[~done["is_base"]][VARIANT + ["seed_key", "matches"]].merge(
        base, on=BLOCK + ["seed_key"], suffixes=("", "_base"))
    if pairs.empty:
        return table
    cis = test_set.paired_deltas(pairs, bootstrap, seed, cache_dir).dropna(subset=["boot_low", "boot_high"])
    if cis.empty:
        return table
    means = cis.groupby(VARIANT, sort=False).agg(delta_boot_low=("boot_low", "mean"),
                                                  delta_boot_high=("boot_high", "mean"),
                                                  boot_n=("boot_low", "size"))
    table = table.drop(columns=["delta_boot_low", "delta_boot_high", "boot_n"]).join(means, on=VARIANT)
    table["boot_n"] = table["boot_n"].fillna(0).astype(int)
    return table


def _add_multiplicity(table: pd.DataFrame, min_effect: float | None) -> pd.DataFrame:
    """p_holm: Holm-adjusted p-values over the variants sharing a baseline; `significant` uses it.
    seeds_needed: seeds for 80% power at the 5% level (paired t) to detect the observed Δ, or
    `min_effect`, given the observed per-seed spread of Δ (n >= 2 paired seeds)."""
    from .uncertainty import holm, seeds_needed

    table = table.assign(p_holm=np.nan, seeds_needed=np.nan)
    for _, rows in table.groupby(BLOCK, sort=False, dropna=False):
        index = rows.index[~rows["is_baseline"] & rows["p_value"].notna()]
        if len(index):
            table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy(dtype=float))
    table["significant"] = table["p_holm"].lt(0.05) & ~table["is_baseline"]
    needed = []
    for row in table.itertuples(index=False):
        effect = min_effect if min_effect else row.delta_map50_95
        n = seeds_needed(effect, row.delta_sd) if (not row.is_baseline and row.n_pairs >= 2
                                                   and _finite(effect) and _finite(row.delta_sd)) else None
        needed.append(np.nan if n is None else float(n))
    table["seeds_needed"] = needed
    table["seeds_needed_for"] = min_effect if min_effect else table["delta_map50_95"]  # the Δ aimed at
    return table


# ============================================================================ cost table
def build_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Params / GFLOPs / latency per (dataset, model, imgsz, pos, attn), with Δ vs the baseline.

    Uses every job that measured its model (completed and dry_run), so a dry-run-only sweep still
    answers "what does each attention module cost".
    """
    df = prepare(runs)
    cols = [c for c in COST_KEYS if c in df.columns]
    keys = ["dataset", "model", "imgsz", "pos", "attn"]
    if df.empty or not cols:
        return pd.DataFrame(columns=keys + ["n", "params", "gflops", "delta_params", "delta_gflops"])
    df = df[df["status"].isin([COMPLETED, DRY_RUN]) & df[cols].notna().any(axis=1)]
    if df.empty:
        return pd.DataFrame(columns=keys + ["n", "params", "gflops", "delta_params", "delta_gflops"])
    df = df.assign(imgsz=df["imgsz"].fillna(-1))
    g = df.groupby(keys, sort=False)
    table = g[cols].mean()
    table.insert(0, "n", g.size())
    if "onnx_ok" in df.columns and df["onnx_ok"].notna().any():  # exported and checked in onnxruntime
        table["onnx_ok"] = g["onnx_ok"].agg(lambda v: bool(v.dropna().astype(bool).all()) if v.notna().any() else None)
    table = table.reset_index()
    table["is_baseline"] = table["attn"].eq(BASELINE)
    base = table[table["is_baseline"]].drop_duplicates(["dataset", "model", "imgsz"]).set_index(
        ["dataset", "model", "imgsz"])[cols]
    joined = table.join(base, on=["dataset", "model", "imgsz"], rsuffix="_base")
    for c, d in (("params", "delta_params"), ("gflops", "delta_gflops"), ("latency_ms", "delta_latency_ms")):
        if c in cols:
            table[d] = joined[c] - joined[f"{c}_base"]
            table[f"{d}_pct"] = 100.0 * table[d] / joined[f"{c}_base"]
    for c in ("params", "gflops", "delta_params", "delta_gflops"):
        if c not in table.columns:
            table[c] = np.nan
    dcols = [c for c in table.columns if c.startswith("delta_")]
    table.loc[table["is_baseline"], dcols] = np.nan
    table["imgsz"] = table["imgsz"].where(table["imgsz"] >= 0)
    table = table.sort_values(["dataset", "model", "imgsz", "is_baseline", "pos", "attn"],
                              ascending=[True, True, True, False, True, True], kind="stable")
    return table.reset_index(drop=True)


# ============================================================================ rendering
@dataclass
class Column:
    key: str                  # frame column holding the value compared for "best"
    header: str
    tex: str
    fmt: Callable[[pd.Series], str]
    better: str | None        # "max" | "min" | None (not marked)
    align: str = "r"
    short: str | None = None  # terminal header when `header` is too wide for 120 columns


def _mean_std(mean_key: str, std_key: str) -> Callable[[pd.Series], str]:
    def fmt(row: pd.Series) -> str:
        m, s = row.get(mean_key), row.get(std_key)
        if not _finite(m):
            return ""
        if not _finite(s):
            return f"{100 * m:.2f}"
        return f"{100 * m:.2f}±{100 * s:.2f}"
    return fmt


def _signed(v, scale=100.0, digits=2) -> str:
    return f"{scale * v:+.{digits}f}"


def _delta(row: pd.Series) -> str:
    d = row.get("delta_map50_95")
    if not _finite(d):
        return ""
    lo, hi = row.get("delta_ci_low"), row.get("delta_ci_high")
    mark = "†" if row.get("test") == "welch" else ""
    if not (_finite(lo) and _finite(hi)) and _finite(row.get("delta_boot_low")):  # one seed: the test-set CI
        lo, hi, mark = row.get("delta_boot_low"), row.get("delta_boot_high"), "‡"
    ci = f"[{_signed(lo)}, {_signed(hi)}]" if _finite(lo) and _finite(hi) else "[n/a]"
    return f"{_signed(d)} {ci}{mark}"


def _boot(row: pd.Series) -> str:
    lo, hi = row.get("delta_boot_low"), row.get("delta_boot_high")
    return f"[{_signed(lo)}, {_signed(hi)}]" if _finite(lo) and _finite(hi) else ""


def _sig(row: pd.Series) -> str:
    if row.get("is_baseline") or not _finite(row.get("delta_map50_95")):
        return ""
    return "yes" if row.get("significant") else "no"


def _num(key: str, scale: float = 1.0, digits: int = 2, signed: bool = False) -> Callable[[pd.Series], str]:
    def fmt(row: pd.Series) -> str:
        v = row.get(key)
        if not _finite(v):
            return ""
        return f"{v * scale:+.{digits}f}" if signed else f"{v * scale:.{digits}f}"
    return fmt


def _onnx(row: pd.Series) -> str:
    ok = row.get("onnx_ok")
    return "" if ok is None or (isinstance(ok, float) and math.isnan(ok)) else ("ok" if ok else "fails")


def _has(table: pd.DataFrame, key: str) -> bool:
    return key in table.columns and table[key].notna().any()


def ablation_columns(table: pd.DataFrame) -> list[Column]:
    cols = [Column("n", "n", "$n$", lambda r: str(int(r["n"])), None)]
    for m, header, tex in SHOWN_METRICS:
        if _has(table, f"{m}_mean"):
            cols.append(Column(f"{m}_mean", f"{header} (%)", tex, _mean_std(f"{m}_mean", f"{m}_std"), "max", "c",
                               header))
    cols.append(Column("delta_map50_95", "Δ mAP50-95 (pp) [95% CI]", r"$\Delta$mAP$_{50:95}$ [95\% CI]",
                       _delta, "max", "c", "Δ mAP50-95 [95% CI]"))
    if _has(table, "delta_boot_low") and (table["n"] > 1).any():  # one-seed rows show it in the Δ column
        cols.append(Column("delta_boot_low", "test-set CI (pp)", "test-set CI", _boot, None, "c", "test-set CI"))
    cols.append(Column("significant", "sig.", "sig.", _sig, None, "c"))
    if _has(table, "params"):
        cols.append(Column("params", "Params (M)", "Params (M)", _num("params", 1e-6, 3), "min", "r", "Params(M)"))
    if _has(table, "gflops"):
        cols.append(Column("gflops", "GFLOPs", "GFLOPs", _num("gflops", 1, 2), "min"))
    if _has(table, "latency_ms"):
        cols.append(Column("latency_ms", "Latency (ms)", "Latency (ms)", _num("latency_ms", 1, 2), "min", "r", "Lat.(ms)"))
    return cols


def cost_columns(table: pd.DataFrame) -> list[Column]:
    cols = [Column("n", "jobs", "jobs", lambda r: str(int(r["n"])), None)]
    if _has(table, "params"):
        cols.append(Column("params", "Params (M)", "Params (M)", _num("params", 1e-6, 3), "min"))
        cols.append(Column("delta_params", "ΔParams (M)", r"$\Delta$Params (M)", _num("delta_params", 1e-6, 3, True), None))
        cols.append(Column("delta_params_pct", "ΔParams (%)", r"$\Delta$Params (\%)", _num("delta_params_pct", 1, 1, True), None))
    if _has(table, "gflops"):
        cols.append(Column("gflops", "GFLOPs", "GFLOPs", _num("gflops", 1, 2), "min"))
        cols.append(Column("delta_gflops", "ΔGFLOPs", r"$\Delta$GFLOPs", _num("delta_gflops", 1, 2, True), None))
        cols.append(Column("delta_gflops_pct", "ΔGFLOPs (%)", r"$\Delta$GFLOPs (\%)", _num("delta_gflops_pct", 1, 1, True), None))
    if _has(table, "gflops_exact"):  # FlopCounterMode at the job's own image size (README "How we measure")
        cols.append(Column("gflops_exact", "GFLOPs exact", "GFLOPs (exact)", _num("gflops_exact", 1, 3), "min", "r",
                           "GFLOPs@imgsz"))
    if _has(table, "latency_ms"):
        cols.append(Column("latency_ms", "Latency (ms)", "Latency (ms)", _num("latency_ms", 1, 2), "min"))
        if _has(table, "delta_latency_ms"):
            cols.append(Column("delta_latency_ms", "ΔLatency (ms)", r"$\Delta$Latency (ms)", _num("delta_latency_ms", 1, 2, True), None))
    if _has(table, "throughput_ips"):
        cols.append(Column("throughput_ips", "img/s", "img/s", _num("throughput_ips", 1, 1), "max"))
    if _has(table, "onnx_ok"):
        cols.append(Column("onnx_ok", "ONNX", "ONNX", _onnx, None, "c"))
    return cols


def best_mask(table: pd.DataFrame, columns: list[Column], within: list[str]) -> pd.DataFrame:
    """Boolean frame: True where a cell holds the best value of its column within its block."""
    mask = pd.DataFrame(False, index=table.index, columns=[c.key for c in columns])
    if table.empty:
        return mask
    for c in columns:
        if c.better is None or c.key not in table.columns:
            continue
        vals = pd.to_numeric(table[c.key], errors="coerce")
        groups = vals.groupby([table[k] for k in within], dropna=False)
        best = groups.transform(c.better)
        # a value alone in its block (a lone Δ, a single row) is trivially best: leave it unmarked
        mask[c.key] = (vals == best) & vals.notna() & (groups.transform("count") > 1)
    return mask


@dataclass
class _Grid:
    """A table ready to print: identity cells, value cells, best-value mask, block boundaries."""
    id_headers: list[str]
    id_rows: list[list[str]]
    columns: list[Column]
    cells: list[list[str]]
    mask: np.ndarray
    blocks: list[tuple]


def _grid(table: pd.DataFrame, cost: bool, drop_single_model: bool = False) -> _Grid:
    columns = cost_columns(table) if cost else ablation_columns(table)
    records = table.to_dict("records")  # plain dicts: far cheaper than iterrows
    with_setup = (not cost) and table["setup"].astype(bool).any()
    id_keys = ["model"] + (["imgsz"] if cost else []) + (["setup"] if with_setup else []) + ["pos", "attn"]
    if drop_single_model and table["model"].nunique() == 1:  # the caller names the model in the heading
        id_keys = id_keys[1:]
    id_rows = [[_int(r[k]) if k == "imgsz" else str(r[k]) for k in id_keys] for r in records]
    cells = [[c.fmt(r) for c in columns] for r in records]
    block_keys = _block_keys(table, cost)
    blocks = [tuple(r[k] for k in block_keys) for r in records]
    mask = best_mask(table, columns, block_keys).to_numpy()
    return _Grid(id_keys, id_rows, columns, cells, mask, blocks)


def _block_keys(table: pd.DataFrame, cost: bool) -> list[str]:
    return ["dataset", "model", "imgsz"] if cost else BLOCK


def render_terminal(table: pd.DataFrame, cost: bool = False) -> str:
    """Plain text, '*' marks the best value of a column (per model)."""
    if table.empty:
        return ""
    g = _grid(table, cost, drop_single_model=True)
    body = [ids + [v + ("*" if m and v else " " if c.better else "") for v, m, c in zip(vals, mrow, g.columns)]
            for ids, vals, mrow in zip(g.id_rows, g.cells, g.mask)]
    headers = g.id_headers + [c.short or c.header for c in g.columns]
    aligns = ["l"] * len(g.id_headers) + [("l" if c.align == "c" else "r") for c in g.columns]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]

    def line(vals):
        return "  ".join(v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(vals, widths, aligns)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    for i, r in enumerate(body):
        if i and g.blocks[i] != g.blocks[i - 1]:
            out.append("")
        out.append(line(r))
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|").replace("*", r"\*").replace("_", r"\_")


def render_markdown(table: pd.DataFrame, cost: bool = False) -> str:
    if table.empty:
        return ""
    g = _grid(table, cost)
    headers = g.id_headers + [c.header for c in g.columns]
    lines = ["| " + " | ".join(_md_escape(h) for h in headers) + " |",
             "|" + "|".join([":---"] * len(g.id_headers)
                            + [(":---:" if c.align == "c" else "---:") for c in g.columns]) + "|"]
    for ids, vals, mrow in zip(g.id_rows, g.cells, g.mask):
        out = [_md_escape(v) for v in ids]
        out += [f"**{v}**" if m and v else v for v, m in zip(vals, mrow)]
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


_TEX_UNICODE = {"±": r"$\pm$", "Δ": r"$\Delta$", "−": r"$-$", "†": r"$^\dagger$", "·": r"$\cdot$"}


def tex_text(text: str) -> str:
    """Escape prose for LaTeX, also the few non-ASCII symbols our notes use (pdflatex-safe)."""
    out = tex_escape(text)
    for k, v in _TEX_UNICODE.items():
        out = out.replace(k, v)
    return out


def _tex_value(text: str) -> str:
    """A formatted number cell -> LaTeX: ± as $\\pm$, signs as math signs, † as a dagger."""
    if not text:
        return ""
    out = tex_escape(text).replace("-", "$-$").replace("+", "$+$")
    return out.replace("±", r"$\pm$").replace("†", r"$^\dagger$")


_TEX_ID_HEADERS = {"model": "Model", "imgsz": "Imgsz", "setup": "Setup", "pos": "Position", "attn": "Attention"}


def render_latex(table: pd.DataFrame, dataset: str, cost: bool = False, notes: str = "") -> str:
    if table.empty:
        return ""
    g = _grid(table, cost)
    spec = "l" * len(g.id_headers) + "".join(c.align for c in g.columns)
    what = "Cost of each attention module" if cost else "Attention ablation"
    caption = (f"{what} on {tex_escape(dataset)}; best value per model in bold." if cost else
               f"{what} on {tex_escape(dataset)}: mAP in \\%, mean $\\pm$ std over $n$ seeds; "
               f"best value per model in bold.")
    label = f"tab:{'cost' if cost else 'ablation'}-{''.join(ch if ch.isalnum() else '-' for ch in dataset)}"
    out = [r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
           f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
           " & ".join([_TEX_ID_HEADERS[h] for h in g.id_headers] + [c.tex for c in g.columns]) + r" \\",
           r"\midrule"]
    for i, (ids, vals, mrow) in enumerate(zip(g.id_rows, g.cells, g.mask)):
        if i and g.blocks[i] != g.blocks[i - 1]:
            out.append(r"\midrule")
        row = [tex_escape(v) for v in ids]
        row += [f"\\textbf{{{_tex_value(v)}}}" if m and v else _tex_value(v) for v, m in zip(vals, mrow)]
        out.append(" & ".join(row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        out += [r"\par\smallskip", f"\\parbox{{\\linewidth}}{{\\footnotesize {tex_text(notes)}}}"]
    out.append(r"\end{table}")
    return "\n".join(out)


def footnote(table: pd.DataFrame, marks: str = "* in the terminal, bold in md/tex") -> str:
    """Which tests were used and what the marks mean (plain text, no markup)."""
    if table.empty:
        return ""
    variants = table.loc[~table["is_baseline"]]
    tests = variants["test"]
    n_welch = int((tests == "welch").sum())
    n_paired = int(((tests == "paired") & (variants["n_pairs"] >= 2)).sum())  # one pair: no t-test
    parts = ["n = seeds (runs after merging duplicates); mAP mean ± sample std over seeds, in %.",
             "Δ = variant − baseline 'none' of the same dataset, model and training config, in "
             "percentage points, with its 95% CI over seeds (n/a: undefined with one seed); sig. = Holm-adjusted "
             "p < 0.05 over the variants sharing the baseline (raw p in the CSV)."]
    if _has(table, "delta_boot_low"):
        parts.append("‡ / test-set CI: 95% paired bootstrap over validation images (mean over seeds of the "
                     "per-seed bounds): how much Δ depends on which images were validated, not on the seed.")
    if n_paired:
        parts.append(f"Paired t-test on per-seed differences (t with n−1 dof) for {n_paired} row(s).")
    if n_welch:
        parts.append(f"† Welch's unpaired t-test (seeds do not match the baseline) for {n_welch} row(s).")
    if not (n_paired or n_welch or (tests == "paired").any()):
        parts.append("No Δ: no completed baseline (attn=none) to compare with.")
    parts.append(f"Best value per column and model marked ({marks}).")
    return " ".join(parts)
