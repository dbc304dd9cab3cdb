"""A sweep job that SLURM ended without a result (killed, cancelled, pre-empted on a cluster that
does not requeue) is reported, not raised.

hydra-submitit-launcher collects the jobs' results with `Job.results()`, which raises
`UncompletedJobError` for such a job: the launch would end there, before the table, with the other
jobs' outcomes unread. While a submitit sweep launches, this callback has that call return a
result instead, and records the job in its result.json as interrupted with the command that
resumes it; the sweep's table then lists it, the launch exits 1, and the next launch of that
command resumes it from its last.pt.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from src.results import RESULT_FILE, RUNNING, read_result, write_result
from src.results.schema import ERROR, INTERRUPTED, STATUS
from src.sweep.adaptive import dir_number
from src.sweep.rerun import rerun_command

log = logging.getLogger(__name__)


class ReportUncompletedJobs(Callback):
    """Hydra callback: active for the submitit launchers (`slurm`, `local`) only."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if "submitit_folder" not in config.hydra.launcher:
            return
        from submitit.core import core, utils

        self.original = core.Job.results
        sweep_dir = Path(str(config.hydra.sweep.dir))
        command = rerun_command(config.hydra, sweep_dir)  # the launch's own overrides: the sweep's
        original = self.original

        def results(job):
            try:
                return original(job)
            except utils.UncompletedJobError as exc:
                return [_reported(job, exc, sweep_dir, command)]

        core.Job.results = results

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if hasattr(self, "original"):
            from submitit.core import core

            core.Job.results = self.original


def _reported(job, exc: Exception, sweep_dir: Path, command: str):
    """The job's result as the sweep's table will read it, with the way back."""
    from hydra.core.utils import JobReturn, JobStatus

    num = dir_number(job.submission().args[0])  # an adaptive sweep's job: its dir's number
    num = job.submission().args[2] if num is None else num
    state = re.search(r"\(state: ([^)]*)\)", str(exc))  # submitit: "... has not produced any output (state: X)"
    error = f"SLURM ended job {job.job_id} without a result ({state[1] if state else exc}); to resume: {command}"
    log.error("job %s: %s", num, error)
    for job_dir in sweep_dir.glob(f"{num}_*"):
        try:
            result = read_result(job_dir / RESULT_FILE)
        except ValueError:  # it never started: the next launch runs it
            continue
        if result.get(STATUS) == RUNNING:
            write_result(job_dir, {**result, INTERRUPTED: True, ERROR: error})
    return JobReturn(status=JobStatus.COMPLETED, _return_value="interrupted")
