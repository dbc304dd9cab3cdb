"""Exclusive job locks (an flock on `<job_dir>/.job.lock`, held while the job runs) and their probe.

flock, not fcntl's POSIX locks: an flock belongs to the open file, so two jobs of one process (the
basic launcher) exclude each other too, and closing some other descriptor of the file never drops
it. The lock file is never replaced or removed (a new inode would be a second lock). The kernel
releases the lock when its process dies however it dies, so a held lock means a live job on this
host; across hosts it means so only where the shared filesystem propagates locks (NFSv4, Lustre
with `flock`, GPFS), which is why the heartbeat decides for other hosts (see `state`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

JOB_LOCK = ".job.lock"
SWEEP_LOCK = ".baseline.lock"
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def _flock(fd: int, mode: int, wait: float) -> bool | None:
    """Take `mode` on `fd` within `wait` seconds: True, False (held by another), None (this
    filesystem cannot lock)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in _BUSY:
                return None
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@contextlib.contextmanager
def job_lock(job_dir: Path, wait: float = 2.0) -> Iterator[bool]:
    """Hold the job's lock while the block runs. Yields False, holding nothing, when another
    process holds it. `wait` covers probes (`held_elsewhere`), which hold it for microseconds.
    Where the filesystem cannot lock, yields True and warns: heartbeats still guard."""
    job_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(job_dir / JOB_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        got = _flock(fd, fcntl.LOCK_EX, wait)
        if got is None:
            log.warning("%s: this filesystem does not lock files; only heartbeats keep a second launch away", job_dir)
        if got is not False:
            with contextlib.suppress(OSError):  # who holds it, for people looking at the dir
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{socket.gethostname()} {os.getpid()} {time.time():.0f}\n".encode(), 0)
        yield got is not False
    finally:
        os.close(fd)  # releases the lock


def held_elsewhere(job_dir: Path) -> bool | None:
    """Whether a live process holds the job's lock; None where that cannot be told (no lock file:
    a job from before locks; a filesystem that cannot lock). A shared probe: probes never block
    each other, and the job itself waits out a probe's microseconds (`job_lock`'s `wait`)."""
    try:
        fd = os.open(job_dir / JOB_LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        got = _flock(fd, fcntl.LOCK_SH, wait=0.1)
        return None if got is None else not got
    finally:
        os.close(fd)


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path, wait: float = 120.0) -> Iterator[None]:
    """Serialise the baseline election of a sweep (a few file reads and one write): the first
    `none` job to get here trains, the others see it. After `wait` it goes on without, warning."""
    fd = os.open(sweep_dir / SWEEP_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _flock(fd, fcntl.LOCK_EX, wait):
            log.warning("%s: no baseline election lock after %.0f s; going on without it", sweep_dir, wait)
        yield
    finally:
        os.close(fd)
