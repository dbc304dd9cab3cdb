"""mAP from a validation's per-image matches, and its image bootstrap (numpy only, no torch).

The job computes each run's test-set CI with it (`metrics_ci` in result.json) and the aggregator
the paired CI of each variant's Δ against its baseline, so both read mAP the same way, and the
aggregator still never imports the job or torch. One job per module: `matches` (the arrays of
`matches.npz`, validated), `engine` (ultralytics' mAP from them, any image weights), `bootstrap`
(resampling images: one run's CI, two runs' paired Δ), `errors` (TIDE's error breakdown and a
per-image score from a pass's boxes, for src.compare).
"""

from __future__ import annotations

from .bootstrap import bootstrap_ci, bootstrap_replicates, paired_bootstrap_delta, paired_replicates, resample_counts
from .engine import map_from_matches
from .matches import Matches, as_matches, load_matches

__all__ = [
    "Matches",
    "as_matches",
    "bootstrap_ci",
    "bootstrap_replicates",
    "load_matches",
    "map_from_matches",
    "paired_bootstrap_delta",
    "paired_replicates",
    "resample_counts",
]
