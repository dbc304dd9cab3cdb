"""Build the ablation and cost tables from the runs frame (pure: DataFrames in, DataFrames out).

Rows of the ablation table are variants `(dataset, model, train_key, pos, attn)`; the baseline
(attn == "none") is one variant per (dataset, model, train_key) whatever its `pos` was, shown with
pos "-". Its duplicates (the same seed run at several positions) are merged before anything is
counted. Δ mAP50-95 compares each variant with that baseline: paired by seed when the seeds match
(mean of per-seed differences, t interval with n-1 dof), Welch otherwise. columns.py says how
each column is shown, render.py writes the tables as text, Markdown and LaTeX.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from src.results import BASELINE, COMPLETED, COST_KEYS, DRY_RUN
from src.results.costs import SPREAD
from src.results.schema import (
    EVAL_CHECKPOINT,
    EVAL_DEFAULTS,
    EVAL_SPLIT,
    FINISHED_AT,
    JOB_DIR,
    LATENCY_MS,
    ONNX_CPU_MS,
    REUSED_FROM,
    TRAIN_KEY,
    TRAIN_SECONDS,
)

from .stats import paired_diff, welch_from_moments
from .uncertainty import IMAGES, SEEDS, SEEDS_IMAGES, percentiles

BASE_POS = "-"
BLOCK = ["dataset", "model", TRAIN_KEY]  # what a baseline is shared within
VARIANT = BLOCK + ["pos", "attn"]
PRIMARY = "map50_95"
DEFAULT_ROPE = 0.005  # ±0.5 pp of mAP50-95: a Δ inside it is of no practical interest
ALPHA = 0.05


# ============================================================================ preparation
def is_baseline(attn: pd.Series) -> pd.Series:
    return attn.astype(str).str.lower().eq(BASELINE)


def finite(v) -> bool:
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
    legacy = "legacy:e" + df["epochs"].astype("Int64").astype(str) + "-i" + df["imgsz"].astype("Int64").astype(str)
    df[TRAIN_KEY] = df[TRAIN_KEY].where(df[TRAIN_KEY].notna(), legacy).astype(str)
    seeds = df["seed"].astype("Int64").astype(str)
    df["seed_key"] = seeds.where(df["seed"].notna(), "job:" + df[JOB_DIR].astype(str))
    return df


def dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One run per (variant, seed): the original training over reuses, then the latest."""
    if df.empty:
        return df, 0
    order = df.assign(
        _reused=df.get(REUSED_FROM, pd.Series(index=df.index, dtype=object)).notna(),
        _fin=df.get(FINISHED_AT, pd.Series(index=df.index, dtype=object)).astype(str),
    )
    order = order.sort_values(["_reused", "_fin", JOB_DIR], ascending=[True, False, True], kind="stable")
    kept = order.drop_duplicates(VARIANT + ["seed_key"], keep="first").drop(columns=["_reused", "_fin"])
    return kept.sort_index(), len(df) - len(kept)


def setup_labels(df: pd.DataFrame) -> dict[tuple, str]:
    """A short label per (dataset, model, train_key) when one dataset has several training setups."""
    labels: dict[tuple, str] = {}
    if df.empty:
        return labels
    blocks = df.groupby(BLOCK, sort=True).agg(epochs=("epochs", "first"), imgsz=("imgsz", "first")).reset_index()
    for (_, _), grp in blocks.groupby(["dataset", "model"]):
        if len(grp) == 1:
            labels[tuple(grp.iloc[0][BLOCK])] = ""
            continue
        texts = [f"{int_text(r.epochs)}ep/{int_text(r.imgsz)}px" for r in grp.itertuples()]
        if len(set(texts)) < len(texts):
            texts = [f"{t} {r.train_key[:8]}" for t, r in zip(texts, grp.itertuples(), strict=False)]
        for t, r in zip(texts, grp.itertuples(), strict=False):
            labels[(r.dataset, r.model, r.train_key)] = t
    return labels


def int_text(v) -> str:
    """A whole number as text, "?" when missing (epochs and image sizes in labels and cells)."""
    return "?" if v is None or pd.isna(v) else str(int(v))


# ============================================================================ ablation table
def build_ablation(
    runs: pd.DataFrame,
    metric_columns: list[str],
    *,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    cache_dir=None,
    min_effect: float | None = None,
    rope: float = DEFAULT_ROPE,
) -> tuple[pd.DataFrame, int]:
    """The tidy ablation frame (one row per variant) and how many duplicate runs were merged.

    `bootstrap` > 0 adds the image level of Δ's uncertainty (paired image bootstrap per seed, see
    test_set.py) to the seed level; `rope` (a fraction, 0.005 = 0.5 pp) is the region of practical
    equivalence of the verdict; `min_effect` (a fraction; default: the rope) the Δ seeds-needed aims at.
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
    if TRAIN_SECONDS in done.columns:
        extra["train_seconds_mean"] = (TRAIN_SECONDS, "mean")
    table = table.join(g.agg(**extra))
    table = table.join(_eval_protocol(done, g))
    table = table.reset_index()
    table["is_baseline"] = table["attn"].eq(BASELINE)

    table = _add_deltas(table, done)
    table = _add_test_set(table, done, bootstrap, bootstrap_seed, cache_dir)
    table = _add_two_level(table, rope, bootstrap_seed)
    table = _add_multiplicity(table, min_effect if min_effect else rope)
    labels = setup_labels(done)
    table["setup"] = [
        labels.get((d, m, k), "") for d, m, k in zip(table["dataset"], table["model"], table[TRAIN_KEY], strict=False)
    ]
    table = table.sort_values(
        ["dataset", "model", TRAIN_KEY, "is_baseline", "pos", "attn"],
        ascending=[True, True, True, False, True, True],
        kind="stable",
    )
    front = _leading(["map50", PRIMARY])
    rest = [c for c in table.columns if c not in front]
    return table[front + rest].reset_index(drop=True), n_dupes


def _leading(metrics: list[str]) -> list[str]:
    """The ablation frame's first columns (ablation.csv's order); the rest follow as built."""
    return (
        ["dataset", "model", "pos", "attn", "n", "seeds"]
        + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
        + [
            "delta_map50_95",
            "delta_seeds_images_low",
            "delta_seeds_images_high",
            "delta_ci_covers",
            "p_improve",
            "verdict",
            "rope",
            "delta_seeds_low",
            "delta_seeds_high",
            "delta_images_low",
            "delta_images_high",
            "significant",
            "p_value",
            "p_holm",
            "test",
            "n_pairs",
            "seeds_needed",
            "seeds_needed_low",
            "seeds_needed_high",
            "seeds_needed_alpha",
            EVAL_SPLIT,
            EVAL_CHECKPOINT,
            "params",
            "gflops",
        ]
    )


def _empty_ablation(metric_columns: list[str]) -> pd.DataFrame:
    cols = _leading(metric_columns) + [
        "delta_params",
        "delta_gflops",
        TRAIN_KEY,
        "setup",
        "is_baseline",
        "epochs",
        "imgsz",
    ]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in dict.fromkeys(cols)})


def _add_deltas(table: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    base_runs = done[done["is_base"] & done[PRIMARY].notna()]
    var_runs = done[~done["is_base"] & done[PRIMARY].notna()]
    # Per-seed differences where the seeds match: one merge for the whole table.
    pairs = var_runs[VARIANT + ["seed_key", PRIMARY]].merge(
        base_runs[BLOCK + ["seed_key", PRIMARY]], on=BLOCK + ["seed_key"], suffixes=("", "_base")
    )
    pairs["d"] = pairs[PRIMARY] - pairs[f"{PRIMARY}_base"]
    pair_groups = {k: v.to_numpy() for k, v in pairs.groupby(VARIANT, sort=False)["d"]}
    table = table.copy()
    table["delta_sd"] = [
        np.std(pair_groups[k], ddof=1) if len(pair_groups.get(k, ())) >= 2 else np.nan
        for k in zip(*(table[c] for c in VARIANT), strict=False)
    ]
    var_groups = {k: v.to_numpy() for k, v in var_runs.groupby(VARIANT, sort=False)[PRIMARY]}
    base_moments = base_runs.groupby(BLOCK, sort=False)[PRIMARY].agg(["mean", "var", "count"])
    base_costs = table[table["is_baseline"]].set_index(BLOCK)

    out = {
        k: []
        for k in (
            "delta_map50_95",
            "delta_seeds_low",
            "delta_seeds_high",
            "delta_se",
            "delta_dof",
            "significant",
            "p_value",
            "test",
            "n_pairs",
            "delta_params",
            "delta_gflops",
        )
    }
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
                diff = welch_from_moments(
                    v.mean(), v.var(ddof=1) if len(v) > 1 else math.nan, len(v), bm["mean"], bm["var"], int(bm["count"])
                )
        if diff is None:
            for k in ("delta_map50_95", "delta_seeds_low", "delta_seeds_high", "delta_se", "delta_dof", "p_value"):
                out[k].append(np.nan)
            out["significant"].append(False)
            out["test"].append("")
            out["n_pairs"].append(0)
        else:
            out["delta_map50_95"].append(diff.mean)
            out["delta_seeds_low"].append(diff.ci_low)
            out["delta_seeds_high"].append(diff.ci_high)
            out["delta_se"].append(diff.se)
            out["delta_dof"].append(diff.dof)
            out["significant"].append(diff.significant)
            out["p_value"].append(diff.p_value)
            out["test"].append(diff.test)
            out["n_pairs"].append(diff.n if diff.test == "paired" else 0)
    for k, v in out.items():
        table[k] = v
    table["significant"] = table["significant"].astype(bool)
    table["n_pairs"] = table["n_pairs"].astype(int)
    return table


def _eval_protocol(done: pd.DataFrame, g) -> pd.DataFrame:
    """eval_split / eval_checkpoint per variant: what its runs were scored on (results written
    before the keys existed: val / best); several values are listed, comma-separated."""
    cols = {}
    for key, default in EVAL_DEFAULTS.items():
        values = done[key].where(done[key].notna(), default) if key in done.columns else pd.Series(default, done.index)
        cols[key] = (
            values.astype(str).groupby([done[k] for k in VARIANT], sort=False).agg(lambda v: ", ".join(sorted(set(v))))
        )
    return pd.DataFrame(cols).rename_axis(VARIANT)


def _add_test_set(table: pd.DataFrame, done: pd.DataFrame, bootstrap: int, seed: int, cache_dir) -> pd.DataFrame:
    """The image level of Δ from each seed's paired bootstrap (variant and baseline on the same
    resampled images; every seed's job drew the same images). delta_images_low/high: percentile CI
    of the mean Δ over seeds, replicate by replicate (not a mean of per-seed bounds); boot_n: seeds
    that had one; `_image_dev` (dropped later): (seeds, B), each seed's replicate Δs minus its point Δ,
    kept per seed so that the two-level interval can tell the image noise the seeds share from each
    seed's own (uncertainty.shared_image_dev)."""
    table = table.assign(delta_images_low=np.nan, delta_images_high=np.nan, boot_n=0, _image_dev=None)
    if not bootstrap or done.empty:
        return table
    from . import test_set

    done = done.assign(matches=[test_set.matches_path(r) for r in done.itertuples(index=False)])
    base = done[done["is_base"]][BLOCK + ["seed_key", "matches"]]
    pairs = done[~done["is_base"]][VARIANT + ["seed_key", "matches"]].merge(
        base, on=BLOCK + ["seed_key"], suffixes=("", "_base")
    )
    if pairs.empty:
        return table
    reps = test_set.paired_replicates(pairs, bootstrap, seed, cache_dir)
    reps = reps[reps["boot_reps"].notna()]
    found = {}
    for key, grp in reps.groupby(VARIANT, sort=False):
        if grp["boot_images"].nunique() != 1:  # scored on different image sets: replicates do not line up
            continue
        r = np.stack(grp["boot_reps"].to_list())
        mean_reps = r.mean(0)
        lo, hi = percentiles(mean_reps)
        found[key] = (lo, hi, len(r), r - grp["boot_point"].to_numpy()[:, None])
    keys = list(zip(*(table[c] for c in VARIANT), strict=True))
    for i, (col, default) in enumerate(
        (("delta_images_low", np.nan), ("delta_images_high", np.nan), ("boot_n", 0), ("_image_dev", None))
    ):
        table[col] = [found[k][i] if k in found else default for k in keys]
    table["boot_n"] = table["boot_n"].astype(int)
    return table


def _add_two_level(table: pd.DataFrame, rope: float, seed: int) -> pd.DataFrame:
    """The table's main Δ CI over seeds and images (uncertainty.two_level_interval), `p_improve`,
    what the interval covers, and the verdict against ±rope. A verdict needs the seed level: an
    image-only interval (one seed) says nothing about the next seed, so such rows get `n/a`."""
    from .sequential import CLAIMS, claim_p_values, replicate_p_values
    from .uncertainty import percentiles, two_level_replicates, verdict

    n = len(table)
    lo, hi, p = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    claims = np.full((n, len(CLAIMS)), np.nan)
    covers = np.full(n, "", dtype=object)
    paired_one = table["test"].eq("paired") & (table["n_pairs"] < 2)  # one pair: no seed level
    se = table["delta_se"].where(~paired_one).to_numpy(float)
    for i, (mean, s, dof, dev) in enumerate(
        zip(table["delta_map50_95"], se, table["delta_dof"], table["_image_dev"], strict=True)
    ):
        if table["is_baseline"].iat[i] or not finite(mean):
            continue
        reps, defined = two_level_replicates(mean, s, dof, seed=seed, seed_image_dev=dev)
        if defined:
            lo[i], hi[i] = percentiles(reps)
            p[i] = (reps > 0).mean()
            claims[i] = replicate_p_values(reps, rope)
            if finite(s) and finite(dof):  # replicates resolve p to 1/B only: never below the seed level's exact p
                claims[i] = np.fmax(claims[i], claim_p_values(mean, s, dof, rope))
        levels = [name for name, ok in ((SEEDS, finite(s) and finite(dof)), (IMAGES, dev is not None)) if ok]
        covers[i] = SEEDS_IMAGES if len(levels) == 2 else "".join(levels)
    said = verdict(lo, hi, rope)
    said = np.where(covers == IMAGES, "n/a", said)
    claims[covers == IMAGES] = np.nan  # as the verdict: one seed says nothing about the next
    claimed = {f"p_{c}": claims[:, j] for j, c in enumerate(CLAIMS)}
    interval = {"delta_seeds_images_low": lo, "delta_seeds_images_high": hi, "p_improve": p, "delta_ci_covers": covers}
    return table.drop(columns="_image_dev").assign(**claimed, **interval, verdict=said, rope=rope)


def _add_multiplicity(table: pd.DataFrame, min_effect: float) -> pd.DataFrame:
    """p_holm: Holm-adjusted p-values over the variants sharing a baseline; `significant` uses it.
    seeds_needed (with _low/_high from the sd's 95 % chi-square CI): seeds for 80 % power of a
    two-sided paired t-test to detect `min_effect` at the family's Bonferroni level α/m (the first
    Holm step; `seeds_needed_alpha`), if the true sd of the per-seed Δ equals the observed one."""
    from .uncertainty import holm, sd_interval, seeds_needed_many

    table = table.assign(p_holm=np.nan, seeds_needed_alpha=np.nan)
    for _, rows in table.groupby(BLOCK, sort=False, dropna=False):
        index = rows.index[~rows["is_baseline"] & rows["p_value"].notna()]
        if len(index):
            table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy(dtype=float))
            table.loc[index, "seeds_needed_alpha"] = ALPHA / len(index)
    table["significant"] = table["p_holm"].lt(ALPHA) & ~table["is_baseline"]
    plan = ~table["is_baseline"] & (table["n_pairs"] >= 2) & table["seeds_needed_alpha"].notna()
    sd = table["delta_sd"].where(plan).to_numpy(float)
    sd_lo, sd_hi = sd_interval(sd, table["n_pairs"].to_numpy(float))
    alpha = table["seeds_needed_alpha"].fillna(ALPHA).to_numpy(float)
    needed = seeds_needed_many(min_effect, np.r_[sd, sd_lo, sd_hi], np.r_[alpha, alpha, alpha]).reshape(3, -1)
    return table.assign(
        seeds_needed=needed[0], seeds_needed_low=needed[1], seeds_needed_high=needed[2], seeds_needed_for=min_effect
    )


# ============================================================================ cost table
def build_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Params / GFLOPs / latency per (dataset, model, imgsz, pos, attn), with Δ vs the baseline.

    Uses every job that measured its model (completed and dry_run), so a dry-run-only sweep still
    answers "what does each attention module cost".
    """
    df = prepare(runs)
    cols = [c for c in (*COST_KEYS, *SPREAD) if c in df.columns]  # SPREAD: the side-by-side timings' quartiles
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
    base = (
        table[table["is_baseline"]]
        .drop_duplicates(["dataset", "model", "imgsz"])
        .set_index(["dataset", "model", "imgsz"])[cols]
    )
    joined = table.join(base, on=["dataset", "model", "imgsz"], rsuffix="_base")
    for c, d in (
        ("params", "delta_params"),
        ("gflops", "delta_gflops"),
        (LATENCY_MS, "delta_latency_ms"),
        (ONNX_CPU_MS, "delta_onnx_cpu_ms"),
    ):
        if c in cols:
            table[d] = joined[c] - joined[f"{c}_base"]
            table[f"{d}_pct"] = 100.0 * table[d] / joined[f"{c}_base"]
    for c in ("params", "gflops", "delta_params", "delta_gflops"):
        if c not in table.columns:
            table[c] = np.nan
    dcols = [c for c in table.columns if c.startswith("delta_")]
    table.loc[table["is_baseline"], dcols] = np.nan
    table["imgsz"] = table["imgsz"].where(table["imgsz"] >= 0)
    table = table.sort_values(
        ["dataset", "model", "imgsz", "is_baseline", "pos", "attn"],
        ascending=[True, True, True, False, True, True],
        kind="stable",
    )
    return table.reset_index(drop=True)
