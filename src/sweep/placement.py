"""Where a job runs when several run at once: Hydra's launchers do not split GPUs or threads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    device: str | None  # ultralytics `device` argument; None = leave the user's choice
    threads: int | None  # torch CPU threads; None = leave torch's default


def place(job_num: int, parallel_jobs: int, gpus: int, cpus: int, requested_device: str | None) -> Placement:
    """Job k of a parallel sweep gets GPU k mod #GPUs, and each job cpus/parallel_jobs threads.

    An explicit `train.device` is the user's decision and wins. With one job at a time nothing
    changes.
    """
    if parallel_jobs <= 1:
        return Placement(None, None)
    threads = max(1, cpus // parallel_jobs)
    auto = str(requested_device).lower() in ("auto", "none", "")
    device = str(job_num % gpus) if auto and gpus > 1 else None
    return Placement(device, threads)
