"""Weights & Biases tracking: one run per job, one aggregate run per sweep, never a failed training.

Run layout (`logger=wandb`, conf/logger/wandb.yaml):

* one run per job, written under `<job_dir>/wandb/` (offline: `offline-run-*/run-<id>.wandb`),
  finished at the end of the job, so a basic-launcher sweep (all jobs in one process) still gives
  one run per job. project = `logger.project`, group = the sweep id, job_type = "train",
  name = the job's overrides ("attn=cot,pos=neck,seed=1"), tags = dataset, model, attn, pos
  (+ `logger.tags`).
* config: the five identity keys as top-level scalars (`attn`, `pos`, `dataset`, `model`,
  `seed`: the names, e.g. attn="ema"), for parallel-coordinates panels and filters, and the full
  resolved Hydra config under `cfg` (so `cfg.train.lr0`, `cfg.attn.params.factor`, ...). The
  scalars never collide with the nested config that way.
* history: one row per epoch, `epoch` is the step metric (define_metric); ultralytics' names are
  mapped to ours (`metrics/mAP50-95(B)` -> `metrics/map50_95`); losses (`train/*`, `val/*`) and
  learning rates (`lr/pg0`...) keep theirs.
* summary: the final metrics (`metrics/<name>` from result.json, the same keys as the history),
  params, gflops, gflops_exact, latency_ms_job (the job's own timing), train_peak_mem_mb, ... and
  `status`; a failed job's run ends with
  exit_code=1 and its error in the summary (`error`) and the run notes.
* one aggregate run per aggregation (job_type="aggregate", same group, under `<out_dir>/wandb/`):
  the ablation table (a wandb.Table), the plots (wandb.Image) and a mAP50-95-vs-GFLOPs scatter.

One job per module: `keys` (every W&B name the runs and the dashboard use), `settings` (logger
config + environment -> mode, project, ...; credentials), `payloads` (config, history rows,
summary, tables shaped for W&B), `runs` (the run lifecycle, W&B's dirs and teardown), `offline`
(offline run dirs and run files read back), `sync` (the CLI behind `python -m src.tracking` and
`make sync`), `dashboard` (the W&B report built from these runs, `python -m
src.tracking.dashboard`).

The package imports neither torch nor ultralytics (the aggregator imports it), and imports wandb
only when a run starts.
"""

from __future__ import annotations

from src.tracking.offline import offline_run_dirs, read_offline_run
from src.tracking.runs import JobTracker, group_name, log_aggregate, start_job_run

__all__ = ["JobTracker", "group_name", "log_aggregate", "offline_run_dirs", "read_offline_run", "start_job_run"]
