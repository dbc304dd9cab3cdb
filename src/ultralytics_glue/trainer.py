"""Our trainer class (weight transfer across shifted layer indices, thread count) and train().

DDP workers import `AblationTrainer` from this module by its path, and importing it imports
`src`, which registers the attention modules with ultralytics' parser in those processes too.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from copy import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import torch
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer

from src.arch.keys import TRANSFER_KEY
from src.files import atomic_write_text
from src.results.jobdir import BEST_CHECKPOINT
from src.ultralytics_glue.validation import RecordingValidator, metrics_from

log = logging.getLogger(__name__)


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


def training_finished(checkpoint: str | Path) -> bool:
    """Whether an interrupted run's last.pt has no epoch left to train: ultralytics then refuses to
    resume it ("nothing to resume"). It is so when the process died after the last epoch's save
    (or after the optimizer was stripped, which sets `epoch` to -1) but before the job recorded."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    epoch, epochs = ckpt.get("epoch", -1), (ckpt.get("train_args") or {}).get("epochs")
    return epoch == -1 or (epochs is not None and epoch + 1 >= int(epochs))


PARTIAL_SUFFIX = ".partial"


def drop_rows_from(results_csv: Path, epoch: int) -> None:
    """Remove results.csv's rows of `epoch` and later (left by a run that died before its checkpoint)."""
    if not results_csv.exists():
        return
    header, *rows = results_csv.read_text().splitlines(keepends=True)
    kept = [row for row in rows if int(float(row.split(",")[0])) < epoch]
    if len(kept) < len(rows):
        atomic_write_text(results_csv, header + "".join(kept))


@contextmanager
def written_beside(owner: Any, *attrs: str):
    """Point `owner.<attr>` (paths) at `<path>.partial` for the duration of a save, then rename each
    file the save wrote over its real path. A process killed mid-save leaves the previous file whole
    (a rename is atomic); a save that raises renames nothing."""
    final = {a: Path(getattr(owner, a)) for a in attrs}
    partial = {a: p.with_name(p.name + PARTIAL_SUFFIX) for a, p in final.items()}
    for a in attrs:
        partial[a].unlink(missing_ok=True)  # a leftover of a save that raised must not be renamed later
        setattr(owner, a, partial[a])
    try:
        yield
    finally:
        for a in attrs:
            setattr(owner, a, final[a])
    for a in attrs:
        if partial[a].exists():
            os.replace(partial[a], final[a])


@contextmanager
def stripping_beside():
    """ultralytics' final_eval strips the optimizer from last.pt and best.pt in place (torch.save
    over the file); for the duration, each stripped checkpoint is written beside and renamed over
    the old one instead, so a kill at the end of training cannot leave a truncated last.pt."""
    from ultralytics.engine import trainer as engine

    in_place = engine.strip_optimizer

    def strip(f=BEST_CHECKPOINT.name, s="", updates=None):  # ultralytics' own default
        if s:
            return in_place(f, s, updates)
        target = SimpleNamespace(path=Path(f))
        with _without_log_line(engine.LOGGER, "Optimizer stripped from"):  # it would name f.partial
            with written_beside(target, "path"):  # reads f, writes f.partial, renamed over f if written
                stripped = in_place(f, str(target.path), updates)
        engine.LOGGER.info(f"Optimizer stripped from {f}, {os.path.getsize(f) / 1e6:.1f}MB")  # the final file
        return stripped

    engine.strip_optimizer = strip
    try:
        yield
    finally:
        engine.strip_optimizer = in_place


@contextmanager
def _without_log_line(logger: logging.Logger, prefix: str):
    """`logger` drops the records whose message starts with `prefix` for the duration."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(prefix)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


class AblationTrainer(DetectionTrainer):
    """DetectionTrainer that honours the model YAML's `transfer` entry when it builds the model,
    keeps the CPU thread count the job chose (ultralytics resets it to cores - 1, which on a
    2-core machine halves training speed and overrides the parallel launcher's split), and writes
    its checkpoints atomically."""

    coco_eval_final = False  # set per run by train(ap_by_size=True)
    final_split = "val"  # set per run by train(final_split=...): the split of the final validation

    def __init__(self, *args, **kwargs):
        threads = torch.get_num_threads()
        super().__init__(*args, **kwargs)
        if self.device.type == "cpu":
            torch.set_num_threads(threads)

    def save_model(self):
        """ultralytics writes last.pt and best.pt in place, so a kill mid-save (OOM killer, scancel,
        node failure) leaves a truncated last.pt that cannot be resumed: here they are written
        beside and renamed into place."""
        with written_beside(self, "last", "best"):
            return super().save_model()

    def save_metrics(self, metrics):
        """ultralytics appends the epoch's row to results.csv before it saves that epoch's
        checkpoint: a run killed in between is resumed from the previous last.pt and trains the
        epoch again. The rows an earlier run wrote from this epoch on are dropped first, so
        results.csv holds each epoch once, as the checkpoint it resumed from saw them."""
        drop_rows_from(Path(self.csv), self.epoch + 1)
        super().save_metrics(metrics)

    def get_validator(self):
        """ultralytics' validator, one that keeps what its final pass computed (see RecordingValidator)."""
        return RecordingValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks
        )  # as DetectionTrainer.get_validator builds its own

    def final_eval(self):
        """The best checkpoint's validation, on `final_split` (eval.split: one pass instead of val and
        then the test split again); with AP by size asked for, with ultralytics' own faster-coco-eval
        pass (`save_json`), so those figures come from the very pass that gives the reported mAP
        instead of a second one. The checkpoints are stripped atomically."""
        if self.coco_eval_final and self.validator is not None:
            self.validator.args.save_json = True
        if self.final_split != "val" and self.validator is not None:  # the held-out split, not the val loader,
            self.validator.args.split, self.validator.dataloader = self.final_split, None
            self.validator.args.rect = True  # in rectangular batches, as the val loader and model.val() build theirs
        with stripping_beside():
            super().final_eval()

    def get_model(self, cfg=None, weights=None, verbose=True):
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        spec = (model.yaml or {}).get(TRANSFER_KEY)
        if spec and weights is None:  # a resumed or checkpoint-started run already has its weights
            layer_map = {int(k): int(v) for k, v in spec["layer_map"].items()}
            done, total = transfer_weights(model, spec["weights"], layer_map)
            log.info(
                "%d/%d tensors transferred from %s%s",
                done,
                total,
                spec["weights"],
                ""
                if done == total
                else f"; the {total - done} others have no tensor of the same name and "
                "shape here (replaced layers, or the convs that pos.inside_mode=conv replaced)",
            )
            self.transferred = (done, total)
        return model


def train(
    model_yaml: Path,
    data_yaml: Path,
    out_dir: Path,
    args: Mapping[str, Any],
    resume_from: Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ap_by_size: bool = False,
    final_split: str = "val",
    built: torch.nn.Module | None = None,
):
    """One ultralytics training run into `out_dir/train`; returns (metrics dict, trainer).

    With `resume_from` (an interrupted run's last.pt) ultralytics continues that run with the
    epoch, optimizer and arguments stored in it. With `ap_by_size` the final validation also runs
    ultralytics' COCO evaluation (see `validation.final_record`); `final_split` is the data YAML
    split it validates best.pt on (selection stays on val, epoch by epoch). `built`: the model the
    job already built from `model_yaml`, handed to ultralytics in place of the one `YOLO(yaml)`
    would build (training reads only its graph, and its trainer builds and seeds its own).
    """
    model = YOLO(str(resume_from), task="detect") if resume_from is not None else _yolo(model_yaml, built)
    if final_split != "val":
        model.add_callback("on_pretrain_routine_start", lambda trainer: setattr(trainer, "final_split", final_split))
    if ap_by_size:
        model.add_callback("on_pretrain_routine_start", lambda trainer: setattr(trainer, "coco_eval_final", True))
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


def _yolo(model_yaml: Path, built: torch.nn.Module | None) -> YOLO:
    """`YOLO(model_yaml)`, with `built` as its model instead of a fresh build (one build fewer per job)."""
    if built is None:
        return YOLO(str(model_yaml), task="detect")

    class Prebuilt(YOLO):
        def _smart_load(self, key: str):
            return (lambda cfg, verbose=False: built) if key == "model" else super()._smart_load(key)

    return Prebuilt(str(model_yaml), task="detect")


def epoch_values(trainer) -> dict[str, float]:
    """Losses, validation metrics and learning rates of the epoch that just ended."""
    values = dict(trainer.label_loss_items(trainer.tloss, prefix="train"))
    values.update({k: float(v) for k, v in (trainer.metrics or {}).items()})
    values.update({f"lr/{k}": float(v) for k, v in (trainer.lr or {}).items()})
    return values
