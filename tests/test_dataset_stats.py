"""Dataset statistics: images, boxes per class, COCO size buckets measured at the training size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.data import dataset_stats as stats
from tests.test_convert import write_image

ROOT = Path(__file__).resolve().parents[1]

# Exact binary fractions so the 32^2 / 96^2 boundaries are hit exactly. At imgsz 512:
TRAIN = {
    # 256x128 image: scale 2
    "a.png": (
        (256, 128),
        [
            "0 0.5 0.5 0.03125 0.0625",  # 8x8 px -> 16x16: small
            "0 0.5 0.5 0.0625 0.125",  # 16x16 -> 32x32 = 1024: medium (boundary)
            "0 0.5 0.5 0.1875 0.375",  # 48x48 -> 96x96 = 9216: large (boundary)
            "1 0.5 0.5 0.5 0.5",
        ],
    ),  # 128x64 -> 256x128: large
    # 128x512 portrait: scale 1
    "b.jpg": (
        (128, 512),
        [
            "1 0.5 0.5 0.25 0.0625",  # 32x32: medium
            "2 0.5 0.5 0.0625 0.03125",
        ],
    ),  # 8x16: small
    "c.png": ((64, 64), []),  # background (empty label file)
    "d.png": ((64, 64), None),  # no label file
}
VAL = {"e.png": ((100, 50), ["0 0.5 0.5 0.5 0.5"])}  # 50x25 px: at 512 -> 256x128 large; at 64 -> 32x16 small


def make_yolo(root: Path, split: str, spec: dict) -> None:
    for name, (size, rows) in spec.items():
        write_image(root / "images" / split / name, size)
        if rows is not None:
            lbl = root / "labels" / split / f"{Path(name).stem}.txt"
            lbl.parent.mkdir(parents=True, exist_ok=True)
            lbl.write_text("".join(f"{r}\n" for r in rows))


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "ds"
    make_yolo(root, "train", TRAIN)
    make_yolo(root, "val", VAL)
    data = root / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {"path": str(root), "train": "images/train", "val": "images/val", "names": {0: "a", 1: "b", 2: "c"}}
        )
    )
    return data


def test_numbers_at_the_training_size(dataset):
    s = stats.dataset_stats(dataset, imgsz=512)
    assert s["imgsz"] == 512 and s["names"] == ["a", "b", "c"]
    tr = s["splits"]["train"]
    assert (tr["images"], tr["background_images"], tr["boxes"]) == (4, 2, 6)
    assert (tr["small"], tr["medium"], tr["large"]) == (2, 2, 2)
    assert tr["classes"] == {
        "a": {"boxes": 3, "small": 1, "medium": 1, "large": 1},
        "b": {"boxes": 2, "small": 0, "medium": 1, "large": 1},
        "c": {"boxes": 1, "small": 1, "medium": 0, "large": 0},
    }
    assert tr["notes"] == {"images without a label file": 1}
    va = s["splits"]["val"]
    assert (va["images"], va["boxes"], va["large"]) == (1, 1, 1)
    assert stats.dataset_stats(dataset, imgsz=64)["splits"]["val"]["small"] == 1  # same box, smaller training size


def test_frame_and_default_imgsz(dataset):
    s = stats.dataset_stats(dataset)
    assert s["imgsz"] == 640
    df = stats.stats_frame(stats.dataset_stats(dataset, imgsz=512))
    row = df[(df["split"] == "train") & (df["class"] == "all")].iloc[0]
    assert (row["boxes"], row["small"], row["medium"], row["large"]) == (6, 2, 2, 2)
    assert list(df.columns) == ["split", "class", "boxes", "small", "medium", "large"]


def test_txt_lists_and_dataset_config_input(dataset, tmp_path, monkeypatch):
    root = dataset.parent
    listing = tmp_path / "subset.txt"
    listing.write_text(f"{root / 'images' / 'train' / 'a.png'}\n{root / 'images' / 'train' / 'b.jpg'}\n")
    data = tmp_path / "subset.yaml"
    data.write_text(
        yaml.safe_dump({"path": str(root), "train": str(listing), "val": "images/val", "names": ["a", "b", "c"]})
    )
    tr = stats.dataset_stats(data, imgsz=512)["splits"]["train"]
    assert (tr["images"], tr["boxes"], tr["background_images"]) == (2, 6, 0)
    # one of our conf/dataset configs: root from the environment, imgsz from the config
    monkeypatch.setenv("STATS_TEST_ROOT", str(root))
    conf = tmp_path / "mine.yaml"
    conf.write_text(
        "name: mine\nkind: yolo\nroot: ${oc.env:STATS_TEST_ROOT}\nimgsz: 512\n"
        "train_split: train\nval_split: val\nnames: [a, b, c]\n"
    )
    s = stats.dataset_stats(conf)
    assert s["imgsz"] == 512 and s["splits"]["train"]["large"] == 2 and "test" not in s["splits"]
    # its test split (eval.split=test reports there) is counted once it is on disk
    make_yolo(root, "test-dev", VAL)
    conf.write_text(conf.read_text() + "test_split: test-dev\n")
    assert stats.dataset_stats(conf)["splits"]["test"]["boxes"] == 1


def test_cli(dataset):
    r = subprocess.run(
        [sys.executable, "-m", "src.data.dataset_stats", str(dataset), "--imgsz", "512"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "train: 4 images (2 without boxes), 6 boxes" in r.stdout
    assert "val: 1 images (0 without boxes), 1 boxes" in r.stdout
    assert "imgsz 512" in r.stdout
    lines = [line.split() for line in r.stdout.splitlines()]
    assert ["a", "3", "1", "1", "1"] in lines and ["all", "6", "2", "2", "2"] in lines
    assert stats.main([str(dataset.parent / "missing.yaml")]) == 2
