"""Reading and writing `result.json`: atomic writes, a tolerant read, the skeleton and the copy.

A job writes exactly one `result.json` into its job directory, whatever happened, and the
aggregator reads nothing else (plus Hydra's `.hydra/` files where it needs the choices).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from src.files import atomic_write_json
from src.results.jobdir import RESULT_FILE
from src.results.schema import (
    DEFERRED_BECAUSE,
    DEFERRED_TO,
    ERROR,
    IDENTITY_KEYS,
    JOB_DIR,
    METRIC_KEYS,
    METRICS,
    OWN_KEYS,
    REUSED_FROM,
    RUNNING,
    SCHEMA_VERSION,
    STATUS,
    STATUSES,
    TRACEBACK,
    TRAIN_SECONDS,
)


def empty_result(**identity: Any) -> dict[str, Any]:
    """A result skeleton with every schema key present, so readers never KeyError."""
    result: dict[str, Any] = {"schema": SCHEMA_VERSION, STATUS: RUNNING}
    result.update({k: identity.get(k) for k in IDENTITY_KEYS})
    result.update({k: v for k, v in identity.items() if k not in result})
    result.setdefault(METRICS, {k: None for k in METRIC_KEYS})
    for key in ("params", "gflops", TRAIN_SECONDS, ERROR, TRACEBACK):
        result.setdefault(key, None)
    return result


def reused_result(owner: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """`job`'s result when its baseline was trained by `owner`: the owner's numbers, the job's own
    identity and place, and `reused_from` naming the owner (the tables count that training once)."""
    reused = {k: v for k, v in owner.items() if k not in (DEFERRED_TO, DEFERRED_BECAUSE)}
    reused.update({k: job[k] for k in OWN_KEYS if k in job})
    reused[REUSED_FROM] = owner.get(REUSED_FROM) or owner.get(JOB_DIR)
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
    if data.get(STATUS) not in STATUSES:
        raise ValueError(f"{path}: unknown status {data.get(STATUS)!r}; expected one of {tuple(map(str, STATUSES))}")
    data.setdefault(METRICS, {})
    return data


def read_result_or_none(job_dir: str | os.PathLike) -> dict[str, Any] | None:
    """A job dir's result, or None when it has none yet or it is unreadable (then the job runs)."""
    try:
        return read_result(Path(job_dir) / RESULT_FILE)
    except ValueError:
        return None
