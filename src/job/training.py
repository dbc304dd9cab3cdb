"""The job's ultralytics training, and what is read back from it: metrics, curve, and the
evaluation pass's per-class AP, AP by size, PR curve and matches (README "Evaluation protocol")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from src.config import evaluation
from src.files import atomic_write, atomic_write_text
from src.results import MATCHES_FILE, PR_CURVE_FILE, JobDir
from src.results.schema import (
    AP_BY_SIZE_FROM,
    BEST_EPOCH,
    CLASS_NAMES,
    CURVE,
    EVALUATION_PASS,
    FINAL_VALIDATION,
    FINISHED_RUN,
    MATCHES_FILE_KEY,
    METRICS,
    PER_CLASS,
    PR_CURVE_FILE_KEY,
    SECOND_VALIDATION,
    TRAIN_SECONDS,
)
from src.ultralytics_glue import names, trainer, validation


def train_args(cfg: dict[str, Any]) -> dict[str, Any]:
    """ultralytics train() arguments of a job config."""
    args = dict(cfg["train"])
    if args.get("device") in ("auto", None, ""):
        args.pop("device", None)  # ultralytics picks the first GPU, else the CPU
    args["seed"] = cfg["seed"]
    return args


def train_and_read(
    cfg: dict[str, Any],
    model_file: Path,
    data_yaml: Path,
    job_dir: Path,
    resume_from: Path | None,
    on_epoch: Callable | None = None,
    built=None,
) -> dict[str, Any]:
    """Train (or resume) into `job_dir/train`; the result fields the run gives. `built`: the model
    already built from `model_file` (ultralytics then does not build it once more)."""
    by_size = cfg["measure"]["ap_by_size"]
    if resume_from is not None and trainer.training_finished(resume_from):
        return _finished_run(cfg, data_yaml, job_dir, by_size)
    started = time.perf_counter()
    split_and_checkpoint = evaluation.protocol(cfg)
    in_final_pass = evaluation.in_final_pass(split_and_checkpoint)
    metrics, run = trainer.train(
        model_file,
        data_yaml,
        job_dir,
        train_args(cfg),
        resume_from,
        on_epoch=on_epoch,
        ap_by_size=by_size,
        final_split=split_and_checkpoint[0] if in_final_pass else "val",
        built=built,
    )
    fields: dict[str, Any] = {
        METRICS: metrics,
        TRAIN_SECONDS: round(time.perf_counter() - started, 2),
        "transferred": getattr(run, "transferred", None),
    }
    fields.update(learning_curve(JobDir(job_dir).results_csv))
    kept = final_validation(cfg, run, data_yaml, job_dir, by_size)
    scores = kept.pop("scores")
    if not in_final_pass:  # else the same pass as train()'s metrics
        fields[METRICS].update(scores)
    fields[METRICS].update(kept.pop(METRICS))
    fields.update(kept)
    return fields


def _finished_run(cfg: dict[str, Any], data_yaml: Path, job_dir: Path, by_size: bool) -> dict[str, Any]:
    """A run killed after its last epoch but before the job recorded it: nothing is left to train
    (ultralytics would refuse to resume), so its best checkpoint is validated as the final pass
    would have, and the result is recorded from that."""
    fields = {TRAIN_SECONDS: None, "transferred": None, **learning_curve(JobDir(job_dir).results_csv)}
    kept = final_validation(cfg, None, data_yaml, job_dir, by_size)
    fields[METRICS] = {**kept.pop("scores"), **kept.pop(METRICS)}
    fields.update(kept, **{AP_BY_SIZE_FROM: FINISHED_RUN})
    return fields


def learning_curve(results_csv: Path) -> dict[str, Any]:
    """Where the per-epoch curve is and which epoch was best (by mAP50-95, ultralytics' fitness)."""
    if not results_csv.exists():
        return {CURVE: None, BEST_EPOCH: None}
    return {
        CURVE: str(results_csv.relative_to(results_csv.parents[1])),
        BEST_EPOCH: names.best_epoch(names.read_results_csv(results_csv)),
    }


def final_validation(cfg: dict[str, Any], run, data_yaml: Path, job_dir: Path, by_size: bool) -> dict[str, Any]:
    """The result fields (mAP75, AP by size, per-class AP) and job files (PR curve, matches) of the
    evaluation pass: the `eval.checkpoint` validated on the `eval.split`.

    For `best` on any split that is ultralytics' final validation (pointed at that split), the pass
    that gives `map50_95`, at no extra cost; only where the run kept none (a multi-GPU run) is best.pt
    validated a second time. `last` is validated on its split once, after training.
    """
    split, checkpoint = evaluation.protocol(cfg)
    final = evaluation.in_final_pass((split, checkpoint))
    record = validation.final_record(run, by_size) if run is not None and final else None
    source = FINAL_VALIDATION
    if record is None:
        train = cfg["train"]
        record = validation.revalidate(
            JobDir(job_dir).checkpoint(checkpoint),  # the trainer writes into the job dir's train/
            data_yaml,
            job_dir,
            train["imgsz"],
            train["batch"],
            train_args(cfg).get("device"),
            ap_by_size=by_size,
            split=split,
        )
        source = SECOND_VALIDATION if final else EVALUATION_PASS
    write_pr_curve(JobDir(job_dir).pr_curve, *record.pr_curve)
    atomic_write(JobDir(job_dir).matches, lambda fh: np.savez_compressed(fh, **record.matches), binary=True)
    return {
        METRICS: record.metrics,
        "scores": record.scores,
        PER_CLASS: record.per_class,
        CLASS_NAMES: list(record.per_class),
        AP_BY_SIZE_FROM: source,
        MATCHES_FILE_KEY: MATCHES_FILE,
        PR_CURVE_FILE_KEY: PR_CURVE_FILE,
        "metrics_ci": test_set_ci(record.matches, int((cfg.get("aggregate") or {}).get("bootstrap", 0))),
    }


def test_set_ci(matches: dict[str, np.ndarray], n_resamples: int, seed: int = 0) -> dict[str, Any] | None:
    """95% percentile CIs of mAP50-95 and mAP50 from resampling the validation images (README
    "Reading the table"); None with 0 resamples."""
    from src.metrics import bootstrap_ci

    return bootstrap_ci(matches, n_resamples=n_resamples, seed=seed) if n_resamples else None


def write_pr_curve(path: Path, recall: np.ndarray, precision: np.ndarray) -> Path:
    """recall,precision rows (ultralytics' 1000-point recall grid)."""
    rows = "".join(f"{r:.6g},{p:.6g}\n" for r, p in zip(recall, precision, strict=False))
    return atomic_write_text(path, "recall,precision\n" + rows)
