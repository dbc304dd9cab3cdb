"""Offline W&B runs on disk: find a sweep's run dirs and parse their `run-<id>.wandb` files back.

The reader needs only wandb's protobuf definitions (imported when a file is read), no W&B service:
tests and `python -m src.tracking.dashboard --sweep` use it to see what the runs really logged.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any


def offline_run_dirs(sweep_dir: str | os.PathLike) -> list[Path]:
    """The offline runs of a sweep: `<sweep>/*/wandb/offline-run-*` (jobs) and
    `<sweep>/wandb/offline-run-*` (the aggregate run), those holding a run file, sorted."""
    root = Path(sweep_dir)
    found = {
        p
        for pattern in ("*/wandb/offline-run-*", "wandb/offline-run-*")
        for p in root.glob(pattern)
        if p.is_dir() and any(p.glob("run-*.wandb"))
    }
    return sorted(found)


def read_offline_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """`read_run_file` of the run file in an `offline-run-*` (or `run-*`) dir."""
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    return read_run_file(files[0])


def read_run_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse an offline run file (`run-<id>.wandb`) back: run attributes, config, history rows,
    summary, define_metric step metrics, exit code (None when the run never finished)."""
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {"run": {}, "config": {}, "history": [], "summary": {}, "step_metrics": {}, "exit_code": None}
    for raw in _raw_records(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out["run"] = {
                "id": r.run_id,
                "project": r.project,
                "entity": r.entity,
                "group": r.run_group,
                "job_type": r.job_type,
                "name": r.display_name,
                "tags": list(r.tags),
                "notes": r.notes,
            }
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


# ------------------------------------------------------------------------- the file's framing
_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_RECORD = struct.Struct("<IHB")  # checksum, length, type
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
        chunk = data[pos : pos + length]
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
