"""The evaluation protocol of a job: which split its final figures come from and which checkpoint.

Training always selects `best.pt` by fitness on the `val` split. Reporting on that same split biases
every gain upward (most for noisy variants), so `eval.split=test` reports on a held-out split, and
`eval.checkpoint=last` reports the last epoch's weights, with no selection at all. A config without
an `eval` block (a sweep from before it existed) is (val, best), what jobs always did.
"""

from __future__ import annotations

from typing import Any, Mapping

from src.results.schema import EVAL_CHECKPOINT, EVAL_DEFAULTS, EVAL_SPLIT

SPLITS = ("val", "test")  # data YAML roles, mapped to each dataset's own splits (README "Datasets")
CHECKPOINTS = ("best", "last")  # best: chosen on val by fitness; last: no selection
LEGACY = (EVAL_DEFAULTS[EVAL_SPLIT], EVAL_DEFAULTS[EVAL_CHECKPOINT])  # the protocol of results without eval keys


def in_final_pass(split_and_checkpoint: tuple[str, str]) -> bool:
    """Whether ultralytics' own final validation (best.pt, after training) is the evaluation pass:
    the trainer points it at `eval.split` (src/ultralytics_glue/trainer.py), so with `best` no second
    pass is needed on any split; `last` is validated once after training."""
    return split_and_checkpoint[1] == "best"


def protocol(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(split, checkpoint) of a job config; (val, best) where it has no `eval` block."""
    block = cfg.get("eval") or {}
    return str(block.get("split", LEGACY[0])), str(block.get("checkpoint", LEGACY[1]))
