"""Where ultralytics writes and what it turns on, set per job from `paths.outputs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def configure(home: Path, settings_overrides: Mapping[str, Any] | None = None) -> None:
    """ultralytics settings for our jobs: no analytics, none of its own logger integrations (we log
    to W&B ourselves; an installed mlflow or comet would otherwise start logging too), and its
    weights/runs folders under `home` instead of the current directory."""
    import ultralytics.utils as yolo_utils
    from ultralytics.utils import SETTINGS

    home = Path(home).resolve()
    wanted = {
        "sync": False,
        "wandb": False,
        "mlflow": False,
        "comet": False,
        "clearml": False,
        "dvc": False,
        "tensorboard": False,
        "weights_dir": str(home / "weights"),
        "runs_dir": str(home / "runs"),
        **(settings_overrides or {}),
    }
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)
    # Module constants read once at import; the AMP check downloads its probe model to WEIGHTS_DIR.
    yolo_utils.WEIGHTS_DIR = Path(SETTINGS["weights_dir"])
    yolo_utils.RUNS_DIR = Path(SETTINGS["runs_dir"])


def train_arg_names() -> set[str]:
    """Every argument ultralytics' train() accepts."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return set(DEFAULT_CFG_DICT)


def check_train_args(train: Mapping[str, Any]) -> None:
    """ultralytics' own type and range check (`check_cfg`) of train() arguments, on a copy: TypeError or
    ValueError naming the argument."""
    from ultralytics.cfg import check_cfg

    check_cfg(dict(train))
