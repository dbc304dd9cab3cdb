"""The jobs of an adaptive sweep (`hydra/sweeper=adaptive`): its grid points, their seeds, their dirs.

The grid is the basic sweeper's (`hydra.sweeper.params`, then the command line) without `seed`;
the sweeper gives each point seeds 0, 1, ... up to `seeds.max`. Job (point i of P, seed s) is number
`s * P + i`: the number the basic sweeper gives it in `seed=0,1,... <grid>` (seed first), so an
adaptive sweep's job dirs are the ones that basic sweep would write (`hydra.sweep.subdir`, by default
`<num>_<override_dirname>`), whatever round a job is launched in. The number does not depend on
`seeds.max`: raising it later keeps every finished job, and round 1 is the basic sweep
`seed=0,...,first-1 <grid>`, job for job. Hydra numbers the jobs of
each launch from 0, so the sweeper fixes each job's dir with a `hydra.sweep.subdir` override that
holds the number. Standard library and Hydra's override parser only: `plan` and the progress lines
use it too.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

from src.results import BASELINE
from src.sweep.grid import basic_sweep_jobs, sweep_arguments

SEED_KEY = "seed"
SUBDIR_KEY = "hydra.sweep.subdir"
NUM = "${hydra.job.num}"
DEFAULTS = {"first": 2, "step": 1, "max": 10}  # conf/hydra/sweeper/adaptive.yaml `seeds:`


def is_adaptive(sweeper_cfg: Any) -> bool:
    """Whether a `hydra.sweeper` config is this project's adaptive sweeper (it has `seeds`)."""
    return bool(sweeper_cfg) and "seeds" in sweeper_cfg and "Adaptive" in str(sweeper_cfg.get("_target_", ""))


def grid_points(
    sweeper_params: dict[str, Any] | None, task_overrides: Sequence[str], parser: OverridesParser | None = None
) -> list[list[str]]:
    """Each grid point's overrides, in the basic sweeper's order; `seed` anywhere is an error."""
    arguments = sweep_arguments(sweeper_params, task_overrides)
    seeded = [a for a in arguments if a.split("=", 1)[0].lstrip("+~") == SEED_KEY]
    if seeded:
        raise ValueError(
            f"hydra/sweeper=adaptive chooses the seeds itself; drop {', '.join(seeded)} from the command line or "
            "hydra.sweeper.params and set hydra.sweeper.seeds.first / .step / .max instead"
        )
    return basic_sweep_jobs(arguments, parser)


def seed_settings(seeds: Any) -> tuple[int, int, int]:
    """(first, step, max) of `hydra.sweeper.seeds`, defaults filled; values are checked by the rule."""
    seeds = dict(seeds or {})
    unknown = sorted(set(seeds) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"hydra.sweeper.seeds.{unknown[0]} is not a setting; valid: {', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **{k: v for k, v in seeds.items() if v is not None}}
    return merged["first"], merged["step"], merged["max"]


def job_number(point: int, seed: int, points: int) -> int:
    """The basic sweeper's number of (point, seed) in `seed=0,1,... <grid of `points` points>`."""
    return seed * points + point


def job_overrides(point: Sequence[str], seed: int, num: int, subdir_pattern: str) -> list[str]:
    """The overrides of one job: the point's, its seed, and its dir fixed to its number."""
    subdir = str(subdir_pattern).replace(NUM, str(num))
    if "'" in subdir:
        raise ValueError(f"hydra.sweep.subdir {subdir_pattern!r}: a single quote cannot be passed on")
    return [*point, f"{SEED_KEY}={seed}", f"{SUBDIR_KEY}='{subdir}'"]


def dir_number(overrides: Sequence[str]) -> int | None:
    """The job number a job's `hydra.sweep.subdir` override fixes (None: not an adaptive job)."""
    for o in overrides:
        if o.startswith(f"{SUBDIR_KEY}="):
            found = re.match(r"'?(\d+)_", o.split("=", 1)[1])
            return int(found[1]) if found else None
    return None


def override_value(point: Sequence[str], key: str) -> str | None:
    """The value a point sets for `key` (None: the config's default)."""
    for o in point:
        k, _, v = o.partition("=")
        if k.lstrip("+~") == key:
            return v
    return None


def trains_baseline(point: Sequence[str], default_attn: str, default_variant: str | None = None) -> bool:
    """Whether a grid point is a baseline: by its `variant` where it has one (`none`), else its `attn`."""
    variant = override_value(point, "variant") or default_variant
    if variant not in (None, "null"):
        return variant == BASELINE
    return (override_value(point, "attn") or default_attn) == BASELINE


def block_of(point: Sequence[str], variant_keys: tuple[str, ...] = ("attn", "pos", "variant")) -> tuple[str, ...]:
    """The point without what makes a variant: the points sharing a baseline share this."""
    return tuple(sorted(o for o in point if o.split("=", 1)[0].lstrip("+~") not in variant_keys))
