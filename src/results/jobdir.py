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
RUN_LOG = "run.log"  # the job's log: Hydra's job log and, by default, ultralytics' output
TRAIN_DIR = Path("train")  # ultralytics' run dir inside the job dir
WEIGHTS_DIR = TRAIN_DIR / "weights"
LAST_CHECKPOINT = WEIGHTS_DIR / "last.pt"
BEST_CHECKPOINT = WEIGHTS_DIR / "best.pt"
RESULTS_CSV = TRAIN_DIR / "results.csv"  # ultralytics' per-epoch log
MATCHES_FILE = "matches.npz"  # the final validation's per-prediction matches
PR_CURVE_FILE = "pr_curve.csv"  # its mean precision-recall curve at IoU 0.5
PREDICTIONS_FILE = "predictions.json"  # ultralytics' detections of a validation pass with save_json
ADAPTIVE_RECORD = "adaptive.json"  # in a sweep dir: the adaptive sweeper's rounds and why each row stopped


def _inside(relative: str | Path) -> property:
    """A JobDir attribute: the path of `relative` inside the job dir."""
    return property(lambda self: self.path / relative, doc=f"<job dir>/{relative}")


@dataclass(frozen=True)
class JobDir:
    """A job dir and the files in it; relative names (`RESULTS_CSV`, ...) for what a result records."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    result = _inside(RESULT_FILE)
    run_log = _inside(RUN_LOG)
    train = _inside(TRAIN_DIR)
    last = _inside(LAST_CHECKPOINT)
    best = _inside(BEST_CHECKPOINT)
    results_csv = _inside(RESULTS_CSV)
    matches = _inside(MATCHES_FILE)
    pr_curve = _inside(PR_CURVE_FILE)

    def checkpoint(self, which: str) -> Path:
        """The weights `eval.checkpoint` names: best.pt, or last.pt (for `last`, and where no best was saved)."""
        return self.best if which == "best" and self.best.is_file() else self.last

    def predictions(self, split: str, from_final_validation: bool) -> Path:
        """ultralytics' predictions.json of the evaluation pass: the final validation of a training
        writes it into train/, a later pass (`revalidate`) into <split>/."""
        return self.path / (TRAIN_DIR if from_final_validation else Path(split)) / PREDICTIONS_FILE

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def number(self) -> int:
        """Hydra's job number from the dir name (`3_attn=cot`), for ordering; large when there is none."""
        head = self.path.name.split("_", 1)[0]
        return int(head) if head.isdigit() else 1 << 30
