"""What identifies a job: the hashes that skip and pair runs, its identity keys and its labels.

`config_hash` decides whether a job dir already holds this job's work (skip / resume);
`train_key` pairs a variant with the baseline trained under the same settings. Both leave out
what does not change the trained model (where it runs, how it is logged and measured). The
evaluation protocol (`eval`: split and checkpoint) is in both: a job reported on another split is
other work, and a variant is compared only with a baseline evaluated the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from src.arch.positions import configured, position_label
from src.config.evaluation import protocol
from src.config.study import study_record
from src.results.schema import ENTRIES, EVAL_CHECKPOINT, EVAL_SPLIT, POS_CONFIGURED, VARIANT

# Top-level keys that do not change what is trained; left out of both hashes.
# `variant` and `study` are spelled out by `study.expand` into attn / pos / entries, which are hashed.
NOT_TRAINING = ("logger", "paths", "dry_run", "measure", "aggregate", "plan", "sweep", "console", "variant", "study")
# train.* keys that say where and how verbosely a job runs, not what it trains.
NOT_TRAINING_ARGS = ("device", "workers", "verbose")
# What a variant may differ in from its baseline.
VARIANT_KEYS = ("attn", "pos", ENTRIES, "seed")


def config_hash(cfg: dict[str, Any]) -> str:
    """Identifies what a job trains; where it runs (device, loader workers, measuring) is left out."""
    return _hash(_training_part(cfg, NOT_TRAINING))


def train_key(cfg: dict[str, Any]) -> str:
    """Identifies the training settings a baseline must share to be compared: no attn/pos/seed."""
    return _hash(_training_part(cfg, NOT_TRAINING + VARIANT_KEYS))


def _training_part(cfg: dict[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    part = {k: v for k, v in cfg.items() if k not in drop}
    if isinstance(part.get("train"), dict):
        part["train"] = {k: v for k, v in part["train"].items() if k not in NOT_TRAINING_ARGS}
    return part


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def identity(cfg: dict[str, Any], pos_label: str | None = None) -> dict[str, Any]:
    """The keys every result carries; `pos_label` names the position (see `position_label`; by
    default the preset's own `name`). The position as configured goes under `pos_configured`; the
    indices it resolved to (`pos_after`, ...) are the job's to record once it has resolved them."""
    return {
        "dataset": cfg["dataset"]["name"],
        "attn": cfg["attn"]["name"],
        "pos": pos_label or position_label(cfg["pos"], cfg["pos"].get("name")),
        "model": cfg["model"]["name"],
        "seed": cfg["seed"],
        "epochs": cfg["train"]["epochs"],
        "imgsz": cfg["train"]["imgsz"],
        "attn_params": cfg["attn"].get("params") or {},
        POS_CONFIGURED: configured(cfg["pos"]),
        **dict(zip((EVAL_SPLIT, EVAL_CHECKPOINT), protocol(cfg), strict=True)),
        **study_record(cfg),
    }


def run_name(overrides: list[str] | None, variant: str | None = None) -> str:
    """`attn=cot,pos=neck,seed=1`: the job's own choices, without paths and Hydra internals; a
    `variant=A+B` choice reads as the variant's label (`ema@neck + cot@backbone_p5`) when given."""
    keep = [o for o in overrides or [] if not o.startswith(("hydra.", "paths.", "+hydra")) and "/" not in o]
    if variant:
        keep = [variant if o.startswith(f"{VARIANT}=") else o for o in keep]
    return ",".join(keep) or "defaults"


def study_name(choices: dict[str, Any], config_name: str | None) -> str:
    """The study a job belongs to: the `experiment` chosen (`experiment=quick`), else the primary
    config's name; it names the W&B group of a sweep."""
    return (choices or {}).get("experiment") or config_name or "config"
