"""The embedded `shapes` dataset: deterministic, valid YOLO labels, real small objects, safe cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

from src.data import shapes

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_train": 6, "n_val": 3, "n_test": 3}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cfg(**generator) -> dict:
    """The shipped config with a tiny generator section."""
    spec = yaml.safe_load((ROOT / "conf" / "dataset" / "shapes.yaml").read_text())
    spec["generator"] = {**spec["generator"], **TINY, **generator}
    return spec


def read_boxes(label: Path) -> np.ndarray:
    rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
    return np.array(rows, dtype=float).reshape(-1, 5)


def test_same_seed_is_byte_identical_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    shapes.generate(a, seed=3, imgsz=96, **TINY)
    shapes.generate(b, seed=3, imgsz=96, **TINY)
    shapes.generate(c, seed=4, imgsz=96, **TINY)
    fa, fb, fc = files(a), files(b), files(c)
    assert len(fa) == 2 * (TINY["n_train"] + TINY["n_val"] + TINY["n_test"])
    assert fa == fb
    assert fa.keys() == fc.keys()
    differ = [k for k in fa if fa[k] != fc[k]]
    assert len(differ) == len(fa)  # every image and every label file changes with the seed


def test_layout_and_labels_are_valid(tmp_path):
    names = ["circle", "square", "triangle", "cross", "ring", "star"]
    imgsz = 128
    shapes.generate(tmp_path, seed=0, n_train=10, n_val=4, imgsz=imgsz, names=names)
    seen = set()
    for split, n in (("train", 10), ("val", 4)):
        images = sorted((tmp_path / "images" / split).glob("*.png"))
        labels = sorted((tmp_path / "labels" / split).glob("*.txt"))
        assert len(images) == n
        assert [p.stem for p in images] == [p.stem for p in labels]
        for img, lbl in zip(images, labels, strict=False):
            with Image.open(img) as im:
                assert im.size == (imgsz, imgsz) and im.mode == "RGB"
            boxes = read_boxes(lbl)
            assert len(boxes) >= 1
            cls, xc, yc, w, h = boxes.T
            assert np.all(cls == cls.astype(int)) and cls.min() >= 0 and cls.max() < len(names)
            seen.update(cls.astype(int).tolist())
            for v in (xc, yc, w, h):
                assert np.all((v > 0) & (v <= 1))
            assert np.all(xc - w / 2 >= 0) and np.all(xc + w / 2 <= 1)
            assert np.all(yc - h / 2 >= 0) and np.all(yc + h / 2 <= 1)
            assert np.all(w * imgsz >= 5) and np.all(h * imgsz >= 5)
    assert len(seen) >= 4  # several classes actually appear


def test_objects_are_mostly_apart(tmp_path):
    shapes.generate(tmp_path, seed=1, n_train=12, n_val=0, imgsz=160)
    for lbl in (tmp_path / "labels" / "train").glob("*.txt"):
        b = read_boxes(lbl)[:, 1:] * 160
        x1, y1, x2, y2 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                iw = min(x2[i], x2[j]) - max(x1[i], x1[j])
                ih = min(y2[i], y2[j]) - max(y1[i], y1[j])
                assert iw <= 0 or ih <= 0, f"{lbl.name}: boxes {i} and {j} overlap"


def test_sizes_cover_coco_small_and_medium(tmp_path):
    spec = cfg(n_train=40, n_val=0)
    imgsz = spec["imgsz"]
    stats = shapes.generate(tmp_path, **shapes.generation_params(spec))
    areas = np.concatenate(
        [read_boxes(p)[:, 3] * read_boxes(p)[:, 4] * imgsz**2 for p in (tmp_path / "labels" / "train").glob("*.txt")]
    )
    small, medium = np.mean(areas < 32**2), np.mean((areas >= 32**2) & (areas < 96**2))
    assert len(areas) >= 100
    assert 0.3 <= small <= 0.8, small
    assert medium >= 0.15, medium
    assert stats["train"]["small"] == int(round(small * len(areas)))


def test_prepare_writes_a_complete_yolo_dataset_and_reuses_it(tmp_path, monkeypatch):
    spec = OmegaConf.create(cfg())  # a DictConfig, as the run code passes it
    data_yaml = shapes.prepare(spec, tmp_path / "cache")
    root = data_yaml.parent
    assert root.parent == (tmp_path / "cache").resolve() and root.name.startswith("shapes-")
    data = yaml.safe_load(data_yaml.read_text())
    assert data["path"] == str(root) and Path(data["path"]).is_absolute()
    assert (root / data["train"]).is_dir() and (root / data["val"]).is_dir()
    assert data["names"] == dict(enumerate(spec["names"]))
    assert not [p for p in (tmp_path / "cache").iterdir() if p != root]  # no temp dir left behind

    stamp = data_yaml.stat().st_mtime_ns
    monkeypatch.setattr(shapes, "generate", lambda *a, **k: pytest.fail("regenerated a complete cache"))
    assert shapes.prepare(cfg(), tmp_path / "cache") == data_yaml
    assert data_yaml.stat().st_mtime_ns == stamp

    # other generation params -> another directory
    monkeypatch.undo()
    other = shapes.prepare(cfg(seed=1), tmp_path / "cache")
    assert other.parent != root


def test_half_written_caches_are_not_taken_as_complete(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = shapes.prepare(cfg(), cache)
    target = first.parent
    # a killed run's temp dir holding everything but the data YAML ...
    leftover = cache / f".{target.name}.tmp-999-dead"
    shapes.generate(leftover, **shapes.generation_params(cfg()))
    # ... and a target that lost its data YAML and an image
    first.unlink()
    (target / "images" / "train" / "train_00000.png").unlink()
    calls = []
    real = shapes.generate
    monkeypatch.setattr(shapes, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = shapes.prepare(cfg(), cache)
    assert calls == [1]
    assert again == first and again.is_file()
    assert (target / "images" / "train" / "train_00000.png").is_file()
    assert len(list((target / "labels" / "train").glob("*.txt"))) == TINY["n_train"]
    assert not list(cache.glob("*.stale-*"))


def test_losing_the_race_keeps_the_winners_copy(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    winner = shapes.prepare(cfg(), cache)
    stamp = winner.stat().st_mtime_ns
    real_is_file = Path.is_file
    state = {"first": True}

    def not_there_yet(self):  # the first completeness check misses: another process finishes meanwhile
        if self == winner and state["first"]:
            state["first"] = False
            return False
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", not_there_yet)
    assert shapes.prepare(cfg(), cache) == winner
    assert winner.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in cache.iterdir()) == [winner.parent.name]  # ours was discarded


def test_test_split_is_held_out_and_leaves_train_and_val_unchanged(tmp_path):
    """Its own random stream: no image shared with train or val, and train/val byte-identical to a
    dataset generated without it (caches and results from before keep their train/val images)."""
    with_test, without = tmp_path / "a", tmp_path / "b"
    stats = shapes.generate(with_test, seed=0, imgsz=64, n_train=4, n_val=3, n_test=5)
    shapes.generate(without, seed=0, imgsz=64, n_train=4, n_val=3)
    fa, fb = files(with_test), files(without)
    assert {k: v for k, v in fa.items() if "/test/" not in k} == fb
    test_images = {v for k, v in fa.items() if k.startswith("images/test/")}
    assert len(test_images) == stats["test"]["images"] == 5 and stats["test"]["objects"] > 0
    assert not test_images & {v for k, v in fa.items() if k.startswith(("images/train/", "images/val/"))}
    assert len(list((with_test / "labels" / "test").glob("*.txt"))) == 5


def test_a_cache_without_the_test_split_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    data_yaml = shapes.prepare(cfg(), cache)
    target = data_yaml.parent
    assert yaml.safe_load(data_yaml.read_text())["test"] == "images/test"
    # the generator's earlier caches were named by params without n_test: never looked at now
    params = shapes.generation_params(cfg())
    assert shapes.params_hash({k: v for k, v in params.items() if k != "n_test"}) not in target.name
    # a copy at this place whose data YAML lacks the test split (as those wrote it) is regenerated
    for kind in ("images", "labels"):
        shutil.rmtree(target / kind / "test")
    data_yaml.write_text(
        "".join(line for line in data_yaml.read_text().splitlines(True) if not line.startswith("test:"))
    )
    assert shapes.prepare(cfg(), cache) == data_yaml
    assert yaml.safe_load(data_yaml.read_text())["test"] == "images/test"
    assert len(list((target / "images" / "test").glob("*.png"))) == TINY["n_test"]
    assert not shapes.prepare(cfg(n_test=0), cache).parent.joinpath("images", "test").exists()


def test_generator_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        shapes.prepare(cfg(n_trian=3), tmp_path)
    with pytest.raises(ValueError, match="catalogue"):
        shapes.generate(tmp_path, seed=0, n_train=1, n_val=0, imgsz=64, names=["hexagon"])
    assert not any(tmp_path.iterdir())


def test_default_config_generates_quickly_enough_to_be_embedded():
    spec = cfg()
    assert spec["kind"] == "shapes" and spec["imgsz"] % 32 == 0
    assert set(spec["names"]) <= set(shapes.CATALOGUE)
    params = shapes.generation_params(yaml.safe_load((ROOT / "conf" / "dataset" / "shapes.yaml").read_text()))
    assert params["n_train"] + params["n_val"] + params["n_test"] <= 1000
    assert params["n_test"] == 2 * params["n_val"] == 128  # by default twice val: a narrower test-set CI
    assert shapes.generation_params(cfg(n_test=None))["n_test"] == 2 * TINY["n_val"]
