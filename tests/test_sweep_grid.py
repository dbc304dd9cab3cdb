"""`src.sweep.grid` lists a basic sweep's jobs as Hydra's own basic sweeper splits them: the same
overrides in the same order, so `plan` numbers job dirs as the real launch will."""

from __future__ import annotations

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # the reference, in the test only
from hydra.core.override_parser.overrides_parser import OverridesParser

from src.sweep.grid import basic_sweep_jobs, sweep_arguments
from src.sweep.progress import count_jobs

CASES = [
    ({}, ["attn=none,cot,ema"]),
    ({"attn": "none,ema", "seed": "0,1"}, ["pos=neck,backbone"]),
    ({"attn": "none,ema", "seed": "0,1,2"}, ["seed=5", "train.epochs=3"]),  # the command line replaces a param
    ({}, ["seed=range(0,3)", "+extra=1", "attn=choice(se,eca)", "dry_run=true"]),
    ({"pos": "neck"}, ["attn=none", "hydra.sweep.dir=/tmp/x"]),
]


@pytest.mark.parametrize("params,overrides", CASES)
def test_jobs_equal_hydras_basic_sweeper(params, overrides):
    arguments = sweep_arguments(params, overrides)
    parsed = OverridesParser.create().parse_overrides(arguments)
    expected = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    assert basic_sweep_jobs(arguments) == expected
    assert count_jobs(overrides, params) == len(expected)


def test_a_sweep_type_the_basic_sweeper_cannot_run_is_named():
    with pytest.raises(ValueError, match=r"lr=interval\(0,1\)"):
        basic_sweep_jobs(["lr=interval(0,1)"])
