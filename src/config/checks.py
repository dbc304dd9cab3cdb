"""Checks on a composed job config that must fail in milliseconds, before any expensive work.

Hydra already rejects unknown group options (`attn=foo`: "Could not find 'attn/foo'" plus the list
of options). What it cannot know is checked here: attention names and params against the
registry, positions against the chosen base's graph, train arguments against ultralytics' own list.
The position is resolved here, once per job: the checks return the resolved architecture, and the
model-file writer and the measurements use it as it is.
"""
from __future__ import annotations

from typing import Any, Mapping

from src import attention, data
from src.arch import architecture, bases
from src.arch.positions import PositionError
from src.config import evaluation
from src.data import DATASET_KINDS

# train() arguments the framework sets itself; a user value would silently fight ours.
MANAGED_TRAIN_ARGS = {"data", "model", "project", "name", "exist_ok", "seed", "resume", "mode", "task"}


class ConfigError(ValueError):
    """A bad value in the job config; the message names it and the valid choices."""


def check_config(cfg: Mapping[str, Any], train_arg_names: set[str] | None = None) -> architecture.Architecture:
    """Raise ConfigError on the first bad value; else the job's architecture, its position resolved."""
    attn = cfg["attn"]
    if attn["name"] not in attention.available():
        raise ConfigError(f"unknown attn {attn['name']!r}; valid choices: {', '.join(attention.available())}")
    try:
        attention.yaml_args(attn["name"], 64, dict(attn.get("params") or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"attn.params for {attn['name']!r}: {exc}") from None

    model = cfg["model"]
    if model["base"] not in bases.available_bases():
        raise ConfigError(f"unknown model.base {model['base']!r}; valid choices: "
                          f"{', '.join(bases.available_bases())}")
    scales = bases.load_base(model["base"])["scales"]
    if model["scale"] not in scales:
        raise ConfigError(f"unknown model scale {model['scale']!r}; valid choices: {', '.join(scales)}")

    kind = cfg["dataset"].get("kind")
    if kind not in DATASET_KINDS:
        raise ConfigError(f"unknown dataset.kind {kind!r}; valid choices: {', '.join(DATASET_KINDS)}")
    check_eval(cfg)

    train = cfg["train"]
    for key in ("epochs", "imgsz", "batch"):
        value = train.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and not (key == "batch" and value == -1)):
            raise ConfigError(f"train.{key} must be a positive integer, got {value!r}")
    if not isinstance(cfg.get("seed"), int):
        raise ConfigError(f"seed must be an integer, got {cfg.get('seed')!r}")
    managed = sorted(set(train) & MANAGED_TRAIN_ARGS)
    if managed:
        raise ConfigError(f"train.{managed[0]} is set by the framework; use the top-level option instead "
                          f"(seed=..., dataset=..., model=...)")
    if train_arg_names is not None:
        unknown = sorted(set(train) - train_arg_names)
        if unknown:
            raise ConfigError(f"train.{unknown[0]} is not an ultralytics train argument; "
                              f"see `yolo cfg` for the valid ones")
    return _resolved(cfg)


def _resolved(cfg: Mapping[str, Any]) -> architecture.Architecture:
    """The position resolved in the base's graph: the one check that needs a (meta-device) build."""
    from src.ultralytics_glue.layout import base_layout  # torch and ultralytics: after the cheap checks

    model = cfg["model"]
    try:
        return architecture.resolve(model["base"], model["scale"], cfg["pos"], base_layout)
    except PositionError as exc:
        raise ConfigError(f"pos={cfg['pos'].get('name')} on {model['name']}: {exc}") from None


def check_eval(cfg: Mapping[str, Any]) -> None:
    """`eval.split` and `eval.checkpoint` are valid choices, and the dataset has that split (for a
    dataset in YOLO layout, on disk too, unless the job only builds and measures)."""
    split, checkpoint = evaluation.protocol(cfg)
    if checkpoint not in evaluation.CHECKPOINTS:
        raise ConfigError(f"unknown eval.checkpoint {checkpoint!r}; "
                          f"valid choices: {', '.join(evaluation.CHECKPOINTS)}")
    dataset = cfg["dataset"]
    offered = data.eval_splits(dataset)
    if split not in offered:
        what = (f"eval.split {split!r}: dataset {dataset.get('name')!r} has no {split} split"
                if split in evaluation.SPLITS else f"unknown eval.split {split!r}")
        raise ConfigError(f"{what}; valid choices: {', '.join(offered)}")
    if split != "val" and not cfg.get("dry_run"):
        try:
            data.check_split_ready(dataset, split)
        except FileNotFoundError as exc:
            raise ConfigError(f"eval.split={split}: {exc}\nOr report on another split: eval.split=val") from None
