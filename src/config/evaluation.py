"""The evaluation protocol of a job: which split its final figures come from and which checkpoint.

Training always selects `best.pt` by fitness on the `val` split. Reporting on that same split biases
every gain upward (most for noisy variants), so `eval.split=test` reports on a held-out split, and
`eval.checkpoint=last` reports the last epoch's weights, with no selection at all. A config without
an `eval` block (a sweep from before it existed) is (val, best), what jobs always did.
"""

from __future__ import annotations

from typing import Any, Mapping

SPLITS = ("val", "test")  # data YAML roles, mapped to each dataset's own splits (README "Datasets")
CHECKPOINTS = ("best", "last")  # best: chosen on val by fitness; last: no selection
LEGACY = ("val", "best")  # the protocol of results without eval keys
# ultralytics' own final validation is exactly this pass: no second one is needed for it
FINAL_PASS = LEGACY


def protocol(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(split, checkpoint) of a job config; (val, best) where it has no `eval` block."""
    block = cfg.get("eval") or {}
    return str(block.get("split", LEGACY[0])), str(block.get("checkpoint", LEGACY[1]))
