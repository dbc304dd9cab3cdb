"""What a job dir holds, judged one way for the runner, the aggregator, the progress lines and `plan`.

Liveness across hosts: a `running` result is live while its heartbeat (the file's mtime, see
`heartbeat`) is younger than `sweep.stale_after` seconds and, when it was written on this host,
its job lock is held (before locks: its pid is alive). Older than that it is dead whatever host
wrote it: nobody defers to it, and the next run resumes it from `last.pt`. The clocks of the
hosts and of the file server are assumed to agree to well within `stale_after`.
"""

from __future__ import annotations

import os
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.results import COMPLETED, DEFERRED, DRY_RUN, FAILED, LAST_CHECKPOINT, RESULT_FILE, RUNNING
from src.results.schema import CONFIG_HASH, DEFERRED_TO, ERROR, HOST, INTERRUPTED, PID, REUSED_FROM, STALE_AFTER, STATUS
from src.sweep import heartbeat, lock
from src.sweep.clock import format_seconds

# Job states, in the words `plan` prints.
DONE, ELSEWHERE, RESUMABLE, FAILED_STATE, DEFERRED_STATE, NEW = (
    "done",
    "running elsewhere",
    "resumable",
    FAILED,
    "deferred to a baseline",
    "new",
)


@dataclass(frozen=True)
class JobState:
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return self.kind + (f" ({self.detail})" if self.detail else "")


def stale_after_of(cfg: dict[str, Any] | None) -> float:
    """`sweep.stale_after` of a job config, or the `stale_after` a result was written with (seconds),
    else the default."""
    cfg = cfg or {}
    value = cfg[STALE_AFTER] if STALE_AFTER in cfg else (cfg.get("sweep") or {}).get("stale_after")
    return float(value) if value is not None else heartbeat.DEFAULT_STALE_AFTER


def is_live(
    job_dir: Path, result: dict[str, Any], stale_after: float, *, own_lock: bool = False, now: float | None = None
) -> bool:
    """Is the job that wrote this `running` result still at work? `own_lock`: the caller holds
    this job's lock, so no process of this host is."""
    if result.get(STATUS) != RUNNING or result.get(INTERRUPTED):
        return False
    age = heartbeat.age(Path(job_dir) / RESULT_FILE, now)
    if age is None or age > stale_after:
        return False
    if result.get(HOST) != socket.gethostname():
        return True
    if own_lock:
        return False
    held = lock.held_elsewhere(Path(job_dir))
    return held if held is not None else _pid_alive(result.get(PID))


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True


def whereabouts(job_dir: Path, result: dict[str, Any], now: float | None = None) -> str:
    """`host vm, pid 123, last heartbeat 12s ago`: where a running job is, for people."""
    age = heartbeat.age(Path(job_dir) / RESULT_FILE, now)
    beat = f"last heartbeat {format_seconds(age)} ago" if age is not None else "no heartbeat"
    return f"host {result.get(HOST) or '?'}, pid {result.get(PID) or '?'}, {beat}"


def job_state(
    job_dir: Path,
    previous: dict[str, Any] | None,
    config_hash: str,
    dry_run: bool,
    stale_after: float,
    *,
    own_lock: bool = False,
    now: float | None = None,
) -> JobState:
    """What running this job would do with what its dir holds (`previous`, its result or None)."""
    if previous is None:
        return JobState(NEW)
    status, same = previous.get(STATUS), previous.get(CONFIG_HASH) == config_hash
    if status == RUNNING:
        if is_live(job_dir, previous, stale_after, own_lock=own_lock, now=now):
            return JobState(ELSEWHERE, whereabouts(job_dir, previous, now))
        last = Path(job_dir) / LAST_CHECKPOINT
        if same and not dry_run and last.exists():
            if not checkpoint_complete(last):
                return JobState(
                    NEW, f"{LAST_CHECKPOINT.name} is truncated (killed while saving it): training from the start"
                )
            return JobState(RESUMABLE, _how_it_stopped(job_dir, previous, stale_after, now))
        return JobState(NEW, "config changed" if not same else "stopped before its first checkpoint")
    if not same:
        return JobState(NEW, "config changed")
    if status == (DRY_RUN if dry_run else COMPLETED):
        return JobState(
            DONE, f"reuses the baseline of {Path(previous[REUSED_FROM]).name}" if previous.get(REUSED_FROM) else ""
        )
    if status == DEFERRED:
        return JobState(DEFERRED_STATE, Path(str(previous.get(DEFERRED_TO))).name)
    if status == FAILED:
        return JobState(FAILED_STATE, (previous.get(ERROR) or "")[:100])
    return JobState(NEW, f"holds a {status} result")


def checkpoint_complete(path: Path) -> bool:
    """Whether a torch checkpoint was written to the end: torch.save writes a zip archive, whose
    directory comes last, so a file cut short by a kill has none. (Ours are renamed into place
    whole, see `ultralytics_glue.trainer.written_beside`; this guards older runs and other writers.)"""
    return zipfile.is_zipfile(path)


def _how_it_stopped(job_dir: Path, result: dict[str, Any], stale_after: float, now: float | None) -> str:
    if result.get(INTERRUPTED):
        return "interrupted"
    age = heartbeat.age(Path(job_dir) / RESULT_FILE, now)
    if age is not None and age > stale_after:
        return f"stale: {whereabouts(job_dir, result, now)}"
    return f"died: {whereabouts(job_dir, result, now)}"
