"""How a sweep ended, as the shell sees it: the exit status `python -m src.run -m` returns.

Hydra returns nothing from a multirun and the jobs themselves never raise (each records its
failure in result.json), so the end-of-sweep callback (src/sweep_end.py) ends the process with
this status after the table has been printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class SweepOutcome:
    """The last aggregated sweep: its summary (counts: `n_failed`, `n_missing`, ...) or the error."""

    sweep_dir: str | None
    summary: Any = None  # the aggregator's Summary, None when aggregation failed
    error: str | None = None  # set when the aggregation itself failed

    def __getattr__(self, name: str) -> Any:
        if name.startswith("n_"):  # counts come from the summary; none when there is none
            return getattr(self.summary, name) if self.summary is not None else 0
        raise AttributeError(name)

    @property
    def exit_code(self) -> int:
        """1 when any job failed, is missing, was interrupted or is corrupt, or reporting failed."""
        return 1 if (self.n_problems or self.error) else 0
