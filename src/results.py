"""The `result.json` contract between running and reporting.

A job writes exactly one `result.json` into its job directory, whatever happened, and the
aggregator reads nothing else (plus Hydra's `.hydra/` files where it needs the choices). Keep this
module free of torch/ultralytics imports: reporting must work on a machine that only has the
results.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
SCHEMA_VERSION = 1

# Job outcomes. `dry_run` jobs built and measured the model without training.
COMPLETED, FAILED, DRY_RUN, RUNNING = "completed", "failed", "dry_run", "running"
STATUSES = (COMPLETED, FAILED, DRY_RUN, RUNNING)

# Keys every result carries (values may be None for a job that failed early).
IDENTITY_KEYS = ("dataset", "attn", "pos", "model", "seed", "epochs", "imgsz")
METRIC_KEYS = ("map50", "map50_95", "precision", "recall")


def empty_result(**identity: Any) -> dict[str, Any]:
    """A result skeleton with every schema key present, so readers never KeyError."""
    result: dict[str, Any] = {"schema": SCHEMA_VERSION, "status": RUNNING}
    result.update({k: identity.get(k) for k in IDENTITY_KEYS})
    result.update({k: v for k, v in identity.items() if k not in result})
    result.setdefault("metrics", {k: None for k in METRIC_KEYS})
    for key in ("params", "gflops", "train_seconds", "error", "traceback"):
        result.setdefault(key, None)
    return result


def write_result(job_dir: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write atomically: a reader (or a crash) never sees a half-written file."""
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    target = job_dir / RESULT_FILE
    fd, tmp = tempfile.mkstemp(prefix=".result.", suffix=".tmp", dir=job_dir)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(result, fh, indent=2, sort_keys=True, default=_json_default)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


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


def _json_default(value: Any) -> Any:
    # numpy scalars and paths end up in results; make them plain JSON.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)
