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

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.files import atomic_write_json
from src.results import DEFERRED, FAILED, RESULT_FILE, RUNNING, TERMINAL, read_result, read_result_or_none
from src.results.schema import DEFERRED_TO, ERROR, INTERRUPTED, METRICS, REUSED_FROM, STATUS
from src.sweep.adaptive import grid_points, is_adaptive, seed_settings
from src.sweep.clock import eta, format_seconds
from src.sweep.grid import basic_sweep_jobs, sweep_arguments
from src.sweep.state import is_live, stale_after_of, whereabouts

STATE_FILE = ".sweep_progress.json"


def count_jobs(task_overrides: list[str], sweeper_params: dict[str, Any] | None, sweeper: Any = None) -> int:
    """Jobs a basic sweep will launch; for an adaptive one, the most it can (every point at seeds.max;
    0 where its settings are wrong: the sweeper says so)."""
    if is_adaptive(sweeper):
        try:
            return len(grid_points(sweeper_params, task_overrides)) * seed_settings(sweeper.get("seeds"))[2]
        except ValueError:
            return 0
    return len(basic_sweep_jobs(sweep_arguments(sweeper_params, task_overrides)))


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        total = count_jobs(list(config.hydra.overrides.task), config.hydra.sweeper.get("params"), config.hydra.sweeper)
        state = {"started": time.time(), "total": total, "already_done": len(_terminal_results(sweep_dir))}
        atomic_write_json(sweep_dir / STATE_FILE, state)  # a second launch of the sweep may be reading it
        most = "at most " if is_adaptive(config.hydra.sweeper) else ""  # its rounds stop where decided
        print(f"[sweep] {most}{total} job(s) -> {sweep_dir}", flush=True)

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
        outcome = outcome_line(job_dir)
        done = max(0, len(_terminal_results(sweep_dir)) - state.get("already_done", 0))
        remaining = eta(state["started"], now, done, state["total"] - state.get("already_done", 0))
        elapsed = now - getattr(self, "_job_started", now)
        print(
            f"[sweep] job {config.hydra.job.num + 1}/{state['total']} end: {_label(config)} -> {outcome} "
            f"in {format_seconds(elapsed)}; sweep {format_seconds(now - state['started'])} elapsed"
            + (f", ETA {format_seconds(remaining)}" if remaining is not None else ""),
            flush=True,
        )


def _state(config: DictConfig) -> dict[str, Any] | None:
    try:
        return json.loads((Path(config.hydra.sweep.dir) / STATE_FILE).read_text())
    except (OSError, ValueError, AttributeError):
        return None  # a single run, not a sweep


def _label(config: DictConfig) -> str:
    return ",".join(config.hydra.overrides.task) or "(defaults)"


def _terminal_results(sweep_dir: Path) -> list[Path]:
    found = []
    for path in sweep_dir.glob(f"*/{RESULT_FILE}"):
        try:
            if read_result(path)[STATUS] in TERMINAL:
                found.append(path)
        except ValueError:
            continue
    return found


def outcome_line(job_dir: Path) -> str:
    """How a job ended, in the words of its `end:` line."""
    result = read_result_or_none(job_dir)
    if result is None:
        return "no result"
    status = result.get(STATUS)
    if result.get(REUSED_FROM):
        status = "reused baseline"
    if status == DEFERRED:
        return f"deferred to the baseline training in {Path(str(result.get(DEFERRED_TO))).name}"
    if status == RUNNING and not result.get(INTERRUPTED) and is_live(job_dir, result, stale_after_of(result)):
        return f"running elsewhere ({whereabouts(job_dir, result)})"
    if status == FAILED:
        return f"FAILED ({(result.get(ERROR) or '')[:80]})"
    m = result.get(METRICS) or {}
    if m.get("map50") is not None:
        return f"{status} (mAP50 {m['map50']:.3f}, mAP50-95 {m['map50_95']:.3f})"
    return str(status) + (" (interrupted)" if result.get(INTERRUPTED) else "")
