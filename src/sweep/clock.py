"""Durations as people read them, and the sweep's ETA: shared by the progress lines, `plan` and the
whereabouts of a running job."""

from __future__ import annotations


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def eta(started: float, now: float, done: int, total: int) -> float | None:
    """Remaining time if the jobs still to finish take as long as the finished ones did on average."""
    if done <= 0:
        return None
    per_job = (now - started) / done
    return max(0.0, per_job * (total - done))
