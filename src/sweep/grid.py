"""The jobs of a basic sweep, from Hydra's public override parser: what `plan` lists and what the
progress lines count, in the order and numbering Hydra's basic sweeper launches them.

The basic sweeper reads `hydra.sweeper.params` first and the command line after, a later value of a
key replacing an earlier one in its first place, and launches the product of the values in that
order (hydra/_internal/core_plugins/basic_sweeper.py, `split_arguments`). Written here with the
public parser, so an upgrade of Hydra's internals cannot break `plan`; a test checks it against
real launches.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser


def sweep_arguments(sweeper_params: dict[str, Any] | None, task_overrides: Sequence[str]) -> list[str]:
    """What the basic sweeper parses: its params as `key=value`, then the command line's overrides."""
    return [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(task_overrides)


def basic_sweep_jobs(arguments: Sequence[str], parser: OverridesParser | None = None) -> list[list[str]]:
    """Each job's overrides. `parser`: one made with the config loader where a sweep names config
    group options by glob (`attn=glob(*)`)."""
    parser = parser or OverridesParser.create()
    choices: dict[str, list[str]] = {}
    for override in parser.parse_overrides(list(arguments)):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ValueError(f"{override.input_line}: the basic sweeper takes choice, glob and range sweeps only")
    return [list(job) for job in itertools.product(*choices.values())]
