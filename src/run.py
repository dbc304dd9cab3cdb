"""Entry point: `python -m src.run [-m] key=value ...`. One Hydra job in, one result.json out.

The exit status is non-zero when the single run failed or, for a sweep, when any job failed, is
missing or interrupted (decided at the end of the sweep by the aggregation callback, after the
table has been printed). With `plan=true` it launches nothing: it lists the sweep's jobs and their
state (src/sweep/plan.py).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.arch.positions import position_label, unedited_preset
from src.config.identity import study_name
from src.config.study import group_option
from src.runtime import set_environment
from src.sweep.placement import Placement, place
from src.sweep.rerun import rerun_command


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> str:
    set_environment(cfg.paths.outputs)  # before ultralytics is first imported (by the job)
    from src import tracking
    from src.job.runner import run_job
    from src.results import FAILED
    from src.results.schema import ERROR, STATUS

    hc = HydraConfig.get()
    sweep_or_run_dir = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else hc.run.dir
    overrides = list(hc.overrides.task)
    result = run_job(
        cfg,
        Path(hc.runtime.output_dir),
        overrides=overrides,
        placement=_placement(hc, cfg),
        tracking_group=tracking.group_name(study_name(hc.runtime.choices, hc.job.config_name), Path(sweep_or_run_dir)),
        pos_label=None if cfg.get("variant") is not None else _pos_label(hc, cfg, overrides),
        resume_command=resume_command(hc, Path(sweep_or_run_dir)),
    )
    if hc.mode == RunMode.RUN and result[STATUS] == FAILED:
        print(f"job failed: {result[ERROR]}", file=sys.stderr)
        raise SystemExit(1)
    return result[STATUS]


def resume_command(hc, sweep_or_run_dir: Path) -> str | None:
    """What an interrupted job tells the user to run; None under submitit, which requeues the job
    itself (src/sweep/uncompleted.py says what to run when SLURM does not)."""
    return None if "submitit_folder" in hc.launcher else rerun_command(hc, sweep_or_run_dir)


def _pos_label(hc, cfg: DictConfig, overrides: list[str]) -> str:
    """Hydra's choice for the `pos` group while the job holds that preset's values, else `custom:...`."""
    pos = OmegaConf.to_container(cfg.pos, resolve=True)
    choice = hc.runtime.choices.get("pos")
    preset = group_option("pos", choice) if choice else None
    return position_label(pos, unedited_preset(pos, choice, preset, overrides))


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


if __name__ == "__main__":
    from src.config.study import register_resolver
    from src.sweep.plan import main as plan

    register_resolver()  # ${study_variants:...}: a study's sweep of every subset
    from src.sweep.plan import wants_plan

    if wants_plan(sys.argv[1:]):  # before Hydra, which writes multirun.yaml and .hydra/ when it launches
        sys.exit(plan(sys.argv[1:]))
    from src.adaptive_sweeper import register

    register()  # hydra/sweeper=adaptive
    try:
        main()
    finally:  # what is left is the exit: Python's last collections over torch's objects took ~1.1 s here
        gc.freeze()  # per process; frozen, they are freed with the process (README "Performance")
