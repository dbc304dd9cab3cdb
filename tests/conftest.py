from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The smallest real training: a handful of 64 px images, one epoch. Used by every end-to-end test.
TINY = [
    "dataset.generator.n_train=16",
    "dataset.generator.n_val=8",
    "train.imgsz=64",
    "train.epochs=1",
    "train.batch=8",
    "train.workers=0",
    "measure.latency_runs=3",
    "measure.throughput_batch=2",
]


def run_cli(*args: str, outputs: Path, cache: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m src.run ...` as a user types it, writing under `outputs`, with an empty HOME
    beside it (see `home_of`) so a test can check that nothing lands in the user's home."""
    cmd = [sys.executable, "-m", "src.run", *args, f"paths.outputs={outputs}"]
    if cache is not None:
        cmd.append(f"paths.cache={cache}")
    home = home_of(outputs)
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update({"HOME": str(home), "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def home_of(outputs: Path) -> Path:
    """The HOME that run_cli gives a run writing under `outputs`."""
    return outputs.with_name(outputs.name + "-home")


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def job_dirs(sweep: Path) -> list[Path]:
    """The job directories of a sweep, in job order."""
    return sorted((d for d in sweep.iterdir() if d.is_dir() and (d / "result.json").exists()),
                  key=lambda d: int(d.name.split("_")[0]))


def load_result(job_dir: Path) -> dict:
    return json.loads((job_dir / "result.json").read_text())


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """Dataset cache shared by the end-to-end tests, so the embedded dataset is generated once."""
    return tmp_path_factory.mktemp("cache")
