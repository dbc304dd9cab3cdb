"""A running job's heartbeat: the modification time of its result.json, kept fresh while it works.

The runner rewrites result.json (atomically) at the start, when training starts and after every
epoch; in between, a daemon thread touches it every `interval(stale_after)` seconds, so a long
epoch never looks dead. Touching (utime with the current time, which NFS sets from the server's
clock) changes no content, so it cannot race the runner's rewrites.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

DEFAULT_STALE_AFTER = 1800.0  # seconds: `sweep.stale_after`'s default
MAX_INTERVAL = 120.0  # touch at least this often, whatever stale_after is


def interval(stale_after: float) -> float:
    """Seconds between touches: well inside `stale_after`, at most MAX_INTERVAL."""
    return max(0.2, min(MAX_INTERVAL, float(stale_after) / 4))


def age(path: Path, now: float | None = None) -> float | None:
    """Seconds since `path` was last written or touched; None when it is not there."""
    try:
        return (time.time() if now is None else now) - os.stat(path).st_mtime
    except OSError:
        return None


class Heartbeat:
    """While the block runs, touch `path` every `every` seconds from a daemon thread."""

    def __init__(self, path: Path, every: float) -> None:
        self.path, self.every = Path(path), every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat:{self.path.parent.name}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError):  # a vanished dir or a full disk: the next write tells
                os.utime(self.path)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
