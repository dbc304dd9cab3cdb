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


def module_effect(weights: Path, images: list[Path], imgsz: int) -> list[np.ndarray | None]:
    """Per image, where the checkpoint's attention modules change the features: an (H, W) map at the
    image's own size (None for every image of a model without a module). See `effect_map`."""
    import cv2
    import torch
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils.ops import scale_masks

    model = YOLO(str(weights), task="detect").model.float().eval()
    layers = attention_layers(model)
    if not layers:
        return [None] * len(images)
    letterbox = LetterBox((imgsz, imgsz), auto=False)  # what predict() does to an image (no stride rounding)
    maps = []
    for path in images:
        bgr = cv2.imread(str(path))
        rgb = np.ascontiguousarray(letterbox(image=bgr)[..., ::-1])
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        heat = effect_map(model, layers, x)
        maps.append(scale_masks(heat[None, None], bgr.shape[:2])[0, 0].numpy())  # the letterbox's padding cut off
    return maps


def attention_layers(model) -> list[tuple[int, Any]]:
    """(index, layer) of each top-level layer of a DetectionModel that is or holds an attention module."""
    kinds = _attention_classes()
    return [(i, layer) for i, layer in enumerate(model.model) if any(isinstance(m, kinds) for m in layer.modules())]


def effect_map(model, layers: list[tuple[int, Any]], x) -> Any:
    """The attention modules' effect on one input batch `x` (1, 3, H, W): for each layer of `layers`,
    the channel mean of |its output - its output on the same input with its attention modules
    replaced by identities| (a module between layers: |module(x) - x|; inside a block: the block's
    output with and without them), bilinearly upsampled to (H, W); the mean over the layers."""
    import torch
    import torch.nn.functional as F

    seen: dict[int, tuple[Any, Any]] = {}
    hooks = [
        layer.register_forward_hook(lambda m, args, out, i=i: seen.__setitem__(i, (args[0], out)))
        for i, layer in layers
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    maps = []
    for i, layer in layers:
        inputs, out = seen[i]
        with torch.no_grad(), _without_attention(layer):
            plain = layer(inputs)
        change = (out - plain).abs().mean(1, keepdim=True)
        maps.append(F.interpolate(change, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0])
    return torch.stack(maps).mean(0)


class _without_attention:
    """While active, every attention module inside `layer` (or the layer itself) returns its input."""

    def __init__(self, layer) -> None:
        self.modules = [m for m in layer.modules() if isinstance(m, _attention_classes())]
        self.hooks: list[Any] = []

    def __enter__(self):
        self.hooks = [m.register_forward_hook(lambda m, args, out: args[0]) for m in self.modules]
        return self

    def __exit__(self, *exc) -> None:
        for h in self.hooks:
            h.remove()


def _attention_classes() -> tuple[type, ...]:
    from src import attention

    return tuple(c for c in map(attention.get_class, attention.available()) if c is not None)
