"""ultralytics' metric names and its per-epoch `results.csv`, read without importing ultralytics.

The one place that spells ultralytics' key strings (`metrics/mAP50-95(B)` ...): the job, the W&B
tracker and the aggregator's learning curves all read them from here. Torch-free on purpose: the
aggregator imports it.
"""

from __future__ import annotations

import csv
import os

from src.results import METRIC_KEYS

# ultralytics' validation metric names (train() result, results.csv columns) -> ours (result.json `metrics`)
ULTRALYTICS_METRICS = dict(
    zip(
        ("metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/precision(B)", "metrics/recall(B)"),
        METRIC_KEYS,
        strict=True,
    )
)
FITNESS_COLUMN = "metrics/mAP50-95(B)"  # ultralytics' fitness: the best checkpoint maximises it
EPOCH_COLUMN = "epoch"
TIME_COLUMN = "time"  # cumulative seconds since the start of training


def read_results_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a results.csv as {stripped column: float}; cells that are not numbers are left
    out of their row. [] when the file is missing or unreadable."""
    rows: list[dict[str, float]] = []
    try:
        with open(path, newline="") as fh:
            for raw in csv.DictReader(fh):
                row = {}
                for key, value in raw.items():
                    try:
                        row[str(key).strip()] = float(value)
                    except (TypeError, ValueError):
                        continue
                rows.append(row)
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
    return rows


def curve(rows: list[dict[str, float]], column: str = FITNESS_COLUMN) -> tuple[list[float], list[float]]:
    """(epochs, values) of one column; an epoch without the column is skipped."""
    xs, ys = [], []
    for i, row in enumerate(rows):
        if column in row:
            xs.append(row.get(EPOCH_COLUMN, float(i + 1)))
            ys.append(row[column])
    return xs, ys


def best_epoch(rows: list[dict[str, float]]) -> int | None:
    """The epoch with the highest fitness (the first of a tie), as ultralytics picks best.pt."""
    epochs, values = curve(rows)
    return int(epochs[values.index(max(values))]) if values else None


def epoch_seconds(rows: list[dict[str, float]]) -> list[float]:
    """Per-epoch durations (the `time` column is cumulative)."""
    cumulative = [row[TIME_COLUMN] for row in rows if TIME_COLUMN in row]
    return [b - a for a, b in zip([0.0, *cumulative[:-1]], cumulative, strict=False)]
