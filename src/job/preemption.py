"""SIGTERM / SIGUSR1 (how SLURM warns before it pre-empts or times out a job) as a clean stop.

Two regimes, chosen by who already handles the signals when the job starts:
- under submitit (`hydra/launcher=slurm` or `local`), submitit owns them: its user signal (SIGUSR2
  unless SUBMITIT_PREEMPT_SIGNAL says otherwise) checkpoints, requeues and exits, and it ignores
  SIGTERM, which SLURM sends both at the start of a pre-emption's grace time and when it requeues
  a job. We only note the user signal (and route SIGUSR1 to the same requeue) and leave SIGTERM to
  submitit: a job that stopped itself on SIGTERM would race submitit's exit, or end in the grace
  time as FAILED, which SLURM does not requeue;
- otherwise (basic and parallel launchers) SIGTERM and SIGUSR1 raise Preempted in the job, which
  records itself as interrupted, and the next run of the sweep resumes it.
"""

from __future__ import annotations

import signal
from typing import Any, Callable


class Preempted(BaseException):
    """Raised inside the job when one of the signals arrives. A BaseException, like
    KeyboardInterrupt, so no `except Exception` between the handler and the job's end (ours,
    ultralytics', a library's) can swallow it and let the job train on."""


def _names(*names: str) -> tuple[signal.Signals, ...]:
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


def owned_by_submitit(handler: Any) -> bool:
    """Whether `handler` is one that submitit installed (its SignalHandler's bound methods)."""
    return type(getattr(handler, "__self__", None)).__module__.startswith("submitit.")


class preemption_signals:
    """While a job runs, SIGTERM/SIGUSR1 raise Preempted in it, or under submitit go to submitit's
    checkpoint and requeue; yields the list of signals seen."""

    SIGNALS = _names("SIGTERM", "SIGUSR1")
    SUBMITIT_SIGNALS = _names("SIGUSR1", "SIGUSR2")  # submitit's requeue handler, whichever it is bound to

    def __enter__(self) -> list[str]:
        self.received: list[str] = []
        self.previous: dict[int, Any] = {}
        try:
            requeue = self._submitit_requeue()
            for sig, handler in self._handlers(requeue).items():
                self.previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. a thread-based launcher): leave signals alone
            pass
        return self.received

    @staticmethod
    def _submitit_requeue() -> Callable | None:
        """submitit's checkpoint-and-requeue handler, when this process runs a submitit job."""
        for sig in preemption_signals.SUBMITIT_SIGNALS:
            handler = signal.getsignal(sig)
            if owned_by_submitit(handler):
                return handler
        return None

    def _handlers(self, requeue: Callable | None) -> dict[int, Callable]:
        if requeue is None:
            return {sig: self._raise for sig in self.SIGNALS}
        return {sig: self._noting(requeue) for sig in self.SUBMITIT_SIGNALS}

    def _raise(self, signum, frame):
        self.received.append(signal.Signals(signum).name)
        if len(self.received) == 1:  # a second signal while the job records the first: noted only
            raise Preempted(signal.Signals(signum).name)

    def _noting(self, requeue: Callable) -> Callable:
        def handle(signum, frame):
            self.received.append(signal.Signals(signum).name)
            requeue(signum, frame)  # submitit: checkpoint, `scontrol requeue`, SystemExit

        return handle

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
