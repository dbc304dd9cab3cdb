"""The process environment our entry points set before ultralytics, matplotlib or onnxruntime load.

Those libraries read their folders from the environment once, at import; so `python -m src.run`,
`src.aggregate`, `src.bench` and the tests call `set_environment(paths.outputs)` first, and
everything they write lands under that folder. A value already in the environment wins
(`YOLO_CONFIG_DIR`, `MPLCONFIGDIR`, `ORT_DISABLE_TELEMETRY`, `YOLO_OFFLINE=0` to allow downloads).
Importing `src` itself changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # conf/ and the outputs/ default are relative to it
CONF_DIR = PROJECT_ROOT / "conf"  # the Hydra config tree (`python -m src.run` reads it as ../conf)


def ultralytics_home(outputs: str | os.PathLike) -> Path:
    """ultralytics' settings, weights and runs folders for a run writing under `outputs`."""
    return Path(outputs).resolve() / ".ultralytics"


def set_environment(outputs: str | os.PathLike) -> dict[str, str]:
    """Environment defaults for a process writing under `outputs`; returns those it set."""
    outputs = Path(outputs).resolve()
    wanted = {
        "YOLO_CONFIG_DIR": str(ultralytics_home(outputs)),  # its settings.json (+ fonts, AMP probe)
        "MPLCONFIGDIR": str(outputs / ".matplotlib"),  # matplotlib's font cache
        "ORT_DISABLE_TELEMETRY": "1",  # else onnxruntime writes a device id under ~/.cache
        "YOLO_OFFLINE": "1",  # no online checks; YOLO_OFFLINE=0 allows downloads
        "TORCHINDUCTOR_CACHE_DIR": str(outputs / ".cache" / "torchinductor"),  # else $TMPDIR/torchinductor_<user>
        "TRITON_CACHE_DIR": str(outputs / ".cache" / "triton"),  # GPU kernels (train.compile)
        "CUDA_CACHE_PATH": str(outputs / ".cache" / "cuda"),  # else ~/.nv/ComputeCache
    }
    changed = {k: v for k, v in wanted.items() if not os.environ.get(k)}
    os.environ.update(changed)
    return changed


def outputs_of(sweep_dir: str | os.PathLike) -> Path:
    """The `paths.outputs` a sweep was run with (from its multirun.yaml), else the sweep dir itself:
    where a later process working on that sweep (re-aggregation, drawing) keeps its caches."""
    import yaml

    sweep_dir = Path(sweep_dir)
    try:
        recorded = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())["paths"]["outputs"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return sweep_dir
    return Path(recorded) if isinstance(recorded, str) and "${" not in recorded else sweep_dir
