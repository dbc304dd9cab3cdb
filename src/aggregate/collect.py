"""Find and read every job of one or more sweeps into one tidy DataFrame (one row per job).

A *job dir* is a directory holding `result.json` and/or Hydra's `.hydra/`. Jobs that have a
`.hydra/` but no `result.json` never finished (status `missing`); unreadable results get status
`corrupt`; both keep their reason in `error` and never stop the aggregation. A `deferred` job (a
baseline whose twin at another position trained it) is resolved here to that twin's result, or,
when the twin failed, died or vanished, to a problem row saying so (see `resolve_deferred`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from src.results import (
    COMPLETED,
    CORRUPT,
    COST_KEYS,
    DEFERRED,
    FAILED,
    IDENTITY_KEYS,
    METRIC_KEYS,
    MISSING,
    PROBLEMS,
    RESULT_FILE,
    RUNNING,
    read_result,
    reused_result,
)
from src.results.schema import (
    CONFIG_HASH,
    DEFERRED_TO,
    FINISHED_AT,
    JOB_DIR,
    LEGACY_JOB_KEYS,
    REUSED_FROM,
    STARTED_AT,
    TRAIN_KEY,
    TRAIN_SECONDS,
)
from src.sweep.discover import HYDRA_DIR, discover

PROBLEM_STATUSES = PROBLEMS

# Identity keys that Hydra can fill in when an (old or early-failed) result lacks them.
_HYDRA_FILLABLE = ("dataset", "model", "attn", "pos", "seed")
# Config-group names that may carry a choice, per identity key.
_CHOICE_ALIASES = {
    "dataset": ("dataset", "data"),
    "model": ("model",),
    "attn": ("attn", "attention"),
    "pos": ("pos", "position", "placement"),
}

# Columns every runs frame has, in this order (more follow: other metrics, versions.*, extras).
BASE_COLUMNS = [
    JOB_DIR,
    "status",
    *IDENTITY_KEYS,
    TRAIN_KEY,
    CONFIG_HASH,
    *METRIC_KEYS,
    "params",
    "gflops",
    TRAIN_SECONDS,
    "error",
    "traceback",
    "curve",
    REUSED_FROM,
    STARTED_AT,
    FINISHED_AT,
    "overrides",
    "result_file",
]


@dataclass
class Collected:
    runs: pd.DataFrame
    metric_columns: list[str]  # flattened metric names seen, METRIC_KEYS first
    searched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # PATHs that exist nowhere / matched nothing


# ------------------------------------------------------------------------------------ hydra
def load_yaml(path: Path) -> Any:
    import yaml  # PyYAML ships with omegaconf; only needed for old/partial jobs

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=loader)
    except (OSError, yaml.YAMLError):
        return None


def _parse_value(text: str) -> Any:
    text = text.strip().strip("'\"")
    try:
        return int(text)
    except ValueError:
        return text


def hydra_identity(job_dir: str | os.PathLike) -> dict[str, Any]:
    """Identity keys recovered from `.hydra/` (overrides, then runtime choices, then config)."""
    hdir = Path(job_dir) / HYDRA_DIR
    found: dict[str, Any] = {}
    if not hdir.is_dir():
        return found
    overrides = load_yaml(hdir / "overrides.yaml")
    if isinstance(overrides, list):
        found["overrides"] = [str(o) for o in overrides]
        for item in overrides:
            key, sep, value = str(item).lstrip("+~").partition("=")
            if not sep:
                continue
            key = key.split("@")[0].strip()
            for ident in (*IDENTITY_KEYS, "seed"):
                if key == ident or key in _CHOICE_ALIASES.get(ident, ()):
                    found.setdefault(ident, _parse_value(value))
    if all(found.get(k) is not None for k in _HYDRA_FILLABLE):
        return found
    hydra_cfg = load_yaml(hdir / "hydra.yaml")
    choices = {}
    if isinstance(hydra_cfg, dict):
        choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    for ident, aliases in _CHOICE_ALIASES.items():
        for alias in aliases:
            if found.get(ident) is None and choices.get(alias) is not None:
                found[ident] = choices[alias]
    config = load_yaml(hdir / "config.yaml")
    if isinstance(config, dict):
        sections = [config] + [v for v in config.values() if isinstance(v, dict)]
        for ident in ("seed", "epochs", "imgsz"):
            for sec in sections:
                if found.get(ident) is None and isinstance(sec.get(ident), (int, float)):
                    found[ident] = sec[ident]
        for ident in ("dataset", "model", "attn", "pos"):
            for sec in sections:
                val = sec.get(ident)
                if found.get(ident) is None and isinstance(val, str):
                    found[ident] = val
                elif found.get(ident) is None and isinstance(val, dict) and isinstance(val.get("name"), str):
                    found[ident] = val["name"]
    return found


# ------------------------------------------------------------------------------------ records
def _flatten(result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in result.items():
        if key == "metrics" and isinstance(value, dict):
            for mk, mv in value.items():
                row[mk if mk not in result else f"metrics.{mk}"] = mv
        elif isinstance(value, dict):
            for sk, sv in value.items():
                row[f"{key}.{sk}"] = sv if not isinstance(sv, (dict, list)) else json.dumps(sv, sort_keys=True)
        elif key == "overrides" and isinstance(value, list):
            row[key] = " ".join(map(str, value))
        elif isinstance(value, list):
            row[key] = json.dumps(value)
        else:
            row[key] = value
    return row


def _read_one(path: str, metric_names: set[str]) -> dict[str, Any]:
    job_dir = os.path.dirname(path)  # discover() returns absolute paths
    try:
        result = read_result(path)
    except ValueError as exc:
        reason = str(exc)
        prefix = f"{path}: "
        reason = reason[len(prefix) :] if reason.startswith(prefix) else reason
        row = {"status": CORRUPT, "error": reason}
        row.update(_identity_from_hydra(job_dir, row))
        row[JOB_DIR], row["result_file"] = job_dir, path
        return row
    except OSError as exc:  # unreadable file (permissions, vanished mid-scan)
        row = {"status": CORRUPT, "error": f"unreadable ({exc.strerror or exc})"}
        row.update(_identity_from_hydra(job_dir, row))
        row[JOB_DIR], row["result_file"] = job_dir, path
        return row
    if result["status"] == DEFERRED:
        result = resolve_deferred(result, job_dir)
    elif result["status"] == RUNNING and not result.get("error") and still_running(result, job_dir):
        from src.sweep.state import whereabouts

        result["error"] = f"still running ({whereabouts(Path(job_dir), result)})"
    if not isinstance(result.get("metrics"), dict):
        result["metrics"] = {}
    metric_names.update(k if k not in result else f"metrics.{k}" for k in result["metrics"])
    row = _flatten(legacy_job_timing(result))
    if JOB_DIR in row and row[JOB_DIR] != job_dir:
        row["job_dir_recorded"] = row[JOB_DIR]
    row[JOB_DIR], row["result_file"] = job_dir, path
    if any(row.get(k) is None for k in _HYDRA_FILLABLE) and os.path.isdir(os.path.join(job_dir, HYDRA_DIR)):
        for k, v in _identity_from_hydra(job_dir, row).items():
            if row.get(k) is None:
                row[k] = v
    return row


def legacy_job_timing(result: dict[str, Any]) -> dict[str, Any]:
    """A result from before the cost pass has the job's own timing under the pass's names: read it
    as the job's (a diagnostic), so only the side-by-side pass ever fills the table's columns."""
    moved = {job: result[old] for old, job in LEGACY_JOB_KEYS.items() if old in result and job not in result}
    if not moved:
        return result
    return {**{k: v for k, v in result.items() if k not in LEGACY_JOB_KEYS}, **moved}


def resolve_deferred(result: dict[str, Any], job_dir: str) -> dict[str, Any]:
    """A deferred job's row: its twin's result when that completed (with `reused_from`, as if the
    job had copied it), else the job as a problem naming the twin and what became of it."""
    from src.sweep.state import whereabouts

    recorded = Path(str(result.get(DEFERRED_TO)))
    owner_dir = recorded if recorded.is_dir() else Path(job_dir).parent / recorded.name  # a moved sweep
    named = f"baseline deferred to {recorded.name}"
    try:
        owner = read_result(owner_dir / RESULT_FILE)
    except (ValueError, OSError) as exc:
        reason = str(exc).removeprefix(f"{owner_dir / RESULT_FILE}: ")
        return {
            **result,
            "status": MISSING,
            "error": f"{named}, which has no usable result ({reason}); the next run of the sweep trains it",
        }
    if owner["status"] == COMPLETED:
        return reused_result({**owner, JOB_DIR: str(owner_dir)}, result)
    if owner["status"] == FAILED:
        return {
            **result,
            "status": FAILED,
            "error": f"{named}, which failed: {owner.get('error')}; the next run of the sweep trains it again",
        }
    if owner["status"] == RUNNING and still_running(owner, str(owner_dir)):
        return {**result, "status": RUNNING, "error": f"{named}, still running ({whereabouts(owner_dir, owner)})"}
    if owner["status"] == RUNNING:
        return {
            **result,
            "status": RUNNING,
            "error": f"{named}, which stopped ({whereabouts(owner_dir, owner)}); the next run of the sweep resumes it",
        }
    return {
        **result,
        "status": MISSING,
        "error": f"{named}, which holds a {owner['status']} result; the next run of the sweep trains it",
    }


def still_running(result: dict[str, Any], job_dir: str) -> bool:
    """A `running` result whose job is live (heartbeat within its `stale_after`), not interrupted."""
    from src.sweep.state import is_live, stale_after_of

    return is_live(Path(job_dir), result, stale_after_of(result))


def _identity_from_hydra(job_dir: str, row: dict[str, Any]) -> dict[str, Any]:
    ident = hydra_identity(job_dir)
    if "overrides" in ident:
        ident["overrides"] = " ".join(ident["overrides"])
    return {k: v for k, v in ident.items() if row.get(k) is None}


def _orphan(job_dir: str) -> dict[str, Any]:
    row = {"status": MISSING, "error": "no result.json (job never finished or was killed)"}
    row.update(_identity_from_hydra(job_dir, row))
    row[JOB_DIR] = os.path.abspath(job_dir)
    return row


def collect(paths: Iterable[str | os.PathLike]) -> Collected:
    """Read every result below `paths` (dirs, globs or result files) into one frame."""
    paths = [os.fspath(p) for p in paths]
    result_files, orphans, unmatched = discover(paths)
    metric_names: set[str] = set()
    rows = [_read_one(p, metric_names) for p in result_files]
    rows.extend(_orphan(d) for d in orphans)
    runs = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    for col in BASE_COLUMNS:
        if col not in runs.columns:
            runs[col] = None
    metric_cols = list(METRIC_KEYS) + sorted(metric_names - set(METRIC_KEYS))
    ordered = BASE_COLUMNS + [c for c in runs.columns if c not in BASE_COLUMNS]
    runs = runs[ordered]
    for col in metric_cols:
        if col not in runs.columns:
            runs[col] = float("nan")
    runs = _normalise(runs, metric_cols)
    return Collected(runs=runs, metric_columns=metric_cols, searched=paths, unmatched=unmatched)


def _normalise(runs: pd.DataFrame, metric_cols: list[str]) -> pd.DataFrame:
    if runs.empty:
        return runs
    runs = runs.copy()
    for col in ("dataset", "model", "attn", "pos", "status", TRAIN_KEY):
        runs[col] = runs[col].astype(object).where(runs[col].notna(), None)
    num_cols = [
        "seed",
        "epochs",
        "imgsz",
        "params",
        "gflops",
        TRAIN_SECONDS,
        *METRIC_KEYS,
        *[c for c in COST_KEYS if c in runs.columns],
    ]
    for col in num_cols:
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    for col in ("seed", "epochs", "imgsz", "params"):
        vals = runs[col]
        if vals.notna().any() and (vals.dropna() % 1 == 0).all():
            runs[col] = vals.astype("Int64")
    for col in metric_cols:
        if runs[col].dtype == object:
            runs[col] = pd.to_numeric(runs[col], errors="coerce")
    runs = runs.sort_values(
        ["dataset", "model", "attn", "pos", "seed", JOB_DIR], na_position="last", kind="stable"
    ).reset_index(drop=True)
    return runs
