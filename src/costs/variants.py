"""Which models the cost pass times: one per architecture of the sweep (torch-free).

Jobs that differ only in their seed (or share a baseline across positions) build the same
network, so they cost the same: the pass groups the sweep's jobs by their model YAML's text, class
count and image size and times one model per group. The YAML is the architecture as data
(src/job/model_file.py), written by trained and dry-run jobs alike, so a dry-run sweep gets the
same pass; weights do not change what a forward pass costs, so no checkpoint is needed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from src.results import COMPLETED, DRY_RUN, read_result
from src.results import costs as C
from src.results.schema import (
    ATTN,
    CLASS_NAMES,
    DATASET,
    IMGSZ,
    MODEL,
    MODEL_YAML,
    POS,
    REUSED_FROM,
    STATUS,
    variant_label,
)
from src.sweep.discover import HYDRA_DIR, discover


@dataclass
class Variant:
    """One architecture of the sweep and the jobs that built it."""

    dataset: str
    model: str
    pos: str
    attn: str
    imgsz: int
    nc: int
    model_file: Path
    gflops: float | None = None
    jobs: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.model} {variant_label(self.attn, self.pos, '@')} {self.imgsz}px"


def variants_of(sweep_dir: Path) -> tuple[list[Variant], list[dict[str, str]]]:
    """The sweep's architectures (first seen first) and the jobs left out, each with its reason."""
    result_files, _, _ = discover([str(sweep_dir)])
    groups: dict[tuple, Variant] = {}
    skipped: list[dict[str, str]] = []
    reused: list[tuple[Path, Path]] = []
    for file in sorted(result_files):
        job_dir = Path(file).parent
        try:
            result = read_result(file)
        except ValueError as exc:
            skipped.append({C.JOB: str(job_dir), C.REASON: str(exc)})
            continue
        if result.get(STATUS) not in (COMPLETED, DRY_RUN):
            continue  # no model to speak of yet (failed, running); the table lists these jobs already
        if result.get(REUSED_FROM):
            reused.append((job_dir, Path(result[REUSED_FROM])))
            continue
        try:
            variant = _variant(job_dir, result)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            skipped.append({C.JOB: str(job_dir), C.REASON: f"{type(exc).__name__}: {exc}"})
            continue
        key = (hashlib.sha256(variant.model_file.read_bytes()).hexdigest(), variant.nc, variant.imgsz)
        groups.setdefault(key, variant).jobs.append(job_dir)
    owners = {job.resolve(): v for v in groups.values() for job in v.jobs}
    for job_dir, owner in reused:  # a baseline copied from its twin costs what the twin costs
        if owner.resolve() in owners:
            owners[owner.resolve()].jobs.append(job_dir)
    return list(groups.values()), skipped


def _variant(job_dir: Path, result: dict[str, Any]) -> Variant:
    if not result.get(MODEL_YAML):
        raise ValueError("its result names no model YAML (a result from before the YAML was kept)")
    model_file = job_dir / result[MODEL_YAML]
    if not model_file.is_file():
        raise FileNotFoundError(f"no model YAML {model_file}")
    if result.get(IMGSZ) is None:
        raise ValueError("its result has no image size")
    gflops = result.get("gflops")
    return Variant(
        dataset=str(result.get(DATASET)),
        model=str(result.get(MODEL)),
        pos=str(result.get(POS)),
        attn=str(result.get(ATTN)),
        imgsz=int(result[IMGSZ]),
        nc=_class_count(job_dir, result),
        model_file=model_file,
        gflops=float(gflops) if gflops is not None else None,
    )


def _class_count(job_dir: Path, result: dict[str, Any]) -> int:
    """From the job's config as Hydra saved it, else the result's class names."""
    config = job_dir / HYDRA_DIR / "config.yaml"
    names = (yaml.safe_load(config.read_text()) or {}).get("dataset", {}).get("names") if config.is_file() else None
    names = names or result.get(CLASS_NAMES)
    if not names:
        raise ValueError(f"no dataset classes in {config} or the result")
    return len(names)
