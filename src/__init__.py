"""Attention-module ablations for YOLO11.

Importing `src` registers our attention modules with ultralytics' model parser, so every process
that builds or unpickles one of our models (training, resume, checkpoint loading, DDP workers)
finds them. It also keeps ultralytics' own files under outputs/ and skips its online checks.
"""
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Must be set before ultralytics is first imported: it reads them at import time.
os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / "outputs" / ".ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")  # set YOLO_OFFLINE=0 to allow ultralytics' downloads

# REGISTRATION_PLACEHOLDER (enabled once src.attention lands)
