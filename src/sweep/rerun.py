"""The command that resumes a run or a sweep: what an interrupted job records and what the
end-of-sweep report tells the user when SLURM did not requeue a job."""

from __future__ import annotations

import shlex
from pathlib import Path

from hydra.types import RunMode
from omegaconf import OmegaConf


def rerun_command(hc, sweep_or_run_dir: Path) -> str:
    """The command that resumes this run or sweep: its overrides, with its directory fixed (a
    `${now:...}` one is new on each run)."""
    key = "hydra.sweep.dir" if hc.mode == RunMode.MULTIRUN else "hydra.run.dir"
    task, hydra = list(hc.overrides.task), list(hc.overrides.hydra)
    if hc.mode == RunMode.MULTIRUN:  # the sweep's overrides (a,b lists), not this job's
        saved = sweep_or_run_dir / "multirun.yaml"
        if saved.exists():  # the adaptive sweeper fixes each job's hydra.sweep.subdir: not the sweep's
            launched = OmegaConf.to_container(OmegaConf.load(saved).hydra.overrides, resolve=False)  # as typed:
            task, hydra = list(launched["task"]), list(launched["hydra"])  # `subdir=${hydra.job.num}` stays
    kept = [o for o in [*hydra, *task] if not o.startswith(f"{key}=")]
    words = [
        "python",
        "-m",
        "src.run",
        *(["-m"] if hc.mode == RunMode.MULTIRUN else []),
        *kept,
        f"{key}={sweep_or_run_dir}",
    ]
    return shlex.join(words)
