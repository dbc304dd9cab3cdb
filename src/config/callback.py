"""The config checks before Hydra launches anything: Hydra creates the run or sweep dir under
`paths.outputs` before the job starts, so an unwritable or bad value would otherwise surface as a
traceback from Hydra, or only after work has begun. Registered first in conf/config.yaml
`hydra.callbacks`; each job checks its own config again (src/job/runner.py), for swept values.
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.config.checks import ConfigError, check_values


class CheckBeforeLaunch(Callback):
    """Exit 2 with one line naming the bad key before a run or sweep dir exists."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config)  # the values every job shares; swept values are checked by each job


def _check(config: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(config)  # as each job gets it: `hydra.searchpath` for the study checks
    own = {
        key: OmegaConf.to_container(config[key], resolve=True) if OmegaConf.is_config(config[key]) else config[key]
        for key in config
        if key != "hydra"
    }
    try:
        check_values(own)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None  # a SystemExit passes Hydra's callback runner, other exceptions do not
