"""Hydra callback: aggregate the sweep when a multirun ends.

Registered in conf/config.yaml:

    hydra:
      callbacks:
        aggregate:
          _target_: src.aggregate.hydra_callback.AggregateOnMultirunEnd
          # plots: true   curves: true   quiet: false   out_dir: null  (defaults)

After the sweep, `LAST_SWEEP_SUMMARY` (a `SweepOutcome`: n_failed, n_missing, n_interrupted,
n_corrupt, n_problems, error, summary) lets the entry point set a non-zero exit status;
`sweep_exit_code()` does that in one call. The callback never raises: a broken aggregation must
not hide the trained results.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)


@dataclass
class SweepOutcome:
    """The last aggregated sweep: its Summary (counts: `n_failed`, `n_missing`, ...) or the error."""
    sweep_dir: str | None
    summary: Any = None             # the full src.aggregate Summary, None when aggregation failed
    error: str | None = None        # set when the aggregation itself failed

    def __getattr__(self, name: str) -> Any:
        if name.startswith("n_"):  # counts come from the summary; none when there is none
            return getattr(self.summary, name) if self.summary is not None else 0
        raise AttributeError(name)

    @property
    def exit_code(self) -> int:
        return 1 if (self.n_problems or self.error) else 0


# Set by every on_multirun_end; None before any sweep ended in this process.
LAST_SWEEP_SUMMARY: SweepOutcome | None = None


def sweep_exit_code() -> int:
    """0 when the last sweep's jobs all produced results; 1 when any failed, is missing, was
    interrupted or is corrupt, or when the aggregation itself failed. 0 when no sweep ran."""
    return 0 if LAST_SWEEP_SUMMARY is None else LAST_SWEEP_SUMMARY.exit_code


class AggregateOnMultirunEnd(Callback):
    def __init__(self, plots: bool = True, curves: bool = True, quiet: bool = False,
                 out_dir: str | None = None) -> None:
        self.plots, self.curves, self.quiet, self.out_dir = plots, curves, quiet, out_dir

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        global LAST_SWEEP_SUMMARY
        sweep_dir = None
        try:
            sweep_dir = str(config.hydra.sweep.dir)
            from .report import aggregate
            summary = aggregate([sweep_dir], self.out_dir or sweep_dir, plots=self.plots, curves=self.curves)
            LAST_SWEEP_SUMMARY = SweepOutcome(sweep_dir=sweep_dir, summary=summary)
            if not self.quiet:
                print(summary.terminal, flush=True)
            _log_aggregate_run(config, sweep_dir, summary)
            if summary.n_problems:
                log.warning("sweep %s: %d failed, %d missing, %d interrupted, %d corrupt job(s)", sweep_dir,
                            summary.n_failed, summary.n_missing, summary.n_interrupted, summary.n_corrupt)
        except BaseException as exc:  # noqa: BLE001 - never let reporting hide the trained results
            if isinstance(exc, KeyboardInterrupt):
                log.warning("aggregation of sweep %s interrupted", sweep_dir)
            else:
                log.exception("aggregation of sweep %s failed; the job results are untouched", sweep_dir)
            LAST_SWEEP_SUMMARY = SweepOutcome(sweep_dir=sweep_dir, error=f"{type(exc).__name__}: {exc}")


def _log_aggregate_run(config: Any, sweep_dir: str, summary: Any) -> None:
    """The sweep's `aggregate` W&B run (table, plots, scatter), in the jobs' group."""
    from pathlib import Path

    from src import tracking

    logger_cfg = config.get("logger")
    if not logger_cfg or logger_cfg.get("name") == "none":
        return
    group = tracking.group_name(config.hydra.job.config_name or "config", Path(sweep_dir))
    plots = [Path(p) for name, p in (summary.files or {}).items() if str(p).endswith(".png")]
    tracking.log_aggregate(logger_cfg, group=group, out_dir=Path(sweep_dir), table=summary.ablation, plots=plots)
