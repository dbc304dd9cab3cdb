"""Sharing the `none` baseline across the positions of a sweep, without waiting for it.

Under the sweep's election lock, a baseline job asks `src.sweep.election` which twin owns the
training: a completed one (its result is copied here with `reused_from`), or one that is live or
was interrupted with a checkpoint to resume (this job records `deferred` with `deferred_to` and
ends at once, holding no GPU; the aggregator takes the twin's result when it builds the table).
Otherwise this job trains it: the first live job of the group does, and the others see its
`running` result.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from src.config.identity import train_key
from src.job.provenance import now
from src.results import BASELINE, COMPLETED, DEFERRED, LAST_CHECKPOINT, RUNNING, reused_result, write_result
from src.results.schema import DEFERRED_BECAUSE, DEFERRED_TO, FINISHED_AT, STATUS
from src.sweep.election import baseline_twins, elect
from src.sweep.lock import sweep_lock
from src.sweep.state import DONE, ELSEWHERE, NEW, RESUMABLE, checkpoint_complete, is_live

log = logging.getLogger(__name__)

# Why a job took a twin, as recorded in `deferred_because` (older results spell them so).
WHY = {DONE: COMPLETED, ELSEWHERE: "live", RESUMABLE: "resumable"}


def share_baseline(
    plain: dict[str, Any],
    job_dir: Path,
    result: dict[str, Any],
    stale_after: float,
    previous: dict[str, Any] | None = None,
    can_resume: bool = False,
) -> dict[str, Any] | None:
    """This job's final result when a twin trains (or trained) its baseline, written here; None
    when this job trains it. `result` is the job's `running` result, already written (which
    is how later twins see it); `previous` what the dir held before this run; `can_resume`: this
    job has a checkpoint of its own to resume."""
    if plain["attn"]["name"] != BASELINE or plain.get("dry_run"):
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
        if why == WHY[DONE]:
            shared = reused_result(owner, {**result, FINISHED_AT: now()})
            log.info("baseline already trained in %s: reused", owner_dir.name)
        else:
            shared = {
                **result,
                STATUS: DEFERRED,
                DEFERRED_TO: str(owner_dir),
                DEFERRED_BECAUSE: why,
                FINISHED_AT: now(),
            }
            log.info("baseline deferred to %s (%s); this job ends here", owner_dir.name, why)
        write_result(job_dir, shared)
    return shared


def choose_owner(
    twins: list[tuple[Path, dict[str, Any]]], stale_after: float, previous: dict[str, Any] | None, can_resume: bool
) -> tuple[Path, dict[str, Any], str] | None:
    """The twin this job takes its baseline from, and why; None: this job trains it.

    The election's order, with this job ranked among the resumable ones when it can resume its
    own checkpoint (it does so rather than defer); a dead twin this job already deferred to once,
    which never came back, is not deferred to again.
    """
    me = (None, None)

    def kind(member: tuple) -> str:
        if member is me:
            return RESUMABLE if can_resume else NEW
        owner_dir, owner = member
        if owner[STATUS] == COMPLETED:
            return DONE
        if is_live(owner_dir, owner, stale_after):
            return ELSEWHERE
        if (
            owner[STATUS] == RUNNING
            and checkpoint_complete(owner_dir / LAST_CHECKPOINT)
            and not _deferred_before(previous, owner_dir)
        ):
            return RESUMABLE
        return NEW

    elected = elect([*twins, me], kind, prefer=me)
    if elected is None or elected[0] is me:
        return None
    (owner_dir, owner), owner_kind = elected
    return owner_dir, owner, WHY[owner_kind]


def _deferred_before(previous: dict[str, Any] | None, owner_dir: Path) -> bool:
    return (
        bool(previous)
        and previous.get(STATUS) == DEFERRED
        and Path(str(previous.get(DEFERRED_TO))).name == owner_dir.name
        and previous.get(DEFERRED_BECAUSE) == WHY[RESUMABLE]
    )
