"""Checks on a composed job config that must fail in milliseconds, before any expensive work.

Hydra already rejects unknown group options (`attn=foo`: "Could not find 'attn/foo'" plus the list
of options). What it cannot know is checked here: attention names and params against the
registry, positions against the chosen base's graph, train arguments against ultralytics' own list.
The position is resolved here, once per job: the checks return the resolved architecture, and the
model-file writer and the measurements use it as it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from src import attention, data
from src.arch import architecture, bases
from src.arch.positions import PositionError
from src.arch.rewrite import check_entries
from src.config import evaluation, study
from src.config.entries import model_entries
from src.data import DATASET_KINDS
from src.results.schema import ENTRIES
from src.ultralytics_glue import console  # torch-free: ultralytics is imported inside its functions

# train() arguments the framework sets itself; a user value would silently fight ours.
MANAGED_TRAIN_ARGS = {"data", "model", "project", "name", "exist_ok", "seed", "resume", "mode", "task"}
# ultralytics' trainer rounds imgsz to a multiple of max(model stride, 32); every base here ends at P5 (stride 32).
# We fail instead of rounding: the dataset is generated and the latency timed at the configured size, and the
# result would record a size the model never trained at.
MAX_STRIDE = 32


@dataclass(frozen=True)
class Range:
    """The valid values of a number: integer or not, lowest (allowed or not), highest, null allowed."""

    integer: bool
    low: float
    low_ok: bool = True
    high: float | None = None
    nullable: bool = False


COUNT, NON_NEGATIVE_INT = Range(True, 1), Range(True, 0)
NON_NEGATIVE, POSITIVE, SHARE = Range(False, 0), Range(False, 0, False), Range(False, 0, True, 1)
# Every number of our own config groups. A key absent from the job's config (logger.* under logger=none, the
# generator of a yolo dataset) is skipped.
NUMBERS: dict[str, Range] = {
    **dict.fromkeys(
        (
            "measure.latency_runs",
            "measure.throughput_batch",
            "measure.threads",
            "dataset.imgsz",
            "dataset.epochs",
            "dataset.batch",
            "dataset.generator.n_train",
            "dataset.generator.n_val",
            "dataset.generator.min_objects",
            "dataset.generator.max_objects",
            "dataset.generator.min_size",
        ),
        COUNT,
    ),
    **dict.fromkeys(
        (
            "seed",
            "dataset.generator.seed",  # numpy's seeds must be >= 0
            "aggregate.bootstrap",
            "dataset.generator.clutter",
            "train.workers",
            "train.close_mosaic",
            "train.patience",
        ),
        NON_NEGATIVE_INT,
    ),
    **dict.fromkeys(("aggregate.rope", "aggregate.min_effect"), Range(False, 0, nullable=True)),
    **dict.fromkeys(("sweep.stale_after", "logger.init_timeout", "train.lr0"), POSITIVE),
    **dict.fromkeys(("logger.finish_timeout", "train.warmup_epochs"), NON_NEGATIVE),
    **dict.fromkeys(
        (
            "dataset.generator.small",
            "dataset.generator.medium",
            "dataset.generator.large",
            "dataset.generator.overlap",
            "train.mosaic",
        ),
        SHARE,
    ),
    **dict.fromkeys(("dataset.fraction", "dataset.generator.max_size_frac"), Range(False, 0, False, 1)),
    "dataset.max_images": Range(True, 1, nullable=True),
    "dataset.generator.n_test": Range(True, 0, nullable=True),  # null: twice n_val; 0: no test split
    "dataset.minival_size": COUNT,
    "dataset.generator.hue_jitter": Range(False, 0, True, 180),
    "dataset.generator.noise": Range(False, 0, True, 255),
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "logger.mode": ("online", "offline", "disabled"),
    "train.cache": ("ram", "disk", False, True),
    "console": console.MODES,
    "eval.split": evaluation.SPLITS,  # the names; whether the dataset has the split: check_eval, per job
    "eval.checkpoint": evaluation.CHECKPOINTS,
}
# A dataset's recommended train values (`dataset.train.*`, what train.* defaults to) obey the same ranges.
NUMBERS.update({f"dataset.{key}": bound for key, bound in list(NUMBERS.items()) if key.startswith("train.")})
CHOICES.update({f"dataset.{key}": choices for key, choices in list(CHOICES.items()) if key.startswith("train.")})
FLAGS = ("dry_run", "plan", "measure.onnx", "measure.ap_by_size", "logger.system_metrics", "dataset.minival")


class ConfigError(ValueError):
    """A bad value in the job config; the message names it and the valid choices."""


def check_config(cfg: Mapping[str, Any], train_arg_names: set[str] | None = None) -> architecture.Architecture:
    """Raise ConfigError on the first bad value; else the job's architecture, its position resolved."""
    check_values(cfg)
    for entry in study.entries_of(cfg) or [{"attn": cfg["attn"]}]:
        attn = entry["attn"]
        if attn["name"] not in attention.available():
            raise ConfigError(f"unknown attn {attn['name']!r}; valid choices: {', '.join(attention.available())}")
        try:
            attention.yaml_args(attn["name"], 64, dict(attn.get("params") or {}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"attn.params for {attn['name']!r}: {exc}") from None

    model = cfg["model"]
    if model["base"] not in bases.available_bases():
        raise ConfigError(f"unknown model.base {model['base']!r}; valid choices: {', '.join(bases.available_bases())}")
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
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (value < 1 and not (key == "batch" and value == -1))
        ):
            raise ConfigError(f"train.{key} must be a positive integer, got {value!r}")
    managed = sorted(set(train) & MANAGED_TRAIN_ARGS)
    if managed:
        raise ConfigError(
            f"train.{managed[0]} is set by the framework; use the top-level option instead "
            f"(seed=..., dataset=..., model=...)"
        )
    if train_arg_names is not None:
        unknown = sorted(set(train) - train_arg_names)
        if unknown:
            raise ConfigError(
                f"train.{unknown[0]} is not an ultralytics train argument; see `yolo cfg` for the valid ones"
            )
        _ultralytics_check({k: v for k, v in train.items() if k in train_arg_names})
    return _resolved(cfg)


def check_values(cfg: Mapping[str, Any]) -> None:
    """The values of our own groups (numbers, choices, flags, paths): no torch, no ultralytics, no Hydra,
    so the entry point runs it before Hydra creates a dir and each job before it does anything else."""
    for key, bound in NUMBERS.items():
        present, value = _lookup(cfg, key)
        if present:
            _check_number(key, value, bound)
    for key, choices in CHOICES.items():
        present, value = _lookup(cfg, key)
        if present and not any(value == c and type(value) is type(c) for c in choices):
            raise ConfigError(f"{key}={value!r} is not a valid choice; valid choices: {', '.join(map(str, choices))}")
    for key in FLAGS:
        present, value = _lookup(cfg, key)
        if present and not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
    check_study(cfg)
    generator = (cfg.get("dataset") or {}).get("generator") or {}
    if generator.get("min_objects", 0) > generator.get("max_objects", float("inf")):
        raise ConfigError(
            f"dataset.generator.min_objects={generator['min_objects']} is above "
            f"dataset.generator.max_objects={generator['max_objects']}"
        )
    imgsz = (cfg.get("train") or {}).get("imgsz")
    if isinstance(imgsz, int) and not isinstance(imgsz, bool) and imgsz > 0 and imgsz % MAX_STRIDE:
        near = [s for s in (imgsz // MAX_STRIDE * MAX_STRIDE, (imgsz // MAX_STRIDE + 1) * MAX_STRIDE) if s]
        raise ConfigError(
            f"train.imgsz={imgsz} is not a multiple of the model's max stride {MAX_STRIDE}; "
            f"use {' or '.join(map(str, near))}"
        )
    for key in ("paths.outputs", "paths.cache"):
        present, value = _lookup(cfg, key)
        if present:
            check_writable(key, value)


def check_study(cfg: Mapping[str, Any]) -> None:
    """`study` and `variant` name things that exist (src/config/study.py `validate`)."""
    try:
        study.validate(cfg)
    except study.StudyError as exc:
        raise ConfigError(str(exc)) from None


def check_writable(key: str, path: Any) -> None:
    """`path` is, or can be created as, a writable directory: else one line, path and errno. Tried by
    creating it as the run would (root passes `os.access` even where mkdir fails, e.g. under /proc),
    then the directories the try created are removed again: a rejected run leaves nothing behind."""
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{key} must be a directory path, got {path!r}")
    missing = [p for p in (Path(path), *Path(path).parents) if not p.exists()]
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        name = errno.errorcode.get(exc.errno, "?") if exc.errno else type(exc).__name__
        raise ConfigError(f"{key}={path}: not a writable directory ({name}: {exc.strerror or exc})") from None
    finally:
        for created in missing:  # deepest first; one another process filled meanwhile stays
            with contextlib.suppress(OSError):
                created.rmdir()


def _lookup(cfg: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    """(present, value) of a dotted key."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _check_number(key: str, value: Any, bound: Range) -> None:
    """ConfigError naming `key`, the value and the valid range unless `value` is in it."""
    if value is None and bound.nullable:
        return
    kind = (int,) if bound.integer else (int, float)
    fits = isinstance(value, kind) and not isinstance(value, bool)
    fits = fits and (value >= bound.low if bound.low_ok else value > bound.low)
    fits = fits and (bound.high is None or value <= bound.high)
    if not fits:
        limits = f"{'>=' if bound.low_ok else '>'} {bound.low}"
        limits += f" and <= {bound.high}" if bound.high is not None else ""
        what = "an integer" if bound.integer else "a number"
        raise ConfigError(f"{key} must be {what} {limits}{' or null' if bound.nullable else ''}, got {value!r}")


def _ultralytics_check(train: dict[str, Any]) -> None:
    """ultralytics' own type and range check of the train() arguments, its message under our key names."""
    from src.ultralytics_glue.settings import check_train_args

    try:
        check_train_args(train)
    except (TypeError, ValueError) as exc:
        raise ConfigError("train." + str(exc).replace("'", "", 2)) from None


def _resolved(cfg: Mapping[str, Any]) -> architecture.Architecture:
    """The position resolved in the base's graph: the one check that needs a (meta-device) build."""
    from src.ultralytics_glue.layout import base_layout  # torch and ultralytics: after the cheap checks

    model, entries = cfg["model"], cfg.get(ENTRIES) or []
    try:
        arch = architecture.resolve(model["base"], model["scale"], cfg["pos"], base_layout, [e["pos"] for e in entries])
    except PositionError as exc:
        raise ConfigError(f"pos={cfg['pos'].get('name')} on {model['name']}: {exc}") from None
    try:  # two entries that land on one layer in a conflicting way: before anything is built
        check_entries(model_entries(cfg, arch))
    except PositionError as exc:
        raise ConfigError(f"variant={cfg.get('variant')} on {model['name']}: {exc}") from None
    return arch


def check_eval(cfg: Mapping[str, Any]) -> None:
    """`eval.split` and `eval.checkpoint` are valid choices, and the dataset has that split (for a
    dataset in YOLO layout, on disk too, unless the job only builds and measures)."""
    split, checkpoint = evaluation.protocol(cfg)
    if checkpoint not in evaluation.CHECKPOINTS:
        raise ConfigError(f"unknown eval.checkpoint {checkpoint!r}; valid choices: {', '.join(evaluation.CHECKPOINTS)}")
    dataset = cfg["dataset"]
    offered = data.eval_splits(dataset)
    if split not in offered:
        what = (
            f"eval.split {split!r}: dataset {dataset.get('name')!r} has no {split} split"
            if split in evaluation.SPLITS
            else f"unknown eval.split {split!r}"
        )
        raise ConfigError(f"{what}; valid choices: {', '.join(offered)}")
    if split != "val" and not cfg.get("dry_run"):
        try:
            data.check_split_ready(dataset, split)
        except FileNotFoundError as exc:
            raise ConfigError(f"eval.split={split}: {exc}\nOr report on another split: eval.split=val") from None
