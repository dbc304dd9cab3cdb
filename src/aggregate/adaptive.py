"""The adaptive sweeper's record (`adaptive.json` in the sweep dir) and what the table shows of it.

The sweeper writes the record after every look; the table reads it when it aggregates that sweep
dir: per row the seeds it got, the round it stopped in, why (`decided`, `max seeds`, `budget`) and
the sequential verdict, and one closing line comparing the trainings with the fixed design's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from src.files import atomic_write_json
from src.results.jobdir import ADAPTIVE_RECORD

from .tables import VARIANT

ROWS, TRAININGS, FIXED, ROUNDS, SETTINGS = "rows", "trainings", "fixed_trainings", "rounds", "settings"
# per row: the variant's table key (VARIANT), the grid point, and how it ended
POINT, SEEDS, ROUND, STOP, VERDICT = "point", "seeds", "round", "stop", "verdict"
COLUMNS = {SEEDS: "adaptive_seeds", ROUND: "adaptive_round", STOP: "adaptive_stop", VERDICT: "adaptive_verdict"}


def write_record(sweep_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(sweep_dir) / ADAPTIVE_RECORD
    atomic_write_json(path, record)
    return path


def read_record(sweep_dir: str | Path | None) -> dict[str, Any] | None:
    """The record of an adaptive sweep in `sweep_dir`, None where there is none (or it is unreadable)."""
    if sweep_dir is None:
        return None
    try:
        record = json.loads((Path(sweep_dir) / ADAPTIVE_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get(ROWS), list) else None


def add_columns(ablation: pd.DataFrame, record: dict[str, Any] | None) -> pd.DataFrame:
    """The ablation frame with adaptive_seeds / _round / _stop / _verdict for the rows the record names."""
    if record is None or ablation.empty:
        return ablation
    by_key = {tuple(str(r.get(k)) for k in VARIANT): r for r in record[ROWS] if all(k in r for k in VARIANT)}
    out = ablation.copy()
    keys = [tuple(str(v) for v in key) for key in zip(*(out[k] for k in VARIANT), strict=True)]
    for field, column in COLUMNS.items():
        out[column] = [by_key[k].get(field) if k in by_key else None for k in keys]
    return out


def closing_line(record: dict[str, Any] | None) -> str:
    """`adaptive: 14 trainings in 3 rounds against 18 for the fixed design with seeds.max=6 (78 %)`."""
    if record is None:
        return ""
    used, fixed, settings = record.get(TRAININGS), record.get(FIXED), record.get(SETTINGS) or {}
    if not used or not fixed:
        return ""
    stops = pd.Series([r.get(STOP) or "still open" for r in record[ROWS]]).value_counts()
    return (
        f"adaptive: {used} trainings in {record.get(ROUNDS)} round(s) against {fixed} for the fixed design with "
        f"seeds.max={settings.get('max')} ({100 * used / fixed:.0f} %); rows: "
        + ", ".join(f"{n} {reason}" for reason, n in stops.items())
    )
