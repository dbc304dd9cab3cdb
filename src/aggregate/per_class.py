"""The per-class ablation table: AP per class (rows) and variant (columns), mean±std over seeds, Δ
against the baseline per class, best per class marked; built from result.json's `per_class`.

The long frame (`build_per_class`, one row per variant and class) is what per_class.csv holds;
per_class_render.py pivots it per (dataset, model, train_key) block. Torch-free, like all of
src.aggregate.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from src.results.schema import TRAIN_KEY

from . import tables as T

PER_CLASS = "per_class"
CSV_COLUMNS = [
    "dataset",
    "model",
    "pos",
    "attn",
    "class",
    "n",
    "instances",
    "ap50_mean",
    "ap50_std",
    "ap50_95_mean",
    "ap50_95_std",
    "delta_ap50_95",
]


# ============================================================================ the long frame
def build_per_class(done: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, class) over the completed runs that recorded `per_class` (`done`: the
    completed runs, prepared and deduplicated as for the ablation table).

    n counts the seeds in which the class had validation instances (its AP is undefined, null in
    result.json, otherwise); Δ AP50-95 is paired by seed over the seeds variant and baseline share
    (the mean of per-seed differences), the difference of the means when they share none.
    """
    long = _per_run(done)
    if long.empty:
        return pd.DataFrame(columns=CSV_COLUMNS + [TRAIN_KEY, "setup", "is_baseline"])
    g = long.groupby(T.VARIANT + ["class"], sort=False)
    table = g.agg(
        n=("ap50_95", "count"),
        instances=("instances", "median"),
        order=("order", "min"),
        ap50_mean=("ap50", "mean"),
        ap50_std=("ap50", "std"),
        ap50_95_mean=("ap50_95", "mean"),
        ap50_95_std=("ap50_95", "std"),
    ).reset_index()
    table["instances"] = table["instances"].fillna(0).round().astype(int)
    table["is_baseline"] = table["attn"].eq(T.BASELINE)
    table["delta_ap50_95"] = _deltas(table, long)
    labels = T.setup_labels(done)
    table["setup"] = [
        labels.get((d, m, k), "") for d, m, k in zip(table["dataset"], table["model"], table[TRAIN_KEY], strict=False)
    ]
    table = table.sort_values(
        ["dataset", "model", TRAIN_KEY, "order", "is_baseline", "pos", "attn"],
        ascending=[True, True, True, True, False, True, True],
        kind="stable",
    )
    return table[CSV_COLUMNS + [TRAIN_KEY, "setup", "is_baseline"]].reset_index(drop=True)


def _per_run(done: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, class of its dataset): AP50 / AP50-95 and instances (NaN where the class
    had no instance), and the class's place in the dataset's order."""
    prefix = f"{PER_CLASS}."
    columns = [c[len(prefix) :] for c in done.columns if c.startswith(prefix)]
    rows = []
    for r in done.to_dict("records") if columns else []:
        for i, name in enumerate(_class_names(r, columns, prefix)):
            value = _parse(r.get(prefix + name))
            rows.append(
                {
                    **{k: r[k] for k in T.VARIANT},
                    "seed_key": r["seed_key"],
                    "class": name,
                    "order": i,
                    **{k: _number(value, k) for k in ("ap50", "ap50_95", "instances")},
                }
            )
    return pd.DataFrame(rows)


def _class_names(r: dict, columns: list[str], prefix: str) -> list[str]:
    """The run's classes in its dataset's order: result.json's `class_names` (runs.csv keeps it as
    JSON); without it, the classes its per_class holds (a null entry stays None, another dataset's
    class is NaN); none for a result without per-class AP."""
    names = r.get("class_names")
    if isinstance(names, str):
        try:
            names = json.loads(names)
        except ValueError:
            names = None
    if isinstance(names, list):
        return [str(n) for n in names]
    return [c for c in columns if not (isinstance(r.get(prefix + c), float) and math.isnan(r[prefix + c]))]


def _parse(cell) -> dict | None:
    """A flattened per_class cell (a JSON object) as a dict; None for a class without instances."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return None
    return cell if isinstance(cell, dict) else None


def _number(value: dict | None, key: str) -> float:
    return float(value[key]) if isinstance(value, dict) and T.finite(value.get(key)) else math.nan


def _deltas(table: pd.DataFrame, long: pd.DataFrame) -> list[float]:
    """Δ AP50-95 per (variant, class) row; NaN for the baseline and where either side is undefined."""
    keys = T.BLOCK + ["class"]
    base = long[long["attn"].eq(T.BASELINE) & long["ap50_95"].notna()]
    base_by_seed = {k: v.set_index("seed_key")["ap50_95"] for k, v in base.groupby(keys, sort=False)}
    var_by_seed = {
        k: v.set_index("seed_key")["ap50_95"]
        for k, v in long[long["ap50_95"].notna()].groupby(T.VARIANT + ["class"], sort=False)
    }
    out = []
    for r in table.to_dict("records"):
        b = base_by_seed.get(tuple(r[k] for k in keys))
        v = var_by_seed.get(tuple(r[k] for k in T.VARIANT + ["class"]))
        if r["attn"] == T.BASELINE or b is None or v is None:
            out.append(math.nan)
            continue
        common = v.index.intersection(b.index)
        out.append(float((v[common] - b[common]).mean()) if len(common) else float(v.mean() - b.mean()))
    return out


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """per_class.csv: CSV_COLUMNS, plus `setup` when a dataset has several training setups."""
    columns = CSV_COLUMNS + (["setup"] if table["setup"].astype(bool).any() else [])
    return table[columns]
