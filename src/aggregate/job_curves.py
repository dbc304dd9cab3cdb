"""What the plots read from a job dir besides result.json: its learning curve (ultralytics'
results.csv) and its final validation's PR curve (pr_curve.csv).

The only module of src.aggregate that knows ultralytics' file and column names; it takes them,
torch-free, from src.ultralytics_glue.names.
"""

from __future__ import annotations

import os

import numpy as np

from src.results import RESULTS_CSV
from src.ultralytics_glue import names

CURVE_COLUMN = names.FITNESS_COLUMN  # the results.csv column a learning curve plots (mAP50-95)


def read_curve(job_dir: str, curve: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(epochs, mAP50-95) from an ultralytics results.csv; None when absent or unreadable."""
    candidates = [curve] if isinstance(curve, str) and curve else []
    candidates += [str(RESULTS_CSV), RESULTS_CSV.name]
    for rel in candidates:
        path = rel if os.path.isabs(rel) else os.path.join(job_dir, rel)
        if os.path.isfile(path):
            xs, ys = names.curve(names.read_results_csv(path))
            return (np.asarray(xs), np.asarray(ys)) if xs else None
    return None


def read_pr_curve(job_dir: str, name) -> tuple[np.ndarray, np.ndarray] | None:
    """(recall, precision) of a job's final validation (`pr_curve_file` in result.json); None when
    the job has none."""
    if not isinstance(name, str) or not name:
        return None
    path = name if os.path.isabs(name) else os.path.join(job_dir, name)
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError):
        return None
    return (data[:, 0], data[:, 1]) if data.size else None
