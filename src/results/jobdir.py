"""Every path inside a job dir, in one place: the job writes there, the sweep, the aggregator and
the figures read there, and none of them builds a path of its own.

`train/` is ultralytics' run dir (its `project/name`): checkpoints and `results.csv` are where
ultralytics puts them; the rest is ours.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RESULT_FILE = "result.json"
TRAIN_DIR = Path("train")                       # ultralytics' run dir inside the job dir
WEIGHTS_DIR = TRAIN_DIR / "weights"
LAST_CHECKPOINT = WEIGHTS_DIR / "last.pt"
BEST_CHECKPOINT = WEIGHTS_DIR / "best.pt"
RESULTS_CSV = TRAIN_DIR / "results.csv"         # ultralytics' per-epoch log
MATCHES_FILE = "matches.npz"                    # the final validation's per-prediction matches
PR_CURVE_FILE = "pr_curve.csv"                  # its mean precision-recall curve at IoU 0.5


@dataclass(frozen=True)
class JobDir:
    """A job dir and the files in it; relative names (`RESULTS_CSV`, ...) for what a result records."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    def __truediv__(self, name: str | os.PathLike) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def result(self) -> Path:
        return self.path / RESULT_FILE

    @property
    def train(self) -> Path:
        return self.path / TRAIN_DIR

    @property
    def last(self) -> Path:
        return self.path / LAST_CHECKPOINT

    @property
    def best(self) -> Path:
        return self.path / BEST_CHECKPOINT

    @property
    def results_csv(self) -> Path:
        return self.path / RESULTS_CSV

    @property
    def matches(self) -> Path:
        return self.path / MATCHES_FILE

    @property
    def pr_curve(self) -> Path:
        return self.path / PR_CURVE_FILE

    @property
    def number(self) -> int:
        """Hydra's job number from the dir name (`3_attn=cot`), for ordering; large when there is none."""
        head = self.path.name.split("_", 1)[0]
        return int(head) if head.isdigit() else 1 << 30
