"""What a job keeps of a validation pass (the final one of a training, or a second one): metrics,
per-class AP, the mean PR curve, the per-prediction matches and faster-coco-eval's AP by size."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ultralytics.models.yolo.detect import DetectionValidator

from src.files import SIZE_BINS, size_bin
from src.ultralytics_glue.names import ULTRALYTICS_METRICS

# faster-coco-eval's names for the COCO figures we keep -> ours
COCO_STATS = {"AP_all": "coco_map50_95", **{f"AP_{size}": f"ap_{size}" for size in SIZE_BINS}}


def metrics_from(results: Any) -> dict[str, float | None]:
    """Our metric names from a train()/val() result (DetMetrics)."""
    values = getattr(results, "results_dict", None) or {}
    return {ours: _float(values.get(theirs)) for theirs, ours in ULTRALYTICS_METRICS.items()}


class RecordingValidator(DetectionValidator):
    """ultralytics' DetectionValidator that, outside training (the final validation, or `val()`),
    keeps what its own pass computed and then throws away: the per-image match statistics (cleared
    at the end of `get_stats`) and faster-coco-eval's full summary (printed, only partly returned)."""

    matches: dict[str, np.ndarray] | None = None
    coco_stats: dict[str, float] | None = None

    def get_stats(self) -> dict[str, Any]:
        if not self.training:
            self.matches = _matches(self.metrics.stats, self.iouv)
        return super().get_stats()

    def coco_evaluate(self, stats, *args, **kwargs):
        """ultralytics' own faster-coco-eval pass, with the evaluator's `stats_as_dict` kept."""
        self.coco_stats = {}
        with _keeping_coco_summary(self.coco_stats):
            return super().coco_evaluate(stats, *args, **kwargs)


@contextmanager
def _keeping_coco_summary(into: dict[str, float]):
    """While active, every faster-coco-eval evaluator copies its summary into `into`.

    ultralytics imports `COCOeval_faster` from the package inside `coco_evaluate`, so a subclass
    put there for the call is the one it uses; nothing else about its evaluation changes.
    """
    import faster_coco_eval

    original = faster_coco_eval.COCOeval_faster

    class Keeping(original):
        def summarize(self, *args, **kwargs):
            result = super().summarize(*args, **kwargs)
            into.update(self.stats_as_dict)
            return result

    faster_coco_eval.COCOeval_faster = Keeping
    try:
        yield
    finally:
        faster_coco_eval.COCOeval_faster = original


def _matches(stats: dict[str, list[np.ndarray]], iouv) -> dict[str, np.ndarray]:
    """The validator's per-image lists as flat arrays, each prediction and ground-truth box with the
    index of its image (position in the validation loader, which does not shuffle)."""
    n_images = len(stats["tp"])
    pred_counts = [len(c) for c in stats["conf"]]
    gt_counts = [len(c) for c in stats["target_cls"]]

    def flat(key, dtype, width=None):
        parts = stats[key]
        if not parts:
            return np.zeros((0, width) if width else 0, dtype)
        return np.concatenate(parts, 0).astype(dtype)

    return {
        "tp": flat("tp", bool, len(iouv)).reshape(-1, len(iouv)),
        "conf": flat("conf", np.float32),
        "pred_cls": flat("pred_cls", np.int64),
        "pred_image": np.repeat(np.arange(n_images, dtype=np.int64), pred_counts),
        "gt_cls": flat("target_cls", np.int64),
        "gt_image": np.repeat(np.arange(n_images, dtype=np.int64), gt_counts),
        "n_images": np.asarray(n_images, dtype=np.int64),
        "iouv": np.asarray(iouv.cpu() if hasattr(iouv, "cpu") else iouv, dtype=np.float32),
    }


@dataclass
class ValidationRecord:
    """Everything a job records of one validation pass of its best checkpoint."""

    metrics: dict[str, float | None]  # map75, and with AP by size: ap_small ... coco_map50_95
    per_class: dict[str, dict[str, float] | None]  # class -> {ap50, ap50_95, instances}; None: no instance
    pr_curve: tuple[np.ndarray, np.ndarray]  # (recall, mean precision over classes) at IoU 0.5
    matches: dict[str, np.ndarray]  # see `_matches`
    scores: dict[str, float | None]  # map50, map50_95, precision, recall of the pass


def record_of(validator: RecordingValidator, ap_by_size: bool) -> ValidationRecord:
    """What the job keeps of the validator's last pass (see `ValidationRecord`)."""
    metrics = validator.metrics
    box = metrics.box
    names = {int(k): str(v) for k, v in metrics.names.items()}
    counts = metrics.nt_per_class if metrics.nt_per_class is not None else np.zeros(len(names), int)
    per_class: dict[str, dict[str, float] | None] = {name: None for name in names.values()}
    for i, c in enumerate(box.ap_class_index):
        per_class[names[int(c)]] = {
            "ap50": float(box.ap50[i]),
            "ap50_95": float(box.ap[i]),
            "instances": int(counts[int(c)]),
        }
    recall, precision, *_ = box.curves_results[0]
    figures: dict[str, float | None] = {"map75": _float(box.map75)}
    if ap_by_size:
        figures.update(_ap_by_size(validator))
    return ValidationRecord(
        metrics=figures,
        per_class=per_class,
        pr_curve=(np.asarray(recall), np.asarray(precision).mean(0)),
        matches=validator.matches,
        scores=metrics_from(metrics),
    )


def _ap_by_size(validator: RecordingValidator) -> dict[str, float | None]:
    """COCO mAP and AP small/medium/large of ultralytics' faster-coco-eval pass; a size with no
    ground-truth box is None (it reports -1). With no detection at all it does not evaluate: AP is
    then 0 wherever there is ground truth."""
    coco = validator.coco_stats or {}
    if coco:
        return {ours: (None if coco[theirs] < 0 else float(coco[theirs])) for theirs, ours in COCO_STATS.items()}
    present = {size_bin(a["area"]) for a in (validator.gdict or {}).get("annotations", [])}
    return {
        "coco_map50_95": 0.0 if present else None,
        **{f"ap_{size}": 0.0 if size in present else None for size in SIZE_BINS},
    }


def final_record(trainer, ap_by_size: bool) -> ValidationRecord | None:
    """The record of a run's final validation of best.pt; None where it has none (DDP: the workers'
    validator stays in their processes)."""
    validator = getattr(trainer, "validator", None)
    if not isinstance(validator, RecordingValidator) or validator.matches is None or not Path(trainer.best).exists():
        return None
    return record_of(validator, ap_by_size)


def revalidate(
    weights: Path,
    data_yaml: Path,
    out_dir: Path,
    imgsz: int,
    batch: int,
    device: Any = None,
    ap_by_size: bool = True,
    split: str = "val",
) -> ValidationRecord:
    """Validate a trained checkpoint on a split of the data YAML (`val`, `test`) through ultralytics
    and record that pass; its files go to `out_dir/<split>/`."""
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    model = YOLO(str(weights), task="detect")
    seen: list[RecordingValidator] = []
    model.add_callback("on_val_end", seen.append)
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # its printout would repeat the final validation's
    try:
        where = {"data": str(data_yaml), "split": split, "imgsz": imgsz, "batch": batch, "device": device}
        output = {"project": str(out_dir), "name": split, "exist_ok": True, "plots": False, "verbose": False}
        model.val(validator=RecordingValidator, save_json=ap_by_size, **where, **output)
    finally:
        LOGGER.setLevel(level)
    return record_of(seen[-1], ap_by_size)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
