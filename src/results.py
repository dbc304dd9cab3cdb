"""The `result.json` contract between running and reporting.

A job writes exactly one `result.json` into its job directory, whatever happened, and the
aggregator reads nothing else (plus Hydra's `.hydra/` files where it needs the choices). Keep this
module free of torch/ultralytics imports: reporting must work on a machine that only has the
results.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from src.files import atomic_write_json

RESULT_FILE = "result.json"
SCHEMA_VERSION = 1

# Job outcomes. `dry_run` jobs built and measured the model without training. A `deferred` job is
# a `none` baseline whose twin at another position (same train_key and seed) was training it: it
# names that job in `deferred_to` and ended at once; the aggregator takes the twin's result.
COMPLETED, FAILED, DRY_RUN, RUNNING, DEFERRED = "completed", "failed", "dry_run", "running", "deferred"
STATUSES = (COMPLETED, FAILED, DRY_RUN, RUNNING, DEFERRED)

# Keys every result carries (values may be None for a job that failed early).
IDENTITY_KEYS = ("dataset", "attn", "pos", "model", "seed", "epochs", "imgsz")
METRIC_KEYS = ("map50", "map50_95", "precision", "recall")
# Top-level numeric fields that describe what a model costs (tables, W&B summary, cost plots).
COST_KEYS = ("params", "gflops", "gflops_exact", "latency_ms", "throughput_ips", "params_added")


def empty_result(**identity: Any) -> dict[str, Any]:
    """A result skeleton with every schema key present, so readers never KeyError."""
    result: dict[str, Any] = {"schema": SCHEMA_VERSION, "status": RUNNING}
    result.update({k: identity.get(k) for k in IDENTITY_KEYS})
    result.update({k: v for k, v in identity.items() if k not in result})
    result.setdefault("metrics", {k: None for k in METRIC_KEYS})
    for key in ("params", "gflops", "train_seconds", "error", "traceback"):
        result.setdefault(key, None)
    return result


# What stays the job's own when it takes its numbers from the twin that trained its baseline.
OWN_KEYS = ("job_dir", "config_hash", "pos", "pos_configured", "pos_after", "pos_replace", "overrides", "host",
            "pid", "started_at", "finished_at")


def reused_result(owner: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """`job`'s result when its baseline was trained by `owner`: the owner's numbers, the job's own
    identity and place, and `reused_from` naming the owner (the tables count that training once)."""
    reused = {k: v for k, v in owner.items() if k not in ("deferred_to", "deferred_because")}
    reused.update({k: job[k] for k in OWN_KEYS if k in job})
    reused["reused_from"] = owner.get("reused_from") or owner.get("job_dir")
    return reused


def write_result(job_dir: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write atomically: a reader (or a crash) never sees a half-written file."""
    return atomic_write_json(Path(job_dir) / RESULT_FILE, result)


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read one result; raises ValueError with the reason when it is unusable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if data.get("status") not in STATUSES:
        raise ValueError(f"{path}: unknown status {data.get('status')!r}; expected one of {STATUSES}")
    data.setdefault("metrics", {})
    return data
