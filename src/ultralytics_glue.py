"""The only module that knows ultralytics internals.

Module registration, the trainer subclass that transfers pretrained weights across shifted layer
indices, model building, GFLOPs and metric extraction all live here, so an ultralytics upgrade
touches one file.
"""
from __future__ import annotations

import logging
import re
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import ultralytics.nn.tasks as yolo_tasks
from ultralytics import YOLO
from ultralytics.cfg import DEFAULT_CFG_DICT
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import SETTINGS
from ultralytics.utils.torch_utils import get_flops

from src import register_with_ultralytics

log = logging.getLogger(__name__)

# model.yaml key under which the job stores what to transfer into the freshly built model:
# {"weights": "/abs/base.pt", "layer_map": {base index: new index}}. It travels with the YAML,
# so DDP workers and resumed runs see it too.
TRANSFER_KEY = "transfer"

# ultralytics' train() result keys -> our metric names
_METRIC_KEYS = {
    "metrics/mAP50(B)": "map50",
    "metrics/mAP50-95(B)": "map50_95",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
}


def register_modules() -> None:
    """Explicit form of what importing `src` arranges (see src/__init__.py)."""
    register_with_ultralytics(yolo_tasks)


def configure(settings_overrides: Mapping[str, Any] | None = None) -> None:
    """ultralytics settings for our jobs: no analytics, none of its own logger integrations (we log
    to W&B ourselves; an installed mlflow or comet would otherwise start logging too), and its
    weights/runs folders under outputs/ instead of the repository root."""
    import ultralytics.utils as yolo_utils
    from src import ULTRALYTICS_HOME

    wanted = {"sync": False, "wandb": False, "mlflow": False, "comet": False, "clearml": False, "dvc": False,
              "tensorboard": False, "weights_dir": str(ULTRALYTICS_HOME / "weights"),
              "runs_dir": str(ULTRALYTICS_HOME / "runs"), **(settings_overrides or {})}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)
    # Module constants read once at import; the AMP check downloads its probe model to WEIGHTS_DIR.
    yolo_utils.WEIGHTS_DIR = Path(SETTINGS["weights_dir"])
    yolo_utils.RUNS_DIR = Path(SETTINGS["runs_dir"])


def train_arg_names() -> set[str]:
    return set(DEFAULT_CFG_DICT)


def build_model(model_yaml: str | Path | dict, nc: int, verbose: bool = False) -> DetectionModel:
    return DetectionModel(str(model_yaml) if isinstance(model_yaml, Path) else model_yaml, nc=nc, verbose=verbose)


def transfer_weights(model: torch.nn.Module, weights: str | Path, layer_map: Mapping[int, int]) -> tuple[int, int]:
    """Copy a base checkpoint's tensors into `model`, renaming `model.<i>.` to `model.<layer_map[i]>.`.

    ultralytics matches tensors by name, so after an insertion most of them silently fail to load;
    renaming first makes every tensor of an unchanged layer land. Returns (transferred, total).
    """
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    source = (ckpt.get("ema") or ckpt["model"]) if isinstance(ckpt, dict) else ckpt
    src_state = source.float().state_dict()
    dst_state = model.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    pattern = re.compile(r"^model\.(\d+)\.(.*)$")
    for key, tensor in src_state.items():
        match = pattern.match(key)
        if not match or int(match.group(1)) not in layer_map:
            continue
        new_key = f"model.{layer_map[int(match.group(1))]}.{match.group(2)}"
        if new_key in dst_state and dst_state[new_key].shape == tensor.shape:
            renamed[new_key] = tensor
    model.load_state_dict(renamed, strict=False)
    return len(renamed), len(src_state)


class AblationTrainer(DetectionTrainer):
    """DetectionTrainer that honours the model YAML's `transfer` entry when it builds the model,
    and keeps the CPU thread count the job chose (ultralytics resets it to cores - 1, which on a
    2-core machine halves training speed and overrides the parallel launcher's split)."""

    keep_final_predictions = False  # set per run by train(keep_predictions=True)

    def __init__(self, *args, **kwargs):
        threads = torch.get_num_threads()
        super().__init__(*args, **kwargs)
        if self.device.type == "cpu":
            torch.set_num_threads(threads)

    def final_eval(self):
        """The best checkpoint's validation, keeping its COCO-format predictions when asked, so AP
        by size comes from the very pass that gives the reported mAP instead of a second one."""
        if self.keep_final_predictions and self.validator is not None:
            self.validator.args.save_json = True
        super().final_eval()

    def get_model(self, cfg=None, weights=None, verbose=True):
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        spec = (model.yaml or {}).get(TRANSFER_KEY)
        if spec and weights is None:  # a resumed or checkpoint-started run already has its weights
            layer_map = {int(k): int(v) for k, v in spec["layer_map"].items()}
            done, total = transfer_weights(model, spec["weights"], layer_map)
            log.info("%d/%d tensors transferred from %s", done, total, spec["weights"])
            self.transferred = (done, total)
        return model


def train(model_yaml: Path, data_yaml: Path, out_dir: Path, args: Mapping[str, Any], resume_from: Path | None = None,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None, keep_predictions: bool = False):
    """One ultralytics training run into `out_dir/train`; returns (metrics dict, trainer).

    With `resume_from` (an interrupted run's last.pt) ultralytics continues that run with the
    epoch, optimizer and arguments stored in it. With `keep_predictions` the final validation
    also writes its predictions (see `final_predictions`).
    """
    model = YOLO(str(resume_from or model_yaml), task="detect")
    if keep_predictions:
        model.add_callback("on_pretrain_routine_start", lambda trainer: setattr(trainer, "keep_final_predictions", True))
    if on_epoch is not None:
        def report(trainer):
            if trainer.epoch < trainer.epochs:  # final_eval fires once more at epochs+1 for the best model
                on_epoch(trainer.epoch + 1, epoch_values(trainer))

        model.add_callback("on_fit_epoch_end", report)
    if resume_from is not None:
        results = model.train(trainer=AblationTrainer, resume=True)
    else:
        results = model.train(
            trainer=AblationTrainer, data=str(data_yaml), project=str(out_dir), name="train", exist_ok=True, **args
        )
    return metrics_from(results), model.trainer


def epoch_values(trainer) -> dict[str, float]:
    """Losses, validation metrics and learning rates of the epoch that just ended."""
    values = dict(trainer.label_loss_items(trainer.tloss, prefix="train"))
    values.update({k: float(v) for k, v in (trainer.metrics or {}).items()})
    values.update({f"lr/{k}": float(v) for k, v in (trainer.lr or {}).items()})
    return values


def metrics_from(results: Any) -> dict[str, float | None]:
    values = getattr(results, "results_dict", None) or {}
    return {ours: _float(values.get(theirs)) for theirs, ours in _METRIC_KEYS.items()}


def ultralytics_gflops(model: torch.nn.Module, imgsz: int = 640) -> float:
    """GFLOPs as ultralytics reports them (fused model, batch 1, 640 px); an error, never a silent 0."""
    fused = model
    if hasattr(model, "fuse") and not (hasattr(model, "is_fused") and model.is_fused()):
        fused = deepcopy(model).eval().fuse(verbose=False)
    value = get_flops(fused, imgsz)  # profiles a copy of its own
    if not value:
        raise RuntimeError("ultralytics' FLOPs counter failed (it returns 0.0 on any error)")
    return float(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def export_onnx(model_yaml: Path, out_dir: Path, imgsz: int, nc: int) -> Path:
    """ONNX export through ultralytics' exporter, then one onnxruntime inference checked against torch."""
    import numpy as np
    import onnxruntime

    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(model_yaml, nc=nc).eval()
    weights = out_dir / f"{Path(model_yaml).stem}.pt"
    torch.save({"model": model, "train_args": {"imgsz": imgsz}, "date": None, "version": None}, weights)
    path = Path(YOLO(str(weights), task="detect").export(format="onnx", imgsz=imgsz, simplify=False, verbose=False))
    x = torch.rand(1, 3, imgsz, imgsz)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})[:1]
    with torch.no_grad():
        reference = model.fuse(verbose=False)(x)[0].numpy()
    if not np.allclose(onnx_out, reference, rtol=1e-3, atol=1e-3):
        raise RuntimeError(f"onnxruntime output differs from torch (max abs diff "
                           f"{float(np.abs(onnx_out - reference).max()):.3g})")
    weights.unlink(missing_ok=True)
    return path


def final_predictions(trainer) -> tuple[dict[str, float | None], list[dict[str, Any]]] | None:
    """mAP75 and the COCO-format predictions (possibly none) of the run's final validation, if it
    kept them (`train(keep_predictions=True)`; not in DDP, whose workers do not get our callbacks)."""
    validator = getattr(trainer, "validator", None)
    if validator is None or not validator.args.save_json or not Path(trainer.best).exists():
        return None
    return {"map75": _float(validator.metrics.box.map75)}, list(validator.jdict)


def validate_with_predictions(weights: Path, data_yaml: Path, out_dir: Path, imgsz: int, batch: int,
                              device: Any = None) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """Validate a trained checkpoint once more, keeping its COCO-format predictions for AP by size."""
    import json

    import logging

    from ultralytics.utils import LOGGER

    model = YOLO(str(weights), task="detect")
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # its own COCO evaluation printout would repeat ours
    try:
        results = model.val(data=str(data_yaml), imgsz=imgsz, batch=batch, device=device, save_json=True,
                            project=str(out_dir), name="val", exist_ok=True, plots=False, verbose=False)
    finally:
        LOGGER.setLevel(level)
    metrics = metrics_from(results)
    metrics["map75"] = _float(results.box.map75)
    predictions_file = Path(results.save_dir) / "predictions.json"
    predictions = json.loads(predictions_file.read_text()) if predictions_file.exists() else []
    return metrics, predictions
