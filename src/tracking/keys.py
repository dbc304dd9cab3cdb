"""Every W&B name our runs log and the dashboard's panels read (config, history, summary, job types).

Defined once here: src/tracking logs under these names and src/tracking/dashboard.py builds its panels from
them, so a renamed key reaches both. ultralytics' own metric names come from
src/ultralytics_glue/names.py, the cost figures from src.results.JOB_COST_KEYS (result.json's names).
"""

from __future__ import annotations

from src.results import JOB_COST_KEYS
from src.results.schema import BEST_EPOCH, TRAIN_SECONDS
from src.results.schema import LATENCY_MS_JOB as LATENCY_MS_JOB  # re-exported: the summary's name
from src.ultralytics_glue.names import ULTRALYTICS_METRICS

DEFAULT_PROJECT = "yolo11-attention"

# ----------------------------------------------------------------------------------------- config
ATTN, POS, DATASET, MODEL, SEED = "attn", "pos", "dataset", "model", "seed"
RUN_CONFIG_KEYS = (ATTN, POS, DATASET, MODEL, SEED)  # a W&B run's top-level config scalars: filter and group by
CFG = "cfg"  # config key holding the full resolved config

# ---------------------------------------------------------------------------------------- history
EPOCH = "epoch"  # history step metric
METRIC_PREFIX = "metrics/"
MAP50_95 = METRIC_PREFIX + "map50_95"
MAP50 = METRIC_PREFIX + "map50"
PRECISION = METRIC_PREFIX + "precision"
RECALL = METRIC_PREFIX + "recall"
TRAIN_LOSSES = ("train/box_loss", "train/cls_loss", "train/dfl_loss")
VAL_LOSSES = ("val/box_loss", "val/cls_loss", "val/dfl_loss")
LR_PREFIX = "lr/"

# ultralytics' per-epoch names -> ours (`metrics/mAP50-95(B)` -> `metrics/map50_95`); anything else
# is logged under its own name
ULTRALYTICS_KEYS = {theirs: METRIC_PREFIX + ours for theirs, ours in ULTRALYTICS_METRICS.items()}

# ---------------------------------------------------------------------------------------- summary
# result.json's own names, copied into the summary as they are (besides metrics/*)
PARAMS, GFLOPS, GFLOPS_EXACT = "params", "gflops", "gflops_exact"
# LATENCY_MS_JOB (src.results.schema): the job's own timing, a diagnostic (the table's is the cost pass's)
SUMMARY_SCALARS = (*JOB_COST_KEYS, TRAIN_SECONDS, BEST_EPOCH)
STATUS, ERROR = "status", "error"

# ---------------------------------------------------------------------------------- aggregate run
JOB_TYPE_TRAIN, JOB_TYPE_AGGREGATE = "train", "aggregate"
ABLATION_TABLE = "ablation/table"  # wandb.Table in the aggregate run
PER_CLASS_TABLE = "ablation/per_class"  # wandb.Table: per_class.csv's rows
TRADEOFF_CHART = "ablation/map50_95_vs_gflops"  # wandb.plot.scatter in the aggregate run
TRADEOFF_TABLE = f"{TRADEOFF_CHART}_table"  # ... whose table W&B logs under this key
TRADEOFF_X, TRADEOFF_Y = "gflops", "map50_95"  # the scatter's axes (columns of its table)
TRADEOFF_COLUMNS = (TRADEOFF_X, TRADEOFF_Y, "label")
PLOT_PREFIX = "plots/"  # each PNG as plots/<file stem>
