"""What a `result.json` says: its statuses, its keys, the baseline's name.

The one home of these names. Jobs write them (src/job), the sweep judges job dirs by them
(src/sweep), the aggregator, W&B and the figures read them (src/aggregate, src/tracking,
src/visualize); none of them spells a key or a status itself. Torch-free: reporting must work on a
machine that only has the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1
BASELINE = "none"  # the attention name of the baseline: no module inserted


class Status(StrEnum):
    """A job's outcome. A StrEnum, so it is written to and compared with JSON as its plain value."""

    COMPLETED = "completed"
    FAILED = "failed"
    DRY_RUN = "dry_run"  # built and measured the model, no training
    RUNNING = "running"  # live, or stopped (interrupted / died) with the work so far recorded
    DEFERRED = "deferred"  # a baseline whose twin (same train_key and seed) trains it: see DEFERRED_TO
    MISSING = "missing"  # aggregator only: a Hydra job dir without result.json
    CORRUPT = "corrupt"  # aggregator only: a result.json that cannot be read


COMPLETED, FAILED, DRY_RUN, RUNNING, DEFERRED, MISSING, CORRUPT = Status
STATUSES = (COMPLETED, FAILED, DRY_RUN, RUNNING, DEFERRED)  # what a job writes
TERMINAL = (COMPLETED, FAILED, DRY_RUN, DEFERRED)  # a job that has ended
PROBLEMS = (FAILED, RUNNING, MISSING, CORRUPT)  # rows a table lists as problems

# ------------------------------------------------------------------------------- top-level keys
STATUS, ERROR, TRACEBACK = "status", "error", "traceback"
JOB_DIR, OVERRIDES, CONFIG_HASH, TRAIN_KEY = "job_dir", "overrides", "config_hash", "train_key"
HOST, PID, STALE_AFTER = "host", "pid", "stale_after"
STARTED_AT, TRAIN_STARTED_AT, FINISHED_AT = "started_at", "train_started_at", "finished_at"
TRAIN_SECONDS, EPOCHS_DONE, INTERRUPTED, RESUMED_FROM = "train_seconds", "epochs_done", "interrupted", "resumed_from"
REUSED_FROM = "reused_from"  # a baseline copied from the twin that trained it
DEFERRED_TO, DEFERRED_BECAUSE = "deferred_to", "deferred_because"
SKIPPED = "skipped"  # not a stored key: the runner's answer for a skip
METRICS = "metrics"
CURVE, BEST_EPOCH = "curve", "best_epoch"
MATCHES_FILE_KEY, PR_CURVE_FILE_KEY = "matches_file", "pr_curve_file"
PER_CLASS, CLASS_NAMES = "per_class", "class_names"
# Which split and checkpoint the final metrics, per-class AP, matches and PR curve come from (README
# "Evaluation protocol"); results from before these keys are (val, best): EVAL_DEFAULTS.
EVAL_SPLIT, EVAL_CHECKPOINT = "eval_split", "eval_checkpoint"
EVAL_DEFAULTS = {EVAL_SPLIT: "val", EVAL_CHECKPOINT: "best"}
AP_BY_SIZE_FROM = "ap_by_size_from"  # which validation pass the figures come from:
FINAL_VALIDATION = "final_validation"  # ultralytics' own, at the end of training (best, on eval.split)
SECOND_VALIDATION = "second_validation"  # best.pt on val again (multi-GPU runs keep none)
EVALUATION_PASS = "evaluation_pass"  # eval.checkpoint validated on eval.split once
FINISHED_RUN = "validation_of_a_finished_run"  # recorded after a kill past the last epoch

# Keys every result carries (values may be None for a job that failed early).
DATASET, ATTN, POS, MODEL, SEED, EPOCHS, IMGSZ = "dataset", "attn", "pos", "model", "seed", "epochs", "imgsz"
IDENTITY_KEYS = (DATASET, ATTN, POS, MODEL, SEED, EPOCHS, IMGSZ)
# A model with several modules (`variant=`, src/config/study.py): per entry its label, module, position
# (configured and resolved) and what it adds (params_added, gflops_exact_added); absent otherwise.
ENTRIES = "entries"
# A job of a study (`variant=`): the variant as written (`A+B`, `none`) and the study it belongs to,
# {"design": ..., "components": [[name, label], ...]} in the study's order (README "Factorial studies").
VARIANT, STUDY = "variant", "study"
AT, PLUS = "@", "+"  # an entry's label joins module and position; a variant's joins its entries


def evaluated_with(result: Mapping[str, Any], key: str) -> str:
    """The split (`EVAL_SPLIT`) or checkpoint (`EVAL_CHECKPOINT`) a result was scored with."""
    value = result.get(key)
    return value if isinstance(value, str) else EVAL_DEFAULTS[key]


def entry_label(attn: str, pos: str) -> str:
    """An entry's label, as result.json, tables and model file names spell it: `ema@neck`."""
    return f"{attn}{AT}{pos}"


def variant_label(attn: object, pos: object, at: str = " @ ") -> str:
    """A variant as tables, figures and logs name it: `ema @ neck`, and a model with several modules
    (attn `ema+cot`, pos `neck+backbone_p5`) entry by entry, `ema@neck + cot@backbone_p5`."""
    attns, poss = str(attn).split(PLUS), str(pos).split(PLUS)
    if len(attns) > 1 and len(attns) == len(poss):
        return f" {PLUS} ".join(entry_label(a, p) for a, p in zip(attns, poss, strict=True))
    return f"{attn}{at}{pos}"


MODEL_YAML = "model_yaml"  # the job's model YAML, a file name inside its job dir (the architecture as data)
POS_CONFIGURED = "pos_configured"  # the position as configured (roles or indices); pos_after/... hold it resolved
METRIC_KEYS = ("map50", "map50_95", "precision", "recall")  # under METRICS: our names of ultralytics' metrics
# What the sweep's side-by-side cost pass measures (src/costs, its costs.json): every variant timed
# in one process, on one device, interleaved. The aggregator gives each job its variant's figures
# under these names; the tables, Δ columns and plots read them from there (README "How we measure").
LATENCY_MS, THROUGHPUT_IPS, ONNX_CPU_MS = "latency_ms", "throughput_ips", "onnx_cpu_ms"
MEM_MB_BATCH1, MEM_MB_BATCH = "mem_mb_batch1", "mem_mb_batch"  # inference peak memory, MiB
SIDE_BY_SIDE = (LATENCY_MS, THROUGHPUT_IPS, ONNX_CPU_MS, MEM_MB_BATCH1, MEM_MB_BATCH)
# The job's own timing of its model, at its moment on its machine: a diagnostic, never a table
# column. Results from before the cost pass wrote it as `latency_ms` / `throughput_ips`; the
# aggregator reads those as these (LEGACY_JOB_KEYS).
LATENCY_MS_JOB, THROUGHPUT_IPS_JOB = "latency_ms_job", "throughput_ips_job"
LEGACY_JOB_KEYS = {LATENCY_MS: LATENCY_MS_JOB, THROUGHPUT_IPS: THROUGHPUT_IPS_JOB}
# Training's peak memory, MiB, and how it was taken (CUDA max allocated, or the process's peak RSS).
TRAIN_PEAK_MEM_MB, TRAIN_PEAK_MEM_HOW = "train_peak_mem_mb", "train_peak_mem_how"
# Top-level numeric fields that describe what a model costs (tables, cost plots).
COST_KEYS = ("params", "gflops", "gflops_exact", *SIDE_BY_SIDE, "params_added")
# The cost figures a job writes into its own result.json (W&B summary).
JOB_COST_KEYS = (
    "params",
    "gflops",
    "gflops_exact",
    "params_added",
    LATENCY_MS_JOB,
    THROUGHPUT_IPS_JOB,
    TRAIN_PEAK_MEM_MB,
)

# What stays the job's own when it takes its numbers from the twin that trained its baseline.
OWN_KEYS = (
    JOB_DIR,
    VARIANT,
    STUDY,
    CONFIG_HASH,
    POS,
    POS_CONFIGURED,
    "pos_after",
    "pos_replace",
    OVERRIDES,
    HOST,
    PID,
    STARTED_AT,
    FINISHED_AT,
)
