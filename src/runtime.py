"""The process environment our entry points set before ultralytics, matplotlib or onnxruntime load.

Those libraries read their folders from the environment once, at import; so `python -m src.run`,
`src.aggregate`, `src.bench` and the tests call `set_environment(paths.outputs)` first, and
everything they write lands under that folder. A value already in the environment wins
(`YOLO_CONFIG_DIR`, `MPLCONFIGDIR`, `ORT_DISABLE_TELEMETRY`, `YOLO_OFFLINE=0` to allow downloads).
Importing `src` changes none of it; it only registers `${job_dirname:...}` (below) with OmegaConf.
"""

from __future__ import annotations

import hashlib
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


# A sweep's job dirs are `<num>_${job_dirname:${hydra.job.override_dirname}}` (conf/config.yaml).
JOB_DIRNAME_RESOLVER = "job_dirname"
JOB_DIRNAME_MAX_BYTES = 248  # with a job number of up to 6 digits and "_": the 255 bytes a file name may have


def job_dirname(overrides: str) -> str:
    """A job dir's name from its overrides as Hydra joins them: as they are up to 248 bytes; past
    that (a long command line: an OSError when the job writes) their start, `~` and a hash of the
    whole, so names stay unique. The full overrides are in the job's result.json and .hydra/."""
    raw = str(overrides).encode()
    if len(raw) <= JOB_DIRNAME_MAX_BYTES:
        return str(overrides)
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return raw[: JOB_DIRNAME_MAX_BYTES - len(digest) - 1].decode(errors="ignore") + "~" + digest


def register_job_dirname() -> None:
    """Called by `import src` once omegaconf is imported: every process that resolves a job's dir
    (the entry point, and submitit's or joblib's workers, which import `src` when they unpickle the
    job) knows it."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(JOB_DIRNAME_RESOLVER):
        OmegaConf.register_new_resolver(JOB_DIRNAME_RESOLVER, job_dirname)
