"""Training's peak memory, for result.json: CUDA's max allocated on a GPU, the process's peak RSS
on the CPU.

On a GPU, torch's allocator count (reset before training) is what limits the batch size, and it
leaves out the CUDA context. On the CPU there is no such count without profiling every step, so
the figure is what the OS sees, and what a cluster's memory limit acts on: the peak resident set
size. Linux lets a process reset its own high-water mark (writing 5 to /proc/self/clear_refs), so
the peak belongs to this training and not to an earlier job of the same process (the basic
launcher runs a sweep's jobs one after another in one process); elsewhere it is getrusage's
ru_maxrss, the peak since the process started, and the result says so. DataLoader workers are
processes of their own and not counted; multi-GPU (DDP) training runs in worker processes, so no
figure is recorded for it.
"""

from __future__ import annotations

import resource
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from src.results.schema import TRAIN_PEAK_MEM_HOW, TRAIN_PEAK_MEM_MB

CUDA_MAX_ALLOCATED = "cuda max_memory_allocated"
RSS_SINCE_RESET = "peak RSS (VmHWM, reset before training)"
RSS_SINCE_START = "peak RSS of the process since it started (ru_maxrss)"
STATUS = Path("/proc/self/status")


@contextmanager
def training_peak(device: str) -> Iterator[dict[str, Any]]:
    """Yields a dict that holds TRAIN_PEAK_MEM_MB / TRAIN_PEAK_MEM_HOW once the block has run."""
    figures: dict[str, Any] = {}
    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    reset = False if cuda else _reset_rss_peak()
    yield figures
    if cuda:
        peak, how = torch.cuda.max_memory_allocated(device), CUDA_MAX_ALLOCATED
    elif reset:
        peak, how = _status_kib("VmHWM") * 1024, RSS_SINCE_RESET
    else:  # KiB on Linux, bytes on macOS
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak, how = maxrss * (1 if sys.platform == "darwin" else 1024), RSS_SINCE_START
    figures.update({TRAIN_PEAK_MEM_MB: round(peak / 2**20, 1), TRAIN_PEAK_MEM_HOW: how})


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmHWM") > 0
    except (OSError, ValueError):
        return False


def _status_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {field} in {STATUS}")
