"""`kind: yolo` datasets: readiness check, data YAML under the cache, deterministic train subsets, configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from src.data.formats import registry
from src.data.formats.visdrone import VISDRONE_NAMES, convert_visdrone
from src.data.yolo_dataset import DatasetNotFoundError, prepare, subset
from tests.test_convert import make_visdrone_fixture, write_image

ROOT = Path(__file__).resolve().parents[1]


def yolo_split(root: Path, split: str, n: int, order=None) -> None:
    """n tiny images with one-box labels in root/images/<split>, root/labels/<split> (creation order `order`)."""
    for i in order if order is not None else range(n):
        write_image(root / "images" / split / f"im{i:03d}.png", (16, 16))
        lbl = root / "labels" / split / f"im{i:03d}.txt"
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text("0 0.5 0.5 0.25 0.25\n")


def cfg_for(root: Path, **over) -> dict:
    cfg = {
        "name": "visdrone",
        "kind": "yolo",
        "root": str(root),
        "train_split": "train",
        "val_split": "val",
        "fraction": 1.0,
        "max_images": None,
        "names": ["a", "b"],
        "make_target": "data-visdrone",
    }
    return {**cfg, **over}


def test_missing_dataset_names_the_path_and_the_make_target(tmp_path):
    root = tmp_path / "datasets" / "VisDrone"
    with pytest.raises(DatasetNotFoundError) as e:
        prepare(cfg_for(root), tmp_path / "cache")
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert str(root / "images" / "train") in msg
    assert "make data-visdrone" in msg and "make data-visdrone ARCHIVES=DIR" in msg
    assert e.value.path == root and e.value.make_target == "data-visdrone"
    assert not (tmp_path / "cache").exists() and not root.exists()  # nothing written on failure


@pytest.mark.parametrize("broken", ["no_val", "empty_labels", "empty_images"])
def test_incomplete_dataset_is_refused(tmp_path, broken):
    root = tmp_path / "ds"
    yolo_split(root, "train", 2)
    if broken != "no_val":
        yolo_split(root, "val", 1)
    if broken == "empty_labels":
        for p in (root / "labels" / "val").iterdir():
            p.unlink()
    if broken == "empty_images":
        for p in (root / "images" / "train").iterdir():
            p.unlink()
    with pytest.raises(DatasetNotFoundError, match="make data-visdrone"):
        prepare(cfg_for(root), tmp_path / "cache")


def test_prepare_writes_the_data_yaml_under_the_cache_only(tmp_path):
    root = tmp_path / "ds"
    yolo_split(root, "train", 3)
    yolo_split(root, "val", 2)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    path = prepare(cfg_for(root), tmp_path / "cache")
    assert path.is_relative_to((tmp_path / "cache").resolve())
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert yaml.safe_load(path.read_text()) == {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "a", 1: "b"},
    }


def test_subset_is_deterministic_and_leaves_val_alone(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    yolo_split(a, "train", 20)
    yolo_split(b, "train", 20, order=reversed(range(20)))  # other creation order, same names
    for r in (a, b):
        yolo_split(r, "val", 3)
    pa = prepare(cfg_for(a, fraction=0.5), tmp_path / "cache")
    pb = prepare(cfg_for(b, fraction=0.5), tmp_path / "cache2")
    da, db = yaml.safe_load(pa.read_text()), yaml.safe_load(pb.read_text())
    assert da["val"] == "images/val" and Path(da["train"]).is_relative_to((tmp_path / "cache").resolve())
    la = Path(da["train"]).read_text().splitlines()
    lb = Path(db["train"]).read_text().splitlines()
    assert len(la) == 10 and [Path(p).name for p in la] == [Path(p).name for p in lb]
    assert all(Path(p).is_file() and Path(p).parent == (a / "images" / "train").resolve() for p in la)
    assert la != sorted(str(p) for p in (a / "images" / "train").resolve().iterdir())[:10]  # shuffled, not a prefix
    assert prepare(cfg_for(a, fraction=0.5), tmp_path / "cache").read_text() == pa.read_text()
    assert Path(da["train"]).read_text().splitlines() == la  # same again
    pm = prepare(cfg_for(a, fraction=0.5, max_images=3), tmp_path / "cache")
    lm = Path(yaml.safe_load(pm.read_text())["train"]).read_text().splitlines()
    assert len(lm) == 3 and pm != pa  # each subset has its own cache entry
    assert (
        Path(yaml.safe_load(prepare(cfg_for(a, max_images=50), tmp_path / "c").read_text())["train"])
        .read_text()
        .count("\n")
        == 20
    )


def test_subset_function():
    files = [Path(f"/x/images/train/{i:04d}.jpg") for i in range(100)]
    s1 = subset(files, 0.1)
    assert s1 == subset(list(reversed(files)), 0.1) and len(s1) == 10 and s1 == sorted(s1)
    assert s1 != subset(files, 0.1, seed=1)
    assert len(subset(files, 0.001)) == 1 and subset(files, 1.0) == files and subset([], 0.5) == []
    assert set(subset(files, 0.1, max_images=5)) <= set(s1)  # a cap keeps a prefix of the same shuffle
    for bad in (0, -0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="fraction"):
            subset(files, bad)
    with pytest.raises(ValueError, match="max_images"):
        subset(files, 1.0, max_images=0)


def test_ultralytics_reads_the_prepared_subset(tmp_path):
    """The txt list maps to the converted labels the ultralytics way (images/ -> labels/)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    src = tmp_path / "native"
    root = tmp_path / "VisDrone"
    log = dict(log=lambda *a: None)
    convert_visdrone(make_visdrone_fixture(src, n_images=6, split="train"), root, **log)
    convert_visdrone(make_visdrone_fixture(src, n_images=2, split="val", seed=1), root, **log)
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / "visdrone.yaml"))
    cfg.update(root=str(root), max_images=4)
    data = check_det_dataset(str(prepare(cfg, tmp_path / "cache")))
    assert data["nc"] == 10
    ds = YOLODataset(
        img_path=data["train"], data=data, imgsz=64, augment=False, hyp=get_cfg(overrides={"imgsz": 64}), task="detect"
    )
    assert len(ds.im_files) == 4
    assert sum(len(lb["cls"]) for lb in ds.labels) > 0


def test_the_test_split_is_listed_once_converted(tmp_path):
    src, root = tmp_path / "native", tmp_path / "VisDrone"
    for i, split in enumerate(("train", "val")):
        convert_visdrone(make_visdrone_fixture(src, n_images=2, split=split, seed=i), root, log=lambda *a: None)
    cfg = cfg_for(root, test_split="test-dev")
    assert "test" not in yaml.safe_load(prepare(cfg, tmp_path / "cache").read_text())  # eval.split=val still runs
    convert_visdrone(make_visdrone_fixture(src, n_images=2, split="test-dev", seed=2), root, log=lambda *a: None)
    assert yaml.safe_load(prepare(cfg, tmp_path / "cache").read_text())["test"] == "images/test-dev"


def test_coco_minival_is_carved_out_of_train2017_and_val2017_is_the_test_split(tmp_path):
    """Selection on a seeded carve-out of train2017 that training never sees; reporting on val2017."""
    from ultralytics.data.utils import check_det_dataset

    from src.data.formats.coco import convert_coco
    from tests.test_convert import make_coco_fixture

    root = tmp_path / "coco"
    for split in ("train2017", "val2017"):
        js, images_dir = make_coco_fixture(tmp_path / "src", split=split)
        convert_coco(js, images_dir, root, log=lambda *a: None)
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / "coco.yaml"))
    cfg.update(root=str(root), minival=True, minival_size=1)
    data = yaml.safe_load(prepare(cfg, tmp_path / "cache").read_text())
    train, minival = (Path(data[k]).read_text().splitlines() for k in ("train", "val"))
    every = sorted(str(p) for p in (root / "images" / "train2017").resolve().iterdir())
    assert len(minival) == 1 and sorted(train + minival) == every  # disjoint, nothing lost
    assert data["test"] == "images/val2017"
    again = yaml.safe_load(prepare(cfg, tmp_path / "other-cache").read_text())
    assert Path(again["val"]).read_text().splitlines() == minival  # the same carve-out anywhere
    assert len(check_det_dataset(str(prepare(cfg, tmp_path / "cache")))["val"]) > 0  # ultralytics reads it
    with pytest.raises(ValueError, match="minival_size=3 leaves no training image"):
        prepare({**cfg, "minival_size": 3}, tmp_path / "cache")
    plain = yaml.safe_load(prepare({**cfg, "minival": False}, tmp_path / "cache").read_text())
    assert (plain["train"], plain["val"], plain["test"]) == ("images/train2017", "images/val2017", "images/val2017")


@pytest.mark.parametrize(
    "name, n, imgsz, splits",
    [
        ("coco", 80, 640, ("train2017", "val2017")),
        ("visdrone", 10, 1024, ("train", "val")),
    ],
)
def test_dataset_configs(monkeypatch, name, n, imgsz, splits):
    monkeypatch.setenv("DATASETS_DIR", "/data/sets")
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / f"{name}.yaml"), resolve=True)
    assert cfg["name"] == name and cfg["kind"] == "yolo" and cfg["make_target"] == f"data-{name}"
    assert len(cfg["names"]) == n and len(set(cfg["names"])) == n and cfg["imgsz"] == imgsz
    assert (cfg["train_split"], cfg["val_split"]) == splits
    assert cfg["root"] == f"/data/sets/{'coco' if name == 'coco' else 'VisDrone'}"
    assert cfg["fraction"] == 1.0 and cfg["max_images"] is None
    assert {"epochs", "batch"} <= set(cfg)
    monkeypatch.delenv("DATASETS_DIR")
    root = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / f"{name}.yaml"), resolve=True)["root"]
    assert root.startswith("datasets/")


def test_coco_names_are_the_standard_order():
    ours = OmegaConf.load(ROOT / "conf" / "dataset" / "coco.yaml").names
    import ultralytics

    ref = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    assert list(ours) == [ref[i] for i in range(80)]
    assert list(OmegaConf.load(ROOT / "conf" / "dataset" / "visdrone.yaml").names) == VISDRONE_NAMES


@pytest.mark.parametrize("name", sorted(registry()))
def test_each_native_format_matches_its_config(monkeypatch, name):
    """A format's facts that its conf/dataset/<name>.yaml repeats for Hydra (class names, make target,
    root folder, split names) are the format module's: the config may not drift from it."""
    fmt = registry()[name]
    monkeypatch.setenv("DATASETS_DIR", "/data/sets")
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / f"{name}.yaml"), resolve=True)
    assert cfg["name"] == name and cfg["kind"] == "yolo" and cfg["make_target"] == fmt.make_target
    assert cfg["root"] == f"/data/sets/{fmt.folder}"
    assert {cfg["train_split"], cfg["val_split"]} <= set(fmt.splits)
    if fmt.names is not None:  # else the names come from the annotation files (COCO: tested above)
        assert list(cfg["names"]) == list(fmt.names)
    by_name = {a.name for a in fmt.archives}
    assert all(set(needs) <= by_name for needs in fmt.splits.values())
