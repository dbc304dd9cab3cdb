"""Which job of a sweep trains a shared `none` baseline: one rule for the runner and for `plan`.

The baseline does not depend on `pos`, so per (train_key, seed) one `none` job trains it and its
twins at the other positions take its result. The owner is the first twin (in job order) that has
completed the training, else the first one live elsewhere, else the first one stopped with a
checkpoint to resume; otherwise the job asking trains it itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from src.results import BASELINE, DEFERRED, DRY_RUN, RESULT_FILE, JobDir, read_result
from src.results.schema import ATTN, REUSED_FROM, SEED, STATUS, TRAIN_KEY
from src.sweep.state import DONE, ELSEWHERE, RESUMABLE

T = TypeVar("T")
OWNER_ORDER = (DONE, ELSEWHERE, RESUMABLE)  # what makes a twin the owner, best first


def elect(members: Sequence[T], kind: Callable[[T], str], prefer: T | None = None) -> tuple[T, str] | None:
    """The owner among `members` (in job order) and its kind; `prefer` wins a tie of its kind
    (a job that can resume its own checkpoint does so). None: nobody holds the training yet."""
    for wanted in OWNER_ORDER:
        ranked = [m for m in members if kind(m) == wanted]
        if ranked:
            return (prefer if prefer in ranked else ranked[0]), wanted
    return None


def baseline_twins(sweep_dir: Path, job_dir: Path, key: str, seed: Any) -> list[tuple[Path, dict[str, Any]]]:
    """The jobs of the sweep that train (or trained) this baseline themselves, in job order:
    the baseline's attention, same train_key and seed, neither deferred nor a copy."""
    twins = []
    for path in sweep_dir.glob(f"*/{RESULT_FILE}"):
        if path.parent == job_dir:
            continue
        try:
            res = read_result(path)
        except ValueError:
            continue
        if (
            (res.get(ATTN), res.get(TRAIN_KEY), res.get(SEED)) == (BASELINE, key, seed)
            and res[STATUS] not in (DEFERRED, DRY_RUN)
            and not res.get(REUSED_FROM)
        ):
            twins.append((path.parent, res))
    return sorted(twins, key=lambda t: (JobDir(t[0]).number, t[0].name))
