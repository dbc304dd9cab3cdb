"""What a job prints on the console. By default (`console=epochs`) ultralytics' own output (model
summary, per-batch progress, validation tables) goes to the job's run.log, and the console gets the
sweep's lines, the job's own log lines, ultralytics' warnings and one line per epoch: a sweep's
start and end lines stay readable. `console=ultralytics` leaves ultralytics' output on the console.
Either way an identical ultralytics warning is shown once per job (the `cache='ram'` warning came
six times a job)."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import IO, Iterator, Mapping

from src.results import RUN_LOG

EPOCHS, ULTRALYTICS = "epochs", "ultralytics"
MODES = (EPOCHS, ULTRALYTICS)  # the choices of `console=` (src/config/checks.py checks it)
EPOCH_FIELDS = {"mAP50-95": "metrics/mAP50-95(B)", "mAP50": "metrics/mAP50(B)", "box_loss": "train/box_loss"}


class _OncePerJob(logging.Filter):
    """Lets each distinct warning (or worse) through once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


@contextmanager
def job_console(job_dir: Path, mode: str) -> Iterator[IO[str] | None]:
    """For the duration of a job's work: the console stream for our epoch lines (None: none wanted)."""
    from ultralytics.utils import LOGGER

    console = sys.stdout
    once = _OncePerJob()
    LOGGER.addFilter(once)
    try:
        if mode == ULTRALYTICS:
            yield None  # ultralytics prints its own epoch lines
            return
        streams = [h for h in LOGGER.handlers if type(h) is logging.StreamHandler]
        with open(Path(job_dir) / RUN_LOG, "a") as log_file, redirect_stdout(log_file), redirect_stderr(log_file):
            previous = [h.setStream(log_file) for h in streams]
            warnings = logging.StreamHandler(console)  # after ultralytics' handler, whose formatter has
            warnings.setLevel(logging.WARNING)  # already put "WARNING ⚠️" into the record's message
            LOGGER.addHandler(warnings)
            try:
                yield console
            finally:
                LOGGER.removeHandler(warnings)
                for handler, stream in zip(streams, previous, strict=True):
                    handler.setStream(stream)
    finally:
        LOGGER.removeFilter(once)


def epoch_line(name: str, epoch: int, epochs: int, values: Mapping[str, float]) -> str:
    """`[job] <job dir> epoch 3/12: mAP50-95 0.412 mAP50 0.801 box_loss 1.234`."""
    shown = " ".join(f"{label} {values[key]:.3f}" for label, key in EPOCH_FIELDS.items() if key in values)
    return f"[job] {name} epoch {epoch}/{epochs}: {shown}"


@contextmanager
def quiet() -> Iterator[None]:
    """ultralytics' info lines off for a while (model summaries, exporter chatter); warnings stay."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)
