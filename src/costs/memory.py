"""Peak memory of one inference pass: the model's own bytes plus the most bytes live at once among
those the forward pass allocated (activations, workspaces), at batch 1 and at the throughput batch.

On a GPU that is CUDA's allocator count (max_memory_allocated after a reset, less what was
allocated before: the other models of the pass stay on the device). On the CPU it is
torch.profiler's allocation records (profile_memory=True), summed in time order: a process's RSS
high-water mark would include what the allocator kept from the model timed before, so it would
depend on the order. Both count tensors, not the framework's own code and libraries.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

import torch


def model_bytes(net: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))


def inference_peak_mb(net: torch.nn.Module, x: torch.Tensor, device: str) -> float:
    """MiB: the model's parameters and buffers plus its forward pass's peak at `x`'s batch."""
    with torch.inference_mode():
        peak = forward_peak_bytes(lambda: net(x), device)
    return round((model_bytes(net) + peak) / 2**20, 2)


def forward_peak_bytes(run: Callable[[], object], device: str = "cpu") -> int:
    """The most bytes live at once among those `run` allocated (what was live before is not counted)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    return int(cpu_allocations(run)["peak"])


def cpu_allocations(run: Callable[[], object]) -> dict[str, int]:
    """`run`'s CPU tensor allocations from torch.profiler: its peak (most bytes live at once among
    its own allocations and frees, in time order) and its total bytes allocated."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_muted(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    # The records' running total (`total_allocated`) also counts blocks of earlier profiling sessions that
    # were freed while the profiler was off, so sum this session's own allocations and frees instead.
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation:
            events.append((event.start_time_ns, int(event.typed[1].alloc_size)))
    live = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        live += size
        peak = max(peak, live)
    return {"peak": peak, "allocated": sum(size for _, size in events if size > 0)}


@contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Kineto writes two "USDT: profiler_start/stop" lines per profiling session (and torch a warning
    about blocks allocated before it) straight to file descriptor 2, past Python's sys.stderr and
    KINETO_LOG_LEVEL once kineto is set up: 4 lines per variant on the sweep's console. Muted at the
    descriptor for the session only."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
