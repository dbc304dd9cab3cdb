"""Sharing the `none` baseline across the positions of a sweep, without waiting for it.

The baseline does not depend on `pos`, so it is trained once per (training settings, seed). Its
jobs at the other positions never wait: under the sweep's election lock, a `none` job takes a twin
(same train_key and seed, `attn=none`, another job dir of the sweep) that has completed (its
result is copied here with `reused_from`), or one that is live or was interrupted with a
checkpoint to resume (this job records `deferred` with `deferred_to` and ends at once, holding no
GPU; the aggregator takes the twin's result when it builds the table). Otherwise this job trains
it: the first live job of the group does, and the others see its `running` result.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from src.config.identity import train_key
from src.job.provenance import now
from src.results import COMPLETED, DEFERRED, DRY_RUN, RESULT_FILE, RUNNING, read_result, reused_result, write_result
from src.sweep.lock import sweep_lock
from src.sweep.state import LAST_CHECKPOINT, checkpoint_complete, is_live, job_number

log = logging.getLogger(__name__)

REUSED, LIVE, RESUMABLE = "completed", "live", "resumable"  # why a job took a twin


def share_baseline(plain: dict[str, Any], job_dir: Path, result: dict[str, Any], stale_after: float,
                   previous: dict[str, Any] | None = None, can_resume: bool = False) -> dict[str, Any] | None:
    """This job's final result when a twin trains (or trained) its baseline, written here; None
    when this job trains it. `result` is the job's `running` result, already written (which
    is how later twins see it); `previous` what the dir held before this run; `can_resume`: this
    job has a checkpoint of its own to resume."""
    if plain["attn"]["name"] != "none" or plain.get("dry_run"):
        return None
    sweep_dir = job_dir.parent
    if not (sweep_dir / "multirun.yaml").exists():  # a single run: its neighbours are unrelated runs
        return None
    with sweep_lock(sweep_dir):
        twins = baseline_twins(sweep_dir, job_dir, train_key(plain), plain["seed"])
        chosen = choose_owner(twins, stale_after, previous, can_resume)
        if chosen is None:
            return None
        owner_dir, owner, why = chosen
        if why == REUSED:
            shared = reused_result(owner, {**result, "finished_at": now()})
            log.info("baseline already trained in %s: reused", owner_dir.name)
        else:
            shared = {**result, "status": DEFERRED, "deferred_to": str(owner_dir), "deferred_because": why,
                      "finished_at": now()}
            log.info("baseline deferred to %s (%s); this job ends here", owner_dir.name, why)
        write_result(job_dir, shared)
    return shared


def baseline_twins(sweep_dir: Path, job_dir: Path, key: str, seed: Any) -> list[tuple[Path, dict[str, Any]]]:
    """The jobs of the sweep that train (or trained) this baseline themselves, in job order:
    `attn=none`, same train_key and seed, neither deferred nor a copy."""
    twins = []
    for path in sweep_dir.glob(f"*/{RESULT_FILE}"):
        if path.parent == job_dir:
            continue
        try:
            res = read_result(path)
        except ValueError:
            continue
        if (res.get("attn"), res.get("train_key"), res.get("seed")) == ("none", key, seed) \
                and res["status"] not in (DEFERRED, DRY_RUN) and not res.get("reused_from"):
            twins.append((path.parent, res))
    return sorted(twins, key=lambda t: (job_number(t[0]), t[0].name))


def choose_owner(twins: list[tuple[Path, dict[str, Any]]], stale_after: float, previous: dict[str, Any] | None,
                 can_resume: bool) -> tuple[Path, dict[str, Any], str] | None:
    """The twin this job takes its baseline from, and why; None: this job trains it.

    A completed twin first, then a live one, then a dead one with a checkpoint to resume (its own
    job resumes it when this run reaches it; the table says so if it does not) - except when this
    job can resume its own, or already deferred to that same dead twin once and it never came back.
    """
    for owner_dir, owner in twins:
        if owner["status"] == COMPLETED:
            return owner_dir, owner, REUSED
    for owner_dir, owner in twins:
        if is_live(owner_dir, owner, stale_after):
            return owner_dir, owner, LIVE
    if can_resume:
        return None
    for owner_dir, owner in twins:
        deferred_before = bool(previous) and previous.get("status") == DEFERRED \
            and Path(str(previous.get("deferred_to"))).name == owner_dir.name \
            and previous.get("deferred_because") == RESUMABLE
        if owner["status"] == RUNNING and checkpoint_complete(owner_dir / LAST_CHECKPOINT) \
                and not deferred_before:
            return owner_dir, owner, RESUMABLE
    return None
