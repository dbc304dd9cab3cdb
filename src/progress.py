"""One line per job start and end: job k of N, overrides, result, elapsed time and the sweep's ETA.

Per-epoch progress stays ultralytics' own. State lives in the sweep directory (start time and job
count written once, finished jobs counted from result.json files), so the lines are right with
launchers that run jobs in other processes or on other machines.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.files import atomic_write_json

STATE_FILE = ".sweep_progress.json"
TERMINAL = ("completed", "failed", "dry_run", "deferred")


def count_jobs(task_overrides: list[str], sweeper_params: dict[str, Any] | None) -> int:
    """Jobs a basic sweep will launch: the product of each swept key's number of values."""
    merged = {str(k): f"{k}={v}" for k, v in (sweeper_params or {}).items()}
    parser = OverridesParser.create()
    for override in parser.parse_overrides(list(task_overrides)):
        merged[override.get_key_element()] = override.input_line
    total = 1
    for override in parser.parse_overrides(list(merged.values())):
        if override.is_sweep_override():
            total *= len(list(override.sweep_string_iterator()))
    return total


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def eta(started: float, now: float, done: int, total: int) -> float | None:
    """Remaining time if the jobs still to finish take as long as the finished ones did on average."""
    if done <= 0:
        return None
    per_job = (now - started) / done
    return max(0.0, per_job * (total - done))


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        total = count_jobs(list(config.hydra.overrides.task), config.hydra.sweeper.get("params"))
        state = {"started": time.time(), "total": total,
                 "already_done": len(_terminal_results(sweep_dir))}
        atomic_write_json(sweep_dir / STATE_FILE, state)  # a second launch of the sweep may be reading it
        print(f"[sweep] {total} job(s) -> {sweep_dir}", flush=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        state = _state(config)
        if state is None:
            return
        self._job_started = time.time()
        num = config.hydra.job.num + 1
        print(f"[sweep] job {num}/{state['total']} start: {_label(config)}", flush=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        state = _state(config)
        if state is None:
            return
        now = time.time()
        sweep_dir = Path(config.hydra.sweep.dir)
        job_dir = Path(config.hydra.runtime.output_dir)
        outcome = _outcome(job_dir)
        done = max(0, len(_terminal_results(sweep_dir)) - state.get("already_done", 0))
        remaining = eta(state["started"], now, done, state["total"] - state.get("already_done", 0))
        elapsed = now - getattr(self, "_job_started", now)
        print(f"[sweep] job {config.hydra.job.num + 1}/{state['total']} end: {_label(config)} -> {outcome} "
              f"in {format_seconds(elapsed)}; sweep {format_seconds(now - state['started'])} elapsed"
              + (f", ETA {format_seconds(remaining)}" if remaining is not None else ""), flush=True)


def _state(config: DictConfig) -> dict[str, Any] | None:
    try:
        return json.loads((Path(config.hydra.sweep.dir) / STATE_FILE).read_text())
    except (OSError, ValueError, AttributeError):
        return None  # a single run, not a sweep


def _label(config: DictConfig) -> str:
    return ",".join(config.hydra.overrides.task) or "(defaults)"


def _terminal_results(sweep_dir: Path) -> list[Path]:
    found = []
    for path in sweep_dir.glob("*/result.json"):
        try:
            if json.loads(path.read_text()).get("status") in TERMINAL:
                found.append(path)
        except (OSError, ValueError):
            continue
    return found


def _outcome(job_dir: Path) -> str:
    try:
        result = json.loads((job_dir / "result.json").read_text())
    except (OSError, ValueError):
        return "no result"
    status = result.get("status")
    if result.get("reused_from"):
        status = "reused baseline"
    if status == "deferred":
        return f"deferred to the baseline training in {Path(str(result.get('deferred_to'))).name}"
    if status == "running" and not result.get("interrupted"):
        from src.sweep.state import is_live, stale_after_of, whereabouts

        if is_live(job_dir, result, stale_after_of(result)):
            return f"running elsewhere ({whereabouts(job_dir, result)})"
    if status == "failed":
        return f"FAILED ({(result.get('error') or '')[:80]})"
    m = result.get("metrics") or {}
    if m.get("map50") is not None:
        return f"{status} (mAP50 {m['map50']:.3f}, mAP50-95 {m['map50_95']:.3f})"
    return str(status) + (" (interrupted)" if result.get("interrupted") else "")

