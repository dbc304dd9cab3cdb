"""Shared pieces of the benchmark: statistics, interleaving, timed subprocesses, job settings, machine.

Every figure is a median over repeats, and every comparison a median of ratios of runs made
back to back in the same loop (A B A B ...), so slow drift of the machine hits both sides alike.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.job.provenance import git_commit, git_dirty
from src.results import BASELINE
from src.runtime import CONF_DIR, PROJECT_ROOT, set_environment

PY = sys.executable

# The small embedded-dataset setting of the whole-process comparisons (overhead, sweep).
TINY = [
    "dataset.generator.n_train=32",
    "dataset.generator.n_val=16",
    "train.imgsz=64",
    "train.epochs=2",
    "logger=none",
    "measure.ap_by_size=false",
    "measure.latency_runs=3",
]
# --quick: the smallest size that still trains.
TINY_QUICK = [
    "dataset.generator.n_train=16",
    "dataset.generator.n_val=8",
    "train.imgsz=64",
    "train.epochs=1",
    "train.batch=8",
    "logger=none",
    "measure.ap_by_size=false",
    "measure.latency_runs=3",
]


@dataclass(frozen=True)
class Mode:
    """How much of everything one bench run does."""

    quick: bool
    overhead_repeats: int
    module_repeats: int
    module_shapes: tuple[str, ...]
    throughput_repeats: int
    throughput_variants: tuple[str, ...]
    aggregation_sizes: tuple[int, ...]
    aggregation_repeats: Mapping[int, int]
    sweep_repeats: int
    sweep_attn: tuple[str, ...]

    @property
    def tiny(self) -> list[str]:
        return list(TINY_QUICK if self.quick else TINY)


FULL = Mode(
    quick=False,
    overhead_repeats=7,  # tiny-job pairs: enough for the median paired difference to settle (~2 min)
    module_repeats=15,
    module_shapes=("P3", "P4", "P5"),
    throughput_repeats=2,
    throughput_variants=(BASELINE, "ema", "cot", "cot_lite"),
    aggregation_sizes=(1000, 10000),
    aggregation_repeats={1000: 5, 10000: 3},
    sweep_repeats=2,
    sweep_attn=(BASELINE, "ema", "cot", "cot_lite"),
)
QUICK = Mode(
    quick=True,
    overhead_repeats=1,
    module_repeats=3,
    module_shapes=("P5",),
    throughput_repeats=1,
    throughput_variants=(BASELINE,),
    aggregation_sizes=(100,),
    aggregation_repeats={100: 1},
    sweep_repeats=1,
    sweep_attn=(BASELINE, "ema"),
)


# ----------------------------------------------------------------------------------- statistics
def median(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


def paired_ratio(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Median over repeats of a_i / b_i (runs i of both sides made back to back)."""
    ratios = [x / y for x, y in zip(a, b, strict=False) if x is not None and y]
    return statistics.median(ratios) if ratios else None


def paired_difference(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Median over repeats of a_i - b_i (runs i of both sides made back to back): the extra time
    with the drift of a busy machine between repeats taken out, which a difference of medians keeps."""
    diffs = [x - y for x, y in zip(a, b, strict=False) if x is not None and y is not None]
    return statistics.median(diffs) if diffs else None


def spread(values: Iterable[float | None]) -> tuple[float, float] | None:
    vals = [float(v) for v in values if v is not None]
    return (min(vals), max(vals)) if vals else None


def interleave(sides: Mapping[str, Callable[[int], Any]], repeats: int) -> dict[str, list[Any]]:
    """Call each side once per repeat, in turn (A B A B ...); each side's results in order."""
    out: dict[str, list[Any]] = {name: [] for name in sides}
    for i in range(repeats):
        for name, fn in sides.items():
            out[name].append(fn(i))
    return out


# ----------------------------------------------------------------------------------- processes
class BenchError(RuntimeError):
    pass


def bench_env() -> dict[str, str]:
    """The environment of every subprocess, ours and ultralytics' alike: offline, same settings dir."""
    env = dict(os.environ)
    env.update(set_environment(PROJECT_ROOT / "outputs"))  # the defaults every entry point sets
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("WANDB_MODE", "offline")
    env.pop("PYTHONPATH", None)  # both sides find their code the same way: cwd = project root
    return env


def timed_run(cmd: Sequence[str], log: Path, timeout: float = 900, env: Mapping[str, str] | None = None) -> float:
    """Run a whole process (cwd: the project root), output to `log`; its wall time in seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(map(str, cmd)) + "\n")
        fh.flush()
        start = time.perf_counter()
        proc = subprocess.run(
            list(map(str, cmd)),
            cwd=PROJECT_ROOT,
            env=dict(env or bench_env()),
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"{' '.join(map(str, cmd[:6]))} ... exited {proc.returncode}; see {log}:\n{tail}")
    return seconds


def prepare_dataset(overrides: Sequence[str], cache: Path) -> Path:
    """Generate (or find) the dataset a src.run job with `overrides` trains on, in this process,
    so no timed job pays for generating it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src import data

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[o for o in overrides if o.startswith("dataset")])
    return data.prepare(OmegaConf.to_container(cfg.dataset, resolve=True), cache)


def src_run(
    overrides: Sequence[str],
    out: Path,
    cache: Path,
    *,
    run_dir: Path | None = None,
    sweep_dir: Path | None = None,
    multirun: bool = False,
    prefix: Sequence[str] = (),
) -> list[str]:
    """The command line of `python -m src.run ...` writing under `out` with the bench's dataset cache."""
    cmd = [PY, *prefix, "-m", "src.run"]
    if multirun:
        cmd.append("-m")
    cmd += [*overrides, f"paths.outputs={out}", f"paths.cache={cache}"]
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    if sweep_dir is not None:
        cmd.append(f"hydra.sweep.dir={sweep_dir}")
    return cmd


def fresh_dir(path: Path) -> Path:
    """An empty directory: src.run skips a job whose directory already holds its result."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def rel(path: Path | str) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------- machine
def machine() -> dict[str, Any]:
    import torch
    import ultralytics

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_avg_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
