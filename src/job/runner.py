"""One job from start to end: lock, skip or resume, announce, build, measure, train, record.

A job holds its dir's lock (src/sweep/lock.py) from start to end, so a second launch of the sweep
skips it ("running elsewhere"), and keeps its result.json's heartbeat fresh while it trains
(src/sweep/heartbeat.py). Everything a job does ends in exactly one result.json in its directory,
written atomically, whatever happened: a failure is recorded there instead of propagating, so one
bad job never takes the rest of a sweep down.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from pathlib import Path
from typing import IO, Any, Callable

from omegaconf import DictConfig, OmegaConf

from src import data, tracking
from src.arch.positions import position_label
from src.config.checks import check_config
from src.config.identity import config_hash, identity, run_name, train_key
from src.config.study import expanded
from src.job.baseline import share_baseline
from src.job.measurements import entry_costs, measure_device, measure_model
from src.job.model_file import entry_records, write_model_yaml
from src.job.peak_memory import training_peak
from src.job.preemption import preemption_signals
from src.job.provenance import now, versions
from src.job.training import train_and_read
from src.results import (
    BASELINE,
    COMPLETED,
    DRY_RUN,
    FAILED,
    LAST_CHECKPOINT,
    RESULT_FILE,
    RUNNING,
    empty_result,
    read_result_or_none,
    write_result,
)
from src.results.schema import (
    ATTN,
    CONFIG_HASH,
    DATASET,
    ENTRIES,
    EPOCHS_DONE,
    ERROR,
    FINISHED_AT,
    HOST,
    INTERRUPTED,
    JOB_DIR,
    MODEL,
    MODEL_YAML,
    OVERRIDES,
    PID,
    POS,
    SEED,
    SKIPPED,
    STALE_AFTER,
    STARTED_AT,
    STATUS,
    TRACEBACK,
    TRAIN_KEY,
    TRAIN_PEAK_MEM_HOW,
    TRAIN_PEAK_MEM_MB,
    VARIANT,
    variant_label,
)
from src.runtime import ultralytics_home
from src.sweep.heartbeat import Heartbeat, interval
from src.sweep.lock import job_lock
from src.sweep.placement import Placement
from src.sweep.state import DONE, ELSEWHERE, RESUMABLE, JobState, job_state, stale_after_of, whereabouts
from src.ultralytics_glue.console import EPOCHS, epoch_line, job_console

log = logging.getLogger(__name__)


def run_job(
    cfg: DictConfig | dict,
    job_dir: Path,
    overrides: list[str] | None = None,
    placement: Placement | None = None,
    tracking_group: str | None = None,
    pos_label: str | None = None,
    resume_command: str | None = None,
) -> dict[str, Any]:
    """Run one job, or skip / resume it when its directory already holds this config's work, or
    skip it when it is live elsewhere (another launch of the sweep, another host).

    `pos_label` names the position in tables and runs (the entry point derives it from Hydra's
    choice); by default the preset's own `name`. `resume_command` is what an interrupted job
    tells the user to run (the entry point knows the sweep's command line and directory).
    """
    job_dir = Path(job_dir).resolve()
    plain = expanded(cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True))
    if placement and placement.device is not None:
        plain["train"]["device"] = placement.device
    if placement and placement.threads:
        import torch

        torch.set_num_threads(placement.threads)
    stale_after = stale_after_of(plain)
    with job_lock(job_dir) as locked:  # at most one live run per job dir, on any launch
        previous = read_result_or_none(job_dir)
        state = job_state(
            job_dir, previous, config_hash(plain), bool(plain.get("dry_run")), stale_after, own_lock=locked
        )
        if not locked and state.kind != DONE:  # its lock is held: another process has it in hand
            state = JobState(ELSEWHERE)
        if state.kind == DONE:
            log.info("skipped: %s already holds a %s result for this config", job_dir, previous[STATUS])
            return previous
        if state.kind == ELSEWHERE:
            where = whereabouts(job_dir, previous) if previous else "lock held, no result yet"
            log.warning("skipped: %s is running elsewhere (%s)", job_dir.name, where)
            return {**(previous or empty_result(**{JOB_DIR: str(job_dir)})), SKIPPED: f"running elsewhere ({where})"}
        if previous is not None and state.detail:
            log.info("%s: %s", job_dir.name, state)
        return _attempt(
            plain,
            job_dir,
            previous,
            state.kind == RESUMABLE,
            stale_after,
            overrides,
            tracking_group,
            pos_label,
            resume_command,
        )


def _attempt(
    plain: dict[str, Any],
    job_dir: Path,
    previous: dict[str, Any] | None,
    resume: bool,
    stale_after: float,
    overrides: list[str] | None,
    tracking_group: str | None,
    pos_label: str | None,
    resume_command: str | None = None,
) -> dict[str, Any]:
    """The job itself, under its lock: announce, share the baseline or train, record."""
    last = job_dir / LAST_CHECKPOINT
    try:
        pos_label = pos_label or position_label(plain["pos"], plain["pos"].get("name"))
        ident = identity(plain, pos_label)
    except (KeyError, TypeError, ValueError, AttributeError):  # malformed config: the checks name the problem
        ident = {}
    result = empty_result(
        **ident,
        **{
            JOB_DIR: str(job_dir),
            OVERRIDES: list(overrides or []),
            CONFIG_HASH: config_hash(plain),
            TRAIN_KEY: train_key(plain),
            "versions": versions(),
            STARTED_AT: now(),
            HOST: socket.gethostname(),
            PID: os.getpid(),
            STALE_AFTER: stale_after,
        },
    )
    try:  # before the announce, the baseline share, W&B, the dataset and the model: a bad value costs nothing
        arch = _checked(plain)
    except Exception as exc:  # recorded, not raised: see the module docstring
        _record_failure(result, exc)
        result[FINISHED_AT] = now()
        write_result(job_dir, result)
        return result
    write_result(job_dir, result)  # announces this job to its siblings: the baseline election follows at once
    shared = share_baseline(plain, job_dir, result, stale_after, previous, can_resume=resume) if ident else None
    if shared is not None:
        return shared
    tracker = tracking.start_job_run(
        plain.get("logger"),
        plain,
        job_dir,
        group=tracking_group or f"run-{job_dir.name}",
        name=run_name(overrides, variant_label(ident[ATTN], ident[POS], "@") if ident.get(VARIANT) else None),
        tags=[ident.get(k) for k in (DATASET, MODEL, ATTN, POS) if ident.get(k)],
        identity={k: ident[k] for k in (ATTN, POS, DATASET, MODEL, SEED) if k in ident},
    )
    with preemption_signals() as received, Heartbeat(job_dir / RESULT_FILE, interval(stale_after)):
        try:
            with job_console(job_dir, plain.get("console", EPOCHS)) as console:
                _run(
                    plain,
                    arch,
                    job_dir,
                    result,
                    ident.get("pos"),
                    resume_from=last if resume else None,
                    on_epoch=_beating(job_dir, result, tracker.log_epoch, console, plain["train"]["epochs"]),
                )
        except BaseException as exc:  # recorded, not raised: see the module docstring
            if received:  # Preempted, or submitit's SystemExit after it requeued the job
                result.update({STATUS: RUNNING, INTERRUPTED: True, ERROR: interrupted_by(received[0], resume_command)})
            elif not isinstance(exc, Exception):  # e.g. Ctrl-C: left as it is, and resumable
                raise
            else:
                _record_failure(result, exc)
        finally:
            result[FINISHED_AT] = now()
            write_result(job_dir, result)
            tracker.finish(result)
    if received:  # the machine is going away: stop here, do not start the next job of the sweep
        raise SystemExit(f"{job_dir.name}: {result.get(ERROR) or 'interrupted'}")
    return result


def interrupted_by(signal_name: str, resume_command: str | None) -> str:
    """The error an interrupted job records: how it comes back (no command: submitit requeued it)."""
    if resume_command is None:
        return f"interrupted by {signal_name}; submitit requeued it: the requeued job resumes from {LAST_CHECKPOINT}"
    return f"interrupted by {signal_name}; to resume: {resume_command}"


def _record_failure(result: dict[str, Any], exc: Exception) -> None:
    """A failed job's status, error and the end of its traceback, into its result (called in an except)."""
    log.error("job failed: %s", exc)
    result[STATUS] = FAILED
    result[ERROR] = f"{type(exc).__name__}: {exc}"
    result[TRACEBACK] = "".join(traceback.format_exc().splitlines(keepends=True)[-30:])


def _checked(plain: dict[str, Any]):
    """The job's config checked (src/config/checks.py): its architecture, the position resolved once."""
    from src.ultralytics_glue import settings

    return check_config(plain, settings.train_arg_names())


def _beating(
    job_dir: Path, result: dict[str, Any], log_epoch: Callable, console: IO[str] | None = None, epochs: int = 0
) -> Callable:
    """The on_epoch callback: record the epoch in result.json (a heartbeat too), log it, and print
    its line on `console` (None: ultralytics prints its own)."""

    def on_epoch(epoch: int, values: dict[str, float]) -> None:
        result[EPOCHS_DONE] = epoch
        try:
            write_result(job_dir, result)
        except OSError as exc:  # e.g. a full disk: the training itself will say so if it matters
            log.warning("could not record epoch %d in %s: %s", epoch, job_dir / RESULT_FILE, exc)
        log_epoch(epoch, values)
        if console is not None:
            print(epoch_line(job_dir.name, epoch, epochs, values), file=console, flush=True)

    return on_epoch


def _run(
    plain: dict[str, Any],
    arch,
    job_dir: Path,
    result: dict[str, Any],
    pos_label: str,
    resume_from: Path | None,
    on_epoch=None,
) -> None:
    from src.ultralytics_glue import settings
    from src.ultralytics_glue.model import build_model

    settings.configure(ultralytics_home(plain["paths"]["outputs"]))
    rewrite, model_file = write_model_yaml(plain, arch, job_dir, pos_label)
    result[MODEL_YAML] = model_file.name
    result["inserted_layers"] = sorted(rewrite.inserted)
    if plain["attn"]["name"] == BASELINE or len(rewrite.entries) > 1:  # nothing, or each entry its own
        result.update(pos_after=None, pos_replace=None, pos_inside=None, pos_inside_mode=None)
        if len(rewrite.entries) > 1:
            result[ENTRIES] = entry_records(plain, arch, rewrite)
    else:  # the indices the position resolved to in this base (as configured: `pos_configured`)
        position = arch.position
        result.update(
            pos_after=position.after,
            pos_replace=position.replace,
            pos_inside=position.inside,
            pos_inside_mode=position.inside_mode if position.inside else None,
            inside_blocks=rewrite.inside,
        )
    if not plain.get("dry_run"):  # a missing dataset fails here, before any model is built
        data_yaml = data.prepare(plain["dataset"], Path(plain["paths"]["cache"]))
        result["data_yaml"] = str(data_yaml)
    model = build_model(model_file, nc=len(plain["dataset"]["names"]))
    result.update(measure_model(plain, arch, model, model_file, job_dir))
    if result.get(ENTRIES):  # what each module adds
        costs = entry_costs(model, rewrite.entries, plain["train"]["imgsz"])
        for record, added in zip(result[ENTRIES], costs, strict=True):
            record.update(added)
    if plain.get("dry_run"):
        result[STATUS] = DRY_RUN
        return
    result["resumed_from"] = str(resume_from) if resume_from else None
    result["train_started_at"] = now()
    write_result(job_dir, result)  # the heartbeat, and when setup ended (how long twins may take)
    device = str(plain["train"].get("device"))
    training = (plain, model_file, data_yaml, job_dir, resume_from)
    if "," in device:  # DDP: training runs in worker processes (src/job/peak_memory.py)
        result.update({TRAIN_PEAK_MEM_MB: None, TRAIN_PEAK_MEM_HOW: "not measured (multi-GPU training)"})
        result.update(train_and_read(*training, on_epoch=on_epoch, built=model))
    else:
        with training_peak(measure_device(device)) as peak:
            result.update(train_and_read(*training, on_epoch=on_epoch, built=model))
        result.update(peak)
    result[STATUS] = COMPLETED
