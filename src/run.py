"""Entry point: `python -m src.run [-m] key=value ...`. One Hydra job in, one result.json out."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.job import run_job
from src.placement import Placement, place
from src.results import FAILED
from src.tracking import group_name

_single_run_failed = False


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> str:
    global _single_run_failed
    hc = HydraConfig.get()
    sweep_or_run_dir = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else hc.run.dir
    result = run_job(cfg, Path(hc.runtime.output_dir), overrides=list(hc.overrides.task),
                     placement=_placement(hc, cfg),
                     tracking_group=group_name(hc.job.config_name or "config", Path(sweep_or_run_dir)))
    if hc.mode == RunMode.RUN and result["status"] == FAILED:
        print(f"job failed: {result['error']}", file=sys.stderr)
        _single_run_failed = True
    return result["status"]


def _placement(hc, cfg: DictConfig) -> Placement:
    """GPU and threads for this job when the launcher runs several jobs on this machine at once."""
    import os

    import torch

    if hc.mode != RunMode.MULTIRUN or "joblib" not in str(hc.launcher.get("_target_", "")):
        return Placement(None, None)
    cpus = os.cpu_count() or 1
    n_jobs = int(hc.launcher.get("n_jobs") or 1)
    n_jobs = cpus if n_jobs < 0 else n_jobs
    return place(hc.job.num, n_jobs, torch.cuda.device_count(), cpus, cfg.train.get("device"))


def exit_code() -> int:
    """Non-zero when the single run failed or any job of the sweep failed (the table still prints)."""
    from src.aggregate import hydra_callback

    outcome = hydra_callback.LAST_SWEEP_SUMMARY  # failed, missing, interrupted or corrupt jobs
    return 1 if (_single_run_failed or (outcome is not None and outcome.n_problems)) else 0


if __name__ == "__main__":
    main()
    sys.exit(exit_code())
