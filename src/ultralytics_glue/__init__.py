"""The only package that knows ultralytics internals; an ultralytics upgrade touches it alone.

`names` (metric keys, results.csv; torch-free), `settings` (where ultralytics writes, what it turns
on), `model` (build, GFLOPs, ONNX), `trainer` (our trainer class, weight transfer, train()),
`validation` (what a job keeps of a validation pass: metrics, per-class AP, PR curve, matches, COCO AP
by size), `explain` (a checkpoint's detections and LayerCAM heatmaps, TP/FP/miss matching). Module registration with
ultralytics' parser is in `src/__init__.py`, so that `import src` alone arranges it.
"""
