"""A checkpoint's detections and LayerCAM heatmaps on given images, and ultralytics' TP/FP/miss
matching of detections against ground truth (what src.visualize draws)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

CONF = 0.25  # ultralytics' predict default, also its confusion matrix's


def predict(weights: Path, images: list[Path], imgsz: int, out_dir: Path, cams: bool) -> list[dict[str, Any]]:
    """Per image: its detections (`boxes` xyxy px of the original image, `conf`, `cls`), the
    model's class `names`, and with `cams` the LayerCAM overlay that `predict(visualize=True)`
    writes (ultralytics' `class_activation_map`; an RGB array at the network's input size).
    ultralytics writes the overlays into `out_dir`."""
    from PIL import Image
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    out_dir = Path(out_dir).resolve()  # ultralytics puts a relative `project` under its own runs dir
    model = YOLO(str(weights), task="detect")
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)  # its per-image lines and "explaining the N strongest" notes
    try:
        results = model.predict(
            [str(p) for p in images],
            imgsz=imgsz,
            conf=CONF,
            visualize=cams,
            save=False,
            project=str(out_dir.parent),
            name=out_dir.name,
            exist_ok=True,
            verbose=False,
        )
    finally:
        LOGGER.setLevel(level)
    found = []
    for image, r in zip(images, results, strict=False):
        overlay = out_dir / f"{image.stem}_cam.jpg"
        cam = np.asarray(Image.open(overlay).convert("RGB")) if cams and overlay.is_file() else None
        found.append(
            {
                "boxes": r.boxes.xyxy.cpu(),
                "conf": r.boxes.conf.cpu(),
                "cls": r.boxes.cls.cpu(),
                "cam": cam,
                "names": model.names,
            }
        )
    return found


def matches(pred: dict[str, Any], gt: list[tuple]) -> dict[str, list[tuple]]:
    """TP / FP / FN boxes (x1, y1, x2, y2, cls) of one image by ultralytics' detection matcher
    (`ConfusionMatrix`: greedy, one-to-one, IoU > 0.45; a match of the wrong class is an FP and an
    FN); `gt` holds (cls, x1, y1, x2, y2)."""
    import torch
    from ultralytics.utils.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(names=pred["names"], save_matches=True)
    gt_boxes = torch.tensor([b[1:] for b in gt], dtype=torch.float32).reshape(-1, 4)
    gt_cls = torch.tensor([b[0] for b in gt], dtype=torch.float32)
    matrix.process_batch(
        {"bboxes": pred["boxes"], "conf": pred["conf"], "cls": pred["cls"]},
        {"bboxes": gt_boxes, "cls": gt_cls},
        conf=CONF,
    )
    kept = matrix.matches or {}
    return {
        kind: [
            (*map(float, box), int(c))
            for box, c in zip(kept.get(kind, {}).get("bboxes", []), kept.get(kind, {}).get("cls", []), strict=False)
        ]
        for kind in ("TP", "FP", "FN")
    }
