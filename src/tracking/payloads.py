"""What goes into a W&B run, shaped from our data: config scalars, history rows, summary, tags, tables.

Pure functions of plain data (pandas is imported only by the table shapers); nothing here talks
to W&B.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from src.tracking.keys import (
    ATTN,
    DATASET,
    EPOCH,
    ERROR,
    METRIC_PREFIX,
    MODEL,
    POS,
    RUN_CONFIG_KEYS,
    STATUS,
    SUMMARY_SCALARS,
    TRADEOFF_X,
    TRADEOFF_Y,
    ULTRALYTICS_KEYS,
)


def identity_scalars(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """attn, pos, dataset, model (their names) and seed, from a resolved job config."""
    out: dict[str, Any] = {}
    for key in RUN_CONFIG_KEYS:
        value = cfg.get(key)
        if isinstance(value, Mapping):
            value = value.get("name")
        if value is not None:
            out[key] = value
    return out


def epoch_row(epoch: int, values: Mapping[str, Any]) -> dict[str, float]:
    """A history row: our key names, numbers only, `epoch` set."""
    row: dict[str, Any] = {}
    for key, value in values.items():
        key = str(key).strip()
        if key in (EPOCH, ""):
            continue
        number = _number(value)
        if number is not None:
            row[ULTRALYTICS_KEYS.get(key, key)] = number
    row[EPOCH] = int(epoch)
    return row


def summary_from_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """The run summary from a result.json dict: metrics/<name>, cost figures, status, error."""
    out: dict[str, Any] = {}
    for key, value in dict(result.get("metrics") or {}).items():
        number = _number(value)
        if number is not None:
            out[METRIC_PREFIX + str(key)] = number
    for key in SUMMARY_SCALARS:
        number = _number(result.get(key))
        if number is not None:
            out[key] = number
    if result.get(STATUS) is not None:
        out[STATUS] = str(result[STATUS])
    if result.get(ERROR):
        out[ERROR] = str(result[ERROR])[:2000]
    return out


def clean_tags(tags: Sequence[Any]) -> list[str]:
    """Strings, stripped, at most 64 characters (W&B's limit), no empties, no duplicates."""
    out: list[str] = []
    for tag in tags or ():
        if tag is None:
            continue
        text = str(tag).strip()[:64]
        if text and text not in out:
            out.append(text)
    return out


def plain(cfg: Any) -> dict[str, Any]:
    """A JSON-able plain dict from a dict or an OmegaConf config."""
    if cfg is None:
        return {}
    if not isinstance(cfg, dict) and type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    return json.loads(json.dumps(cfg, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


# ------------------------------------------------------------------------------ aggregate tables
def tradeoff_frame(table: Any):
    """gflops, map50_95, label per row of an ablation table (rows missing either are dropped)."""
    import pandas as pd

    def column(*names):
        for n in names:
            if n in table.columns:
                return pd.to_numeric(table[n], errors="coerce")
        return pd.Series([float("nan")] * len(table), index=table.index)

    def label(row) -> str:
        attn, pos = str(row.get(ATTN, "?")), str(row.get(POS, "") or "")
        text = attn if pos in ("", "-", "nan", "None") else f"{attn}@{pos}"
        return " ".join([*(str(row[c]) for c in varying), text])

    varying = [c for c in (DATASET, MODEL) if c in table.columns and table[c].astype(str).nunique() > 1]
    labels = [label(row) for _, row in table.iterrows()]
    frame = pd.DataFrame(
        {TRADEOFF_X: column("gflops", "gflops_mean"), TRADEOFF_Y: column("map50_95_mean", "map50_95"), "label": labels},
        index=table.index,
    )
    return frame.dropna().reset_index(drop=True)


def table_frame(table: Any):
    """A copy W&B can type: numbers as floats, booleans kept, anything else as strings (None kept)."""
    import numpy as np
    import pandas as pd

    frame = table.copy().reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_bool_dtype(col) and col.dtype == bool:
            continue
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            frame[c] = pd.Series([None if _missing(v) else float(v) for v in col], dtype=object)
            continue
        present = [v for v in col if not _missing(v)]
        if present and all(isinstance(v, (bool, np.bool_)) for v in present):
            frame[c] = pd.Series([None if _missing(v) else bool(v) for v in col], dtype=object)
        elif present and all(isinstance(v, (int, float, np.number)) for v in present):
            frame[c] = pd.Series([None if _missing(v) else float(v) for v in col], dtype=object)
        else:
            frame[c] = pd.Series([None if _missing(v) else str(v) for v in col], dtype=object)
    return frame


# -------------------------------------------------------------------------------------- helpers
def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _missing(value: Any) -> bool:
    try:
        import pandas as pd

        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
