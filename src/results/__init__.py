"""The `result.json` contract between running and reporting: its schema (statuses, keys, the
baseline's name), the paths inside a job dir, and the atomic read/write.

Every other module reads and writes results and job-dir paths through this package. It imports
neither torch nor ultralytics: the aggregator runs on a machine that only has the results.
"""

from __future__ import annotations

from src.results.io import empty_result, read_result, read_result_or_none, reused_result, write_result
from src.results.jobdir import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    MATCHES_FILE,
    PR_CURVE_FILE,
    RESULT_FILE,
    RESULTS_CSV,
    RUN_LOG,
    JobDir,
)
from src.results.schema import (
    BASELINE,
    COMPLETED,
    CORRUPT,
    COST_KEYS,
    DEFERRED,
    DRY_RUN,
    FAILED,
    IDENTITY_KEYS,
    JOB_COST_KEYS,
    METRIC_KEYS,
    MISSING,
    OWN_KEYS,
    PROBLEMS,
    RUNNING,
    SCHEMA_VERSION,
    STATUSES,
    TERMINAL,
    Status,
)

__all__ = [
    "BASELINE",
    "BEST_CHECKPOINT",
    "COMPLETED",
    "CORRUPT",
    "COST_KEYS",
    "JOB_COST_KEYS",
    "DEFERRED",
    "DRY_RUN",
    "FAILED",
    "IDENTITY_KEYS",
    "LAST_CHECKPOINT",
    "MATCHES_FILE",
    "METRIC_KEYS",
    "MISSING",
    "OWN_KEYS",
    "PROBLEMS",
    "PR_CURVE_FILE",
    "RESULTS_CSV",
    "RESULT_FILE",
    "RUNNING",
    "RUN_LOG",
    "SCHEMA_VERSION",
    "STATUSES",
    "TERMINAL",
    "JobDir",
    "Status",
    "empty_result",
    "read_result",
    "read_result_or_none",
    "reused_result",
    "write_result",
]
