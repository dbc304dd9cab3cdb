"""Weights & Biases tracking: one run per job, one aggregate run per sweep, never a failed training.

Run layout (`logger=wandb`, conf/logger/wandb.yaml):

* one run per job, written under `<job_dir>/wandb/` (offline: `offline-run-*/run-<id>.wandb`),
  finished at the end of the job, so a basic-launcher sweep (all jobs in one process) still gives
  one run per job. project = `logger.project`, group = the sweep id, job_type = "train",
  name = the job's overrides ("attn=cot,pos=neck,seed=1"), tags = dataset, model, attn, pos
  (+ `logger.tags`).
* config: the five identity keys as top-level scalars (`attn`, `pos`, `dataset`, `model`,
  `seed`: the names, e.g. attn="ema"), for parallel-coordinates panels and filters, and the full
  resolved Hydra config under `cfg` (so `cfg.train.lr0`, `cfg.attn.params.factor`, ...). The
  scalars never collide with the nested config that way.
* history: one row per epoch, `epoch` is the step metric (define_metric); ultralytics' names are
  mapped to ours (`metrics/mAP50-95(B)` -> `metrics/map50_95`); losses (`train/*`, `val/*`) and
  learning rates (`lr/pg0`...) keep theirs.
* summary: the final metrics (`metrics/<name>` from result.json, the same keys as the history),
  params, gflops, gflops_exact, latency_ms, ... and `status`; a failed job's run ends with
  exit_code=1 and its error in the summary (`error`) and the run notes.
* one aggregate run per aggregation (job_type="aggregate", same group, under `<out_dir>/wandb/`):
  the ablation table (a wandb.Table), the plots (wandb.Image) and a mAP50-95-vs-GFLOPs scatter.

Mode: `logger.mode` (offline by default); the WANDB_MODE environment variable wins when set.
Online without an API key, or when an online start fails, the run falls back to offline (and
says so): nothing is lost, `make sync` uploads it later.

W&B never fails a training: every failure (import error, bad mode, unwritable dir, no network,
init timeout, a full disk...) logs one warning and turns the tracker into a no-op.

Nothing is written outside the given dir: besides `dir=`, WANDB_CACHE_DIR, WANDB_CONFIG_DIR,
WANDB_DATA_DIR and WANDB_ARTIFACT_DIR point into `<dir>/wandb/.cache|.config|.data|.artifacts`
while the run is open (a value the user set is left alone and wins), and the W&B service process
is shut down after each run when no other run is open, so the next job's service writes its logs
into that job's dir. (Only the service's transient socket/port files go to the system temp dir.)
A self-hosted server set up with `wandb login --host` keeps its base URL in ~/.config/wandb: set
WANDB_BASE_URL (or WANDB_CONFIG_DIR) for such runs.

This module imports neither torch nor ultralytics (the aggregator imports it), and imports
wandb only when a run starts.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------- key names
# Every name a panel of the dashboard (src/dashboard.py) refers to is defined here, once.
EPOCH = "epoch"                                   # history step metric
ATTN, POS, DATASET, MODEL, SEED = "attn", "pos", "dataset", "model", "seed"
IDENTITY_KEYS = (ATTN, POS, DATASET, MODEL, SEED)  # top-level config scalars
CFG = "cfg"                                       # config key holding the full resolved config

METRIC_PREFIX = "metrics/"
MAP50_95 = "metrics/map50_95"
MAP50 = "metrics/map50"
PRECISION = "metrics/precision"
RECALL = "metrics/recall"
TRAIN_LOSSES = ("train/box_loss", "train/cls_loss", "train/dfl_loss")
VAL_LOSSES = ("val/box_loss", "val/cls_loss", "val/dfl_loss")
LR_PREFIX = "lr/"

# ultralytics' per-epoch names -> ours (anything else is logged under its own name)
ULTRALYTICS_KEYS = {
    "metrics/mAP50-95(B)": MAP50_95,
    "metrics/mAP50(B)": MAP50,
    "metrics/precision(B)": PRECISION,
    "metrics/recall(B)": RECALL,
}

# summary scalars copied from result.json when present (besides metrics/*)
PARAMS, GFLOPS, GFLOPS_EXACT, LATENCY_MS = "params", "gflops", "gflops_exact", "latency_ms"
SUMMARY_SCALARS = (PARAMS, "params_added", GFLOPS, GFLOPS_EXACT, LATENCY_MS, "throughput_ips",
                   "train_seconds", "best_epoch")
STATUS, ERROR = "status", "error"

JOB_TYPE_TRAIN, JOB_TYPE_AGGREGATE = "train", "aggregate"
ABLATION_TABLE = "ablation/table"                 # wandb.Table in the aggregate run
TRADEOFF_CHART = "ablation/map50_95_vs_gflops"    # wandb.plot.scatter in the aggregate run
TRADEOFF_TABLE = f"{TRADEOFF_CHART}_table"        # ... whose table W&B logs under this key
TRADEOFF_COLUMNS = ("gflops", "map50_95", "label")
PLOT_PREFIX = "plots/"                            # each PNG as plots/<file stem>

DEFAULT_PROJECT = "yolo11-attention"
MODES = ("online", "offline", "disabled")
_MODE_ALIASES = {"dryrun": "offline", "run": "online"}
_DIR_VARS = {"WANDB_CACHE_DIR": ".cache", "WANDB_CONFIG_DIR": ".config", "WANDB_DATA_DIR": ".data",
             "WANDB_ARTIFACT_DIR": ".artifacts"}
_FINISHED_OK = ("completed", "dry_run")


# ======================================================================================= trackers
class JobTracker:
    """One job's W&B run. Every method is safe to call at any time: after a W&B failure (or with
    logger=none) it does nothing. Also a context manager: an exception inside ends the run failed."""

    def __init__(self, run: Any = None, env: _EnvDirs | None = None, label: str = "") -> None:
        self._run = run
        self._env = env
        self._label = label
        self._warned = False
        self._finished = run is None

    @property
    def active(self) -> bool:
        """True while a W&B run is open."""
        return self._run is not None and not self._finished

    @property
    def run_id(self) -> str | None:
        return getattr(self._run, "id", None)

    @property
    def run_dir(self) -> Path | None:
        """The run's own directory (`<job_dir>/wandb/offline-run-...`), None without a run."""
        directory = getattr(getattr(self._run, "settings", None), "sync_dir", None)
        return Path(directory) if directory else None

    def log_epoch(self, epoch: int, values: Mapping[str, Any]) -> None:
        """One history row: `values` (ultralytics' names are fine) at step `epoch`."""
        if not self.active:
            return
        try:
            row = epoch_row(epoch, values)
            self._run.log(row)
        except Exception as exc:  # noqa: BLE001 - W&B must never fail a training
            self._fail("log_epoch", exc)

    def finish(self, result: Mapping[str, Any]) -> None:
        """Final summary from the job's result dict, then end the run (failed unless it completed)."""
        if not self.active:
            return
        try:
            result = dict(result or {})
            for key, value in summary_from_result(result).items():
                self._run.summary[key] = value
            ok = result.get(STATUS) in _FINISHED_OK
            if not ok:
                note = str(result.get(ERROR) or f"job ended with status {result.get(STATUS)!r}")
                if result.get("traceback"):
                    note += "\n\n" + str(result["traceback"])[-4000:]
                self._run.notes = note
            self._close(exit_code=0 if ok else 1)
        except Exception as exc:  # noqa: BLE001
            self._fail("finish", exc)

    def __enter__(self) -> JobTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.finish({STATUS: "failed", ERROR: f"{exc_type.__name__}: {exc}"})
        elif self.active:
            self.finish({STATUS: "completed"})

    # ------------------------------------------------------------------------------- internals
    def _close(self, exit_code: int) -> None:
        self._finished = True
        try:
            self._run.finish(exit_code=exit_code)
        finally:
            _release(self._env)
            self._env = None

    def _fail(self, where: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("W&B %s failed (%s: %s); W&B logging is off for %s, the training goes on",
                        where, type(exc).__name__, exc, self._label or "this job")
        if not self._finished:
            self._finished = True
            try:
                self._run.finish(exit_code=1)
            except Exception:  # noqa: BLE001 - best effort: the run is already broken
                pass
            _release(self._env)
            self._env = None


def group_name(experiment: str, sweep_dir: Path) -> str:
    """The W&B group of a sweep: the experiment (Hydra config name) and the sweep directory's name."""
    return f"{experiment}-{Path(sweep_dir).name}"


def start_job_run(logger_cfg: Mapping[str, Any] | None, cfg: Mapping[str, Any], job_dir: Path, *, group: str,
                  name: str, tags: Sequence[str], identity: Mapping[str, Any] | None = None) -> JobTracker:
    """Open this job's run under `<job_dir>/wandb/` (a no-op tracker for logger=none or on failure).

    `cfg` is the resolved Hydra config (a plain dict, or a DictConfig); `identity` optionally
    overrides the top-level scalars derived from it (e.g. pos="custom:after6").
    """
    label = f"job {name!r}"
    try:
        settings = _logger_settings(logger_cfg)
        if settings is None:
            return JobTracker()
        plain = _plain(cfg)
        config = {**identity_scalars(plain), **{k: v for k, v in dict(identity or {}).items() if v is not None},
                  CFG: plain}
        run, env = _init(settings, Path(job_dir), label, group=group, name=name, job_type=JOB_TYPE_TRAIN,
                         tags=[*tags, *settings["tags"]], config=config)
    except Exception as exc:  # noqa: BLE001
        _warn_start(label, exc)
        return JobTracker()
    if run is None:
        return JobTracker()
    tracker = JobTracker(run, env, label)
    try:
        run.define_metric(EPOCH)
        run.define_metric("*", step_metric=EPOCH)
    except Exception as exc:  # noqa: BLE001
        tracker._fail("define_metric", exc)
    return tracker


def log_aggregate(logger_cfg: Mapping[str, Any] | None, *, group: str, out_dir: Path, table: Any,
                  plots: Sequence[Path]) -> None:
    """The sweep's aggregate run (job_type="aggregate", same group) under `<out_dir>/wandb/`:
    the ablation table, the plots (PNG) and a mAP50-95-vs-GFLOPs scatter. Never raises."""
    label = f"the aggregate of {group!r}"
    try:
        settings = _logger_settings(logger_cfg)
        if settings is None:
            return
        run, env = _init(settings, Path(out_dir), label, group=group, name="aggregate",
                         job_type=JOB_TYPE_AGGREGATE, tags=["aggregate", *settings["tags"]],
                         config={"group": group, "rows": int(len(table)) if table is not None else 0})
    except Exception as exc:  # noqa: BLE001
        _warn_start(label, exc)
        return
    if run is None:
        return
    tracker = JobTracker(run, env, label)
    try:
        import wandb

        payload: dict[str, Any] = {}
        if table is not None:
            payload[ABLATION_TABLE] = wandb.Table(dataframe=_table_frame(table))
            scatter = tradeoff_frame(table)
            if len(scatter):
                payload[TRADEOFF_CHART] = wandb.plot.scatter(
                    wandb.Table(dataframe=scatter), "gflops", "map50_95", title="mAP50-95 vs GFLOPs")
        for path in plots or ():
            path = Path(path)
            if path.suffix.lower() == ".png" and path.is_file():
                key = f"{PLOT_PREFIX}{path.stem}"
                if key in payload:  # same file name in another folder
                    key = f"{PLOT_PREFIX}{path.parent.name}/{path.stem}"
                payload[key] = wandb.Image(str(path))
        if payload:
            run.log(payload)
    except Exception as exc:  # noqa: BLE001
        tracker._fail("log_aggregate", exc)
    tracker.finish({STATUS: "completed"})


# ===================================================================================== payloads
def identity_scalars(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """attn, pos, dataset, model (their names) and seed, from a resolved job config."""
    out: dict[str, Any] = {}
    for key in IDENTITY_KEYS:
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
    frame = pd.DataFrame({"gflops": column("gflops", "gflops_mean"),
                          "map50_95": column("map50_95_mean", "map50_95"), "label": labels},
                         index=table.index)
    return frame.dropna().reset_index(drop=True)


def _table_frame(table: Any):
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


# ==================================================================================== W&B calls
def _logger_settings(logger_cfg: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The effective settings, or None when W&B is off (logger=none, mode disabled)."""
    cfg = _plain(logger_cfg) if logger_cfg is not None else {}
    if not cfg or str(cfg.get("name", "none")).lower() in ("none", "null", ""):
        return None
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    mode = env_mode or str(cfg.get("mode") or "offline").strip().lower()
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        source = "WANDB_MODE" if env_mode else "logger.mode"
        raise ValueError(f"{source}={mode!r} is not one of {', '.join(MODES)}")
    if mode == "disabled":
        return None
    tags = cfg.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    return {"mode": mode, "project": cfg.get("project") or DEFAULT_PROJECT, "entity": cfg.get("entity") or None,
            "tags": list(tags), "init_timeout": float(cfg.get("init_timeout") or 60),
            "finish_timeout": float(cfg.get("finish_timeout") or 0),
            "system_metrics": bool(cfg.get("system_metrics", True)), "label": cfg.get("name")}


def _init(settings: dict[str, Any], directory: Path, label: str, **run_args: Any) -> tuple[Any, _EnvDirs | None]:
    """wandb.init into `directory/wandb`; online falls back to offline when it cannot start."""
    import wandb

    directory = directory.resolve()
    (directory / "wandb").mkdir(parents=True, exist_ok=True)
    run_args["tags"] = clean_tags(run_args["tags"])
    mode = settings["mode"]
    if mode == "online" and not api_key_available():
        log.warning("W&B: no API key (set WANDB_API_KEY or run `wandb login`): %s logs offline; "
                    "upload it later with `make sync`", label)
        mode = "offline"
    env = _EnvDirs(directory / "wandb")
    try:
        try:
            run = _wandb_init(wandb, settings, directory, mode, run_args)
        except Exception as exc:  # noqa: BLE001
            if mode != "online":
                raise
            log.warning("W&B online start failed for %s (%s: %s); logging offline instead (`make sync` "
                        "uploads it later)", label, type(exc).__name__, exc)
            run = _wandb_init(wandb, settings, directory, "offline", run_args)
    except BaseException:
        _release(env)
        raise
    return run, env


def _wandb_init(wandb: Any, settings: dict[str, Any], directory: Path, mode: str, run_args: dict[str, Any]):
    options = dict(silent=True, console="off", init_timeout=settings["init_timeout"],
                   x_disable_stats=not settings["system_metrics"])
    if settings["finish_timeout"] > 0:
        options["finish_timeout"] = settings["finish_timeout"]
    try:
        wb_settings = wandb.Settings(**options)
    except Exception:  # noqa: BLE001 - an option this wandb does not know: keep the essentials
        wb_settings = wandb.Settings(silent=True)
    return wandb.init(project=settings["project"], entity=settings["entity"], dir=str(directory), mode=mode,
                      reinit="create_new", settings=wb_settings, **run_args)


class _EnvDirs:
    """Points W&B's cache/config/data/artifact dirs into `base` until released (user values win)."""

    def __init__(self, base: Path) -> None:
        self.set: dict[str, str] = {}
        for var, sub in _DIR_VARS.items():
            if not os.environ.get(var):
                os.environ[var] = self.set[var] = str(base / sub)

    def restore(self) -> None:
        for var, value in self.set.items():
            if os.environ.get(var) == value:
                del os.environ[var]
        self.set = {}


def _release(env: _EnvDirs | None) -> None:
    """After a run: stop the W&B service when no run is left open, then restore the env vars."""
    try:
        from wandb.sdk import wandb_setup

        singleton = getattr(wandb_setup, "_singleton", None)
        if singleton is not None:
            open_run = getattr(singleton, "most_recent_active_run", None)  # a property in wandb 0.31
            if callable(open_run):
                open_run = open_run()
            if open_run is None:
                import wandb

                wandb.teardown()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - teardown may sys.exit on a service error
        log.debug("wandb teardown: %s", exc)
    finally:
        if env is not None:
            env.restore()


def _warn_start(label: str, exc: BaseException) -> None:
    log.warning("W&B could not start a run for %s (%s: %s); the training goes on without W&B",
                label, type(exc).__name__, exc)


# ======================================================================================= helpers
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


def _plain(cfg: Any) -> dict[str, Any]:
    """A JSON-able plain dict from a dict or an OmegaConf config."""
    if cfg is None:
        return {}
    if not isinstance(cfg, dict) and type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    return json.loads(json.dumps(cfg, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def api_key_available() -> bool:
    """A W&B credential is configured (WANDB_API_KEY, an identity token file, or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    try:
        from wandb.sdk.lib.wbauth import wbnetrc

        return bool(wbnetrc.read_netrc_auth(host=host))
    except Exception:  # noqa: BLE001 - fall back to reading the netrc file ourselves
        import netrc
        from urllib.parse import urlsplit

        try:
            path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
            return bool(netrc.netrc(path).authenticators(urlsplit(host).hostname or host))
        except (OSError, netrc.NetrcParseError):
            return False


# ============================================================================ offline run files
def offline_run_dirs(sweep_dir: str | os.PathLike) -> list[Path]:
    """The offline runs of a sweep: `<sweep>/*/wandb/offline-run-*` (jobs) and
    `<sweep>/wandb/offline-run-*` (the aggregate run), those holding a run file, sorted."""
    root = Path(sweep_dir)
    found = {p for pattern in ("*/wandb/offline-run-*", "wandb/offline-run-*") for p in root.glob(pattern)
             if p.is_dir() and any(p.glob("run-*.wandb"))}
    return sorted(found)


_HEADER = struct.Struct("<4sHB")       # ":W&B", magic 0xBEE1, version
_RECORD = struct.Struct("<IHB")        # checksum, length, type
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _raw_records(data: bytes):
    ident, magic, _version = _HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a W&B run file (bad header)")
    pos, pending = _HEADER.size, b""
    while pos + _RECORD.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD.size:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        chunk = data[pos:pos + length]
        pos += length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def _put(target: dict[str, Any], item: Any) -> None:
    """Set an item's value at its key; a multi-part nested_key (a media dict's fields) nests."""
    parts = list(item.nested_key) or [item.key]
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[parts[-1]] = json.loads(item.value_json)


def read_run_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse an offline run file (`run-<id>.wandb`) back: run attributes, config, history rows,
    summary, define_metric step metrics, exit code (None when the run never finished)."""
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {"run": {}, "config": {}, "history": [], "summary": {}, "step_metrics": {},
                           "exit_code": None}
    for raw in _raw_records(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out["run"] = {"id": r.run_id, "project": r.project, "entity": r.entity, "group": r.run_group,
                          "job_type": r.job_type, "name": r.display_name, "tags": list(r.tags),
                          "notes": r.notes}
            for item in r.config.update:
                _put(out["config"], item)
        elif kind == "config":
            for item in record.config.update:
                _put(out["config"], item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _put(row, item)
            out["history"].append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(out["summary"], item)
            for item in record.summary.remove:
                parts = list(item.nested_key) or [item.key]
                node = out["summary"]
                for part in parts[:-1]:
                    node = node.get(part, {}) if isinstance(node, dict) else {}
                if isinstance(node, dict):
                    node.pop(parts[-1], None)
        elif kind == "metric" and record.metric.step_metric:
            out["step_metrics"][record.metric.name or record.metric.glob_name] = record.metric.step_metric
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def read_offline_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """`read_run_file` of the run file in an `offline-run-*` (or `run-*`) dir."""
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    return read_run_file(files[0])


# ========================================================================================== CLI
def sync(sweep_dir: str | os.PathLike, *, dry_run: bool = False, project: str | None = None,
         entity: str | None = None) -> int:
    """`wandb sync` every offline run of a sweep (the jobs' and the aggregate's)."""
    dirs = offline_run_dirs(sweep_dir)
    if not dirs:
        print(f"no offline W&B runs under {sweep_dir} (looked for */wandb/offline-run-* and wandb/offline-run-*)",
              file=sys.stderr)
        return 2
    if not dry_run and not api_key_available():
        print("no W&B API key: set WANDB_API_KEY or run `wandb login`, then sync again", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "wandb", "sync", *(["--dry-run"] if dry_run else []),
           *(["--project", project] if project else []), *(["--entity", entity] if entity else []),
           *map(str, dirs)]
    print(f"syncing {len(dirs)} run(s): wandb sync {'--dry-run ' if dry_run else ''}{sweep_dir}/.../offline-run-*")
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.tracking", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_sync = sub.add_parser("sync", help="upload a sweep's offline W&B runs (wandb sync)")
    p_sync.add_argument("sweep_dir")
    p_sync.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    p_sync.add_argument("--project")
    p_sync.add_argument("--entity")
    p_dirs = sub.add_parser("dirs", help="print a sweep's offline run dirs, one a line")
    p_dirs.add_argument("sweep_dir")
    args = parser.parse_args(argv)
    if args.command == "dirs":
        for d in offline_run_dirs(args.sweep_dir):
            print(d)
        return 0
    return sync(args.sweep_dir, dry_run=args.dry_run, project=args.project, entity=args.entity)


if __name__ == "__main__":
    sys.exit(main())
