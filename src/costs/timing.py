"""Interleaved timing: every model a few runs in turn, round after round, in one process.

Timed one after another, model A gets the quiet minute and model B the busy one; timed in turn
(A B C, B C A, C A B, ...: the order rotates so no model always follows the same one), a change
in the machine's load lands on every model alike, and their figures stay comparable. Each figure
is the median of its runs, its spread the 25th and 75th percentiles.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from src.results.costs import HIGH, LOW

TimeRuns = Callable[[int], list[float]]  # runs k passes of one model, returns each one's seconds


def interleaved(slots: Sequence[TimeRuns], rounds: int, runs_per_round: int) -> list[list[float]]:
    """Each slot's seconds over `rounds` rounds of `runs_per_round` runs, the slots taken in turn."""
    if rounds < 1 or runs_per_round < 1:
        raise ValueError(f"rounds={rounds}, runs_per_round={runs_per_round}: both must be >= 1")
    times: list[list[float]] = [[] for _ in slots]
    n = len(slots)
    for r in range(rounds):
        for i in range(n):
            k = (i + r) % n
            times[k].extend(slots[k](runs_per_round))
    return times


def summary_ms(key: str, seconds: Sequence[float]) -> dict[str, float]:
    """`key`: the median of per-pass seconds in ms; key + LOW / HIGH: its quartiles."""
    q1, median, q3 = np.percentile(np.asarray(seconds) * 1000.0, [25, 50, 75])
    return {key: round(float(median), 3), key + LOW: round(float(q1), 3), key + HIGH: round(float(q3), 3)}


def summary_ips(key: str, seconds: Sequence[float], batch: int) -> dict[str, float]:
    """`key`: images per second of batches that took `seconds` (median); its quartiles (slow = low)."""
    q1, median, q3 = np.percentile(np.asarray(seconds), [25, 50, 75])
    return {
        key: round(batch / float(median), 2),
        key + LOW: round(batch / float(q3), 2),
        key + HIGH: round(batch / float(q1), 2),
    }
