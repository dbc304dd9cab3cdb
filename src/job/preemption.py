"""SIGTERM / SIGUSR1 (how SLURM warns before it pre-empts or times out a job) as a clean stop."""
from __future__ import annotations

import signal


class Preempted(Exception):
    """Raised inside the job when one of the signals arrives."""


class preemption_signals:
    """While a job runs, SIGTERM/SIGUSR1 raise Preempted in it; yields the list of signals seen."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))

    def __enter__(self) -> list[str]:
        self.received: list[str] = []
        self.previous = {}
        try:
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread (e.g. a thread-based launcher): leave signals alone
            pass
        return self.received

    def _handle(self, signum, frame):
        self.received.append(signal.Signals(signum).name)
        raise Preempted(signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
