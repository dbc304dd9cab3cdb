"""The native formats (VisDrone, COCO -> YOLO layout), the layout's safety, and fetch, on tiny fixtures built here.

`make_visdrone_fixture` / `make_coco_fixture` are reusable by other tests (e.g. a 1-epoch training
on a converted VisDrone split): they write real native-format splits with drawn boxes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageDraw

from src.data import fetch, formats, yolo_layout
from src.data.archives import check_reachable
from src.data.formats import visdrone
from src.data.formats.coco import convert_coco
from src.data.formats.visdrone import convert_visdrone
from src.data.yolo_layout import is_split_complete

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------- fixtures


def write_image(path: Path, size: tuple[int, int], boxes=(), seed: int = 0) -> Path:
    """A small image (JPEG or PNG by suffix) with the given (x, y, w, h, class) boxes drawn filled."""
    rng = random.Random(seed)
    im = Image.new("RGB", size, tuple(rng.randrange(40, 90) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for x, y, w, h, cls in boxes:
        color = ((cls * 70) % 256, (cls * 130 + 60) % 256, (cls * 30 + 120) % 256)
        draw.rectangle([x, y, x + max(w, 1) - 1, y + max(h, 1) - 1], fill=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=90) if path.suffix.lower() in (".jpg", ".jpeg") else im.save(path)
    return path


def write_visdrone_split(root: Path, split: str, images: dict[str, tuple[tuple[int, int], list[str] | None]]) -> Path:
    """root/VisDrone2019-DET-<split>/{images,annotations}: {stem: ((w, h), annotation rows or None = no file)}."""
    split_dir = Path(root) / f"VisDrone2019-DET-{split}"
    for stem, (size, rows) in images.items():
        boxes = []
        for r in rows or []:
            p = r.rstrip(",").split(",")
            if len(p) >= 6 and p[4] != "0" and p[5] not in ("0", "11"):
                boxes.append((int(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[5])))
        write_image(split_dir / "images" / f"{stem}.jpg", size, boxes, seed=len(stem))
        if rows is not None:
            ann = split_dir / "annotations" / f"{stem}.txt"
            ann.parent.mkdir(parents=True, exist_ok=True)
            ann.write_text("".join(f"{r}\n" for r in rows))
    (split_dir / "annotations").mkdir(parents=True, exist_ok=True)
    return split_dir


def make_visdrone_fixture(
    root: Path, n_images: int = 8, split: str = "train", size: tuple[int, int] = (160, 120), seed: int = 0
) -> Path:
    """A VisDrone2019-DET-<split> folder of `n_images` JPEGs with 4-6 drawn objects each (all 10 classes
    appear when n_images >= 4), plus an ignored region, an 'others' box and a box crossing the border on
    every image; the last image has only ignored rows (a background image). Returns the split folder."""
    rng = random.Random(seed)
    w, h = size
    images = {}
    n_boxes = 0
    for i in range(n_images):
        rows = []
        if i < n_images - 1 or n_images == 1:
            for _ in range(rng.randint(3, 5)):
                bw, bh = rng.randint(w // 10, w // 4), rng.randint(h // 10, h // 4)
                x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
                rows.append(f"{x},{y},{bw},{bh},1,{n_boxes % 10 + 1},0,0")
                n_boxes += 1
            rows.append(f"{w - 10},{h // 2},30,20,1,{n_boxes % 10 + 1},1,0")  # crosses the right border
            n_boxes += 1
        rows.append(f"0,0,{w // 5},{h // 5},0,0,0,0")  # ignored region
        rows.append(f"{w // 2},{h // 2},8,8,1,11,0,0")  # others
        images[f"{i:07d}_00000_d_{i:07d}"] = ((w, h), rows)
    return write_visdrone_split(root, split, images)


def make_coco_fixture(root: Path, split: str = "val2017", size: tuple[int, int] = (120, 80)) -> tuple[Path, Path]:
    """annotations/instances_<split>.json + <split>/ images; category ids with gaps, listed out of order
    (ids 1 cat, 3 dog, 7 bird -> classes 0, 1, 2), a crowd box, an unknown category, boxes crossing the
    border, a zero-area box, an image without annotations, and an image missing on disk."""
    w, h = size
    images_dir = Path(root) / split
    anns = [
        # image 1: a valid box, a crowd box, an unknown category, a box crossing the border
        dict(id=10, image_id=1, category_id=3, bbox=[12, 8, 24, 16], iscrowd=0),
        dict(id=11, image_id=1, category_id=1, bbox=[0, 0, 50, 50], iscrowd=1),
        dict(id=12, image_id=1, category_id=99, bbox=[5, 5, 10, 10], iscrowd=0),
        dict(id=13, image_id=1, category_id=7, bbox=[100, 60, 40, 40], iscrowd=0),
        # image 2: zero-area boxes (outside, zero width), one valid box hanging over the top-left corner
        dict(id=20, image_id=2, category_id=1, bbox=[130, 10, 10, 10], iscrowd=0),
        dict(id=21, image_id=2, category_id=1, bbox=[30, 30, 0, 10], iscrowd=0),
        dict(id=22, image_id=2, category_id=1, bbox=[-6, -4, 18, 12], iscrowd=0),
        # image 4 is listed but missing on disk; image 9 does not exist at all
        dict(id=40, image_id=4, category_id=1, bbox=[1, 1, 5, 5], iscrowd=0),
        dict(id=90, image_id=9, category_id=1, bbox=[1, 1, 5, 5], iscrowd=0),
    ]
    imgs = [dict(id=i, file_name=f"{i:012d}.jpg", width=w, height=h) for i in (1, 2, 3, 4)]
    for im in imgs[:3]:
        boxes = [(*a["bbox"], 1) for a in anns if a["image_id"] == im["id"]]
        write_image(images_dir / im["file_name"], size, [tuple(int(v) for v in b) for b in boxes], seed=im["id"])
    cats = [
        dict(id=7, name="bird", supercategory="animal"),
        dict(id=1, name="cat", supercategory="animal"),
        dict(id=3, name="dog", supercategory="animal"),
    ]
    js = Path(root) / "annotations" / f"instances_{split}.json"
    js.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return js, images_dir


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), temp dirs included so leftovers show up."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def labels(out: Path, split: str, stem: str) -> list[str]:
    return (out / "labels" / split / f"{stem}.txt").read_text().splitlines()


quiet = dict(log=lambda *a: None)


# --------------------------------------------------------------------------------------------- VisDrone

VIS_ROWS = [
    "10,10,20,10,1,1,0,0",  # pedestrian -> 0 0.200000 0.300000 0.200000 0.200000
    "0,0,30,30,0,0,0,0",  # ignored region
    "5,5,10,10,1,0,0,0",  # ignored category (score 1, category 0)
    "5,5,10,10,1,11,0,0",  # others
    "90,40,20,20,1,4,1,0",  # car crossing the bottom-right border -> x 90..100, y 40..50
    "-10,-5,20,10,1,10,0,0",  # motor crossing the top-left border -> x 0..10, y 0..5
    "100,10,5,5,1,2,0,0",  # starts at the right edge: zero area
    "10,10,0,5,1,2,0,0",  # zero width
    "1,2,3",  # malformed
    "50,20,10,10,1,10,0,0,",  # trailing comma, valid motor
    "20,20,4,4,1,12,0,0",  # unknown category id
]


def test_visdrone_rules(tmp_path):
    split_dir = write_visdrone_split(
        tmp_path / "src",
        "val",
        {
            "a": ((100, 50), VIS_ROWS),
            "b": ((64, 48), None),  # no annotation file: background
            "c": ((64, 48), ["0,0,10,10,0,0,0,0"]),  # only an ignored region: background
        },
    )
    out = tmp_path / "VisDrone"
    s = convert_visdrone(split_dir, out, **quiet)
    assert s.split == "val"  # from the folder name
    assert labels(out, "val", "a") == [
        "0 0.200000 0.300000 0.200000 0.200000",
        "3 0.950000 0.900000 0.100000 0.200000",
        "9 0.050000 0.050000 0.100000 0.100000",
        "9 0.550000 0.500000 0.100000 0.200000",
    ]
    assert labels(out, "val", "b") == [] and labels(out, "val", "c") == []
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    assert (s.images, s.background, s.boxes) == (3, 2, 4)
    assert dict(s.dropped) == {
        "ignored_region": 2,
        "ignored_category": 1,
        "others_category": 1,
        "zero_area": 2,
        "malformed": 1,
        "unknown_category": 1,
    }
    assert dict(s.per_class) == {0: 1, 3: 1, 9: 2}
    assert is_split_complete(out, "val")
    assert not (out / "data.yaml").exists()  # no train split yet


def test_visdrone_split_names_and_data_yaml(tmp_path, capsys):
    src = tmp_path / "src"
    out = tmp_path / "VisDrone"
    for split in ("train", "val", "test-dev"):
        convert_visdrone(make_visdrone_fixture(src, n_images=3, split=split), out)
    summary = capsys.readouterr().out
    assert "visdrone test-dev: 3 images (1 without boxes)" in summary
    assert "ignored region (score 0) 3" in summary and "'others' category (11) 3" in summary
    for split in ("train", "val", "test-dev"):
        assert is_split_complete(out, split)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test-dev",
        "names": dict(enumerate(visdrone.VISDRONE_NAMES)),
    }
    assert visdrone.visdrone_split_name(Path("x/VisDrone2019-DET-test-dev")) == "test-dev"
    with pytest.raises(yolo_layout.ConversionError, match="--split"):
        visdrone.visdrone_split_name(Path("x/some-folder"))


def test_visdrone_fixture_border_boxes_are_clipped(tmp_path):
    out = tmp_path / "out"
    s = convert_visdrone(make_visdrone_fixture(tmp_path / "src", n_images=4), out, **quiet)
    assert s.images == 4 and s.background == 1 and s.dropped["ignored_region"] == 4
    for f in (out / "labels" / "train").iterdir():
        for line in f.read_text().splitlines():
            _, cx, cy, w, h = map(float, line.split())
            eps = 1e-6
            assert -eps <= cx - w / 2 and cx + w / 2 <= 1 + eps and -eps <= cy - h / 2 and cy + h / 2 <= 1 + eps
    assert len(s.per_class) == 10


# --------------------------------------------------------------------------------------------- COCO


def test_coco_rules(tmp_path):
    js, images_dir = make_coco_fixture(tmp_path / "coco_src")
    out = tmp_path / "coco"
    s = convert_coco(js, images_dir, out, **quiet)
    assert s.split == "val2017"  # from the json name
    # categories sorted by id: 1 cat -> 0, 3 dog -> 1, 7 bird -> 2
    assert labels(out, "val2017", "000000000001") == [
        "1 0.200000 0.200000 0.200000 0.200000",
        "2 0.916667 0.875000 0.166667 0.250000",  # clipped to x 100..120, y 60..80
    ]
    assert labels(out, "val2017", "000000000002") == ["0 0.050000 0.050000 0.100000 0.100000"]
    assert labels(out, "val2017", "000000000003") == []  # no annotation: background image
    assert not (out / "labels" / "val2017" / "000000000004.txt").exists()  # image missing on disk
    assert (s.images, s.background, s.boxes) == (3, 1, 3)
    assert dict(s.dropped) == {
        "crowd": 1,
        "unknown_category": 1,
        "zero_area": 2,
        "missing_image": 1,
        "unknown_image": 1,
    }
    marker = json.loads(yolo_layout.marker_path(out, "val2017").read_text())
    assert marker["names"] == ["cat", "dog", "bird"]


def test_coco_cli_and_data_yaml(tmp_path):
    out = tmp_path / "coco"
    for split in ("val2017", "train2017"):
        js, images_dir = make_coco_fixture(tmp_path / "src", split=split)
        r = subprocess.run(
            [sys.executable, "-m", "src.data.convert", "coco", str(js), str(images_dir), str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert f"coco {split}: 3 images (1 without boxes), 3 boxes" in r.stdout
        assert "crowd (iscrowd=1) 1" in r.stdout and "zero area after clipping 2" in r.stdout
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images/train2017",
        "val": "images/val2017",
        "names": {0: "cat", 1: "dog", 2: "bird"},
    }
    r = subprocess.run(
        [sys.executable, "-m", "src.data.convert", "coco", str(tmp_path / "nope.json"), str(tmp_path), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "nope.json not found" in r.stderr


def test_coco_wrong_images_dir_fails_without_a_split(tmp_path):
    js, _ = make_coco_fixture(tmp_path / "src")
    (tmp_path / "empty").mkdir()
    with pytest.raises(yolo_layout.ConversionError, match="none of the 4 images"):
        convert_coco(js, tmp_path / "empty", tmp_path / "out", **quiet)
    assert not is_split_complete(tmp_path / "out", "val2017")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # temp dir removed


# --------------------------------------------------------------------------------------------- safety


def test_rerun_is_identical(tmp_path):
    split_dir = make_visdrone_fixture(tmp_path / "src", n_images=4, split="val")
    out = tmp_path / "out"
    convert_visdrone(split_dir, out, **quiet)
    first = snapshot(out)
    convert_visdrone(split_dir, out, **quiet)
    assert snapshot(out) == first
    js, images_dir = make_coco_fixture(tmp_path / "coco_src")
    convert_coco(js, images_dir, tmp_path / "coco", **quiet)
    first = snapshot(tmp_path / "coco")
    convert_coco(js, images_dir, tmp_path / "coco", **quiet)
    assert snapshot(tmp_path / "coco") == first


def _fail_on_call(monkeypatch, n: int):
    real = yolo_layout.link_file
    calls = {"n": 0}

    def flaky(src, dst, mode="auto"):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("simulated interruption")
        return real(src, dst, mode)

    monkeypatch.setattr(yolo_layout, "link_file", flaky)


def test_interrupted_conversion_never_looks_complete(tmp_path, monkeypatch):
    from src.data.yolo_dataset import DatasetNotFoundError, prepare

    split_dir = make_visdrone_fixture(tmp_path / "src", n_images=4, split="val")
    clean = tmp_path / "clean"
    convert_visdrone(split_dir, clean, **quiet)
    out = tmp_path / "out"
    _fail_on_call(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        convert_visdrone(split_dir, out, **quiet)
    assert not is_split_complete(out, "val")
    assert not (out / "images" / "val").exists() and not yolo_layout.marker_path(out, "val").exists()
    assert not list(out.glob(".tmp.*"))  # cleaned up on the way out
    cfg = {
        "name": "visdrone",
        "root": str(out),
        "train_split": "val",
        "val_split": "val",
        "names": visdrone.VISDRONE_NAMES,
        "make_target": "data-visdrone",
    }
    with pytest.raises(DatasetNotFoundError):
        prepare(cfg, tmp_path / "cache")
    monkeypatch.undo()
    convert_visdrone(split_dir, out, **quiet)
    assert snapshot(out) == snapshot(clean)
    prepare(cfg, tmp_path / "cache")


def test_interrupted_reconversion_keeps_the_complete_split(tmp_path, monkeypatch):
    split_dir = make_visdrone_fixture(tmp_path / "src", n_images=4, split="val")
    out = tmp_path / "out"
    convert_visdrone(split_dir, out, **quiet)
    before = snapshot(out)
    _fail_on_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        convert_visdrone(split_dir, out, **quiet)
    assert is_split_complete(out, "val") and snapshot(out) == before


def test_interrupted_swap_is_not_complete_and_rerun_repairs(tmp_path, monkeypatch):
    split_dir = make_visdrone_fixture(tmp_path / "src", n_images=3, split="val")
    out = tmp_path / "out"
    convert_visdrone(split_dir, out, **quiet)
    before = snapshot(out)
    real = yolo_layout.SplitBuilder._swap_in

    def swap_then_die(self, kind):
        real(self, kind)
        if kind == "images":
            raise SystemExit("killed between the two renames")

    monkeypatch.setattr(yolo_layout.SplitBuilder, "_swap_in", swap_then_die)
    with pytest.raises(SystemExit):
        convert_visdrone(split_dir, out, **quiet)
    assert not is_split_complete(out, "val")
    assert "interrupted" in yolo_layout.split_problem(out, "val")
    monkeypatch.undo()
    convert_visdrone(split_dir, out, **quiet)
    assert snapshot(out) == before


def test_stale_temp_dir_of_a_killed_run_is_removed(tmp_path):
    split_dir = make_visdrone_fixture(tmp_path / "src", n_images=2, split="val")
    out = tmp_path / "out"
    (out / ".tmp.val.abc123" / "images").mkdir(parents=True)  # as left by kill -9
    (out / ".tmp.val-x.abc123").mkdir()  # another split's: not ours to remove
    convert_visdrone(split_dir, out, **quiet)
    assert not (out / ".tmp.val.abc123").exists() and (out / ".tmp.val-x.abc123").exists()


def test_images_are_linked_not_reencoded(tmp_path, monkeypatch):
    split_dir = make_visdrone_fixture(tmp_path / "src", n_images=2, split="val")
    src = sorted((split_dir / "images").iterdir())[0]
    s = convert_visdrone(split_dir, tmp_path / "hard", **quiet)
    assert s.linked == {"hardlink": 2}
    assert (tmp_path / "hard" / "images" / "val" / src.name).stat().st_ino == src.stat().st_ino
    convert_visdrone(split_dir, tmp_path / "copy", link="copy", **quiet)
    dst = tmp_path / "copy" / "images" / "val" / src.name
    assert dst.read_bytes() == src.read_bytes() and dst.stat().st_ino != src.stat().st_ino

    def no_hardlinks(*a, **k):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_hardlinks)
    s = convert_visdrone(split_dir, tmp_path / "sym", **quiet)
    assert s.linked == {"symlink": 2}
    assert (tmp_path / "sym" / "images" / "val" / src.name).resolve() == src.resolve()
    s = convert_visdrone(split_dir, tmp_path / "hc", link="hardlink", **quiet)
    assert s.linked == {"copy": 2}


def test_written_files_are_readable_as_any_new_file(tmp_path):
    """data.yaml and the markers get the umask's mode (0o644 under umask 022), not a temp file's 0o600."""
    umask = os.umask(0o022)
    try:
        out = tmp_path / "out"
        for split in ("train", "val"):
            convert_visdrone(make_visdrone_fixture(tmp_path / "src", n_images=1, split=split), out, **quiet)
    finally:
        os.umask(umask)
    for path in (out / "data.yaml", yolo_layout.marker_path(out, "val")):
        assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------------------------- fetch


def _zip_dir(folder: Path, zip_path: Path, arc_root: Path) -> Path:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(arc_root))
    return zip_path


def test_fetch_visdrone_from_archives(tmp_path, capsys):
    from src.data.yolo_dataset import prepare

    src, archives = tmp_path / "native", tmp_path / "archives"
    for split in ("train", "val"):
        d = make_visdrone_fixture(src, n_images=3, split=split)
        _zip_dir(d, archives / f"VisDrone2019-DET-{split}.zip", src)
    root = tmp_path / "datasets" / "VisDrone"
    assert fetch.main(["visdrone", "--root", str(root), "--archives", str(archives)]) == 0
    assert "ready:" in capsys.readouterr().out
    assert is_split_complete(root, "train") and is_split_complete(root, "val")
    assert not (root / ".fetch").exists()
    cfg = yaml.safe_load((ROOT / "conf" / "dataset" / "visdrone.yaml").read_text())
    cfg["root"] = str(root)
    assert yaml.safe_load(prepare(cfg, tmp_path / "cache").read_text())["path"] == str(root.resolve())
    # a second run has nothing to do
    assert fetch.main(["visdrone", "--root", str(root), "--archives", str(archives)]) == 0
    assert "already complete" in capsys.readouterr().out


def test_fetch_coco_from_archives(tmp_path):
    src, archives = tmp_path / "native", tmp_path / "archives"
    for split in ("train2017", "val2017"):
        js, images_dir = make_coco_fixture(src, split=split)
        _zip_dir(images_dir, archives / f"{split}.zip", src)
    _zip_dir(src / "annotations", archives / "annotations_trainval2017.zip", src)
    root = tmp_path / "coco"
    data_yaml = fetch.fetch("coco", root, archives, **quiet)
    assert data_yaml == root.resolve() / "data.yaml"
    assert len(list((root / "images" / "train2017").iterdir())) == 3
    assert not (root / ".fetch").exists()


def test_fetch_with_missing_archives_says_what_to_put_where(tmp_path):
    (tmp_path / "archives").mkdir()
    with pytest.raises(fetch.FetchError) as e:
        fetch.fetch("visdrone", tmp_path / "VisDrone", tmp_path / "archives", **quiet)
    msg = str(e.value)
    assert "VisDrone2019-DET-train.zip" in msg and "VisDrone2019-DET-val.zip" in msg
    assert "make data-visdrone ARCHIVES=DIR" in msg


@pytest.fixture
def closed_port_urls(monkeypatch):
    """Every archive URL points at a closed port on localhost: no real network is touched."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, fmt in list(formats.registry().items()):
        local = tuple(dataclasses.replace(a, url=f"http://127.0.0.1:{port}/{a.name}") for a in fmt.archives)
        monkeypatch.setitem(formats.registry(), name, dataclasses.replace(fmt, archives=local))
    return port


@pytest.mark.parametrize(
    "name, target, files",
    [
        ("visdrone", "data-visdrone", ["VisDrone2019-DET-train.zip", "VisDrone2019-DET-val.zip"]),
        ("coco", "data-coco", ["train2017.zip", "val2017.zip", "annotations_trainval2017.zip"]),
    ],
)
def test_fetch_without_network_fails_fast_with_instructions(tmp_path, capsys, closed_port_urls, name, target, files):
    started = time.perf_counter()
    rc = fetch.main([name, "--root", str(tmp_path / name)])
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert rc == 2
    assert f"cannot reach 127.0.0.1:{closed_port_urls}" in err
    assert f"make {target} ARCHIVES=DIR" in err
    for f in files:
        assert f in err
    assert not (tmp_path / name).exists()  # nothing written


def test_unresolvable_host_times_out(monkeypatch):
    def hang(*a, **k):
        time.sleep(30)

    monkeypatch.setattr(socket, "create_connection", hang)
    started = time.perf_counter()
    with pytest.raises(fetch.FetchError, match="within 0.2 s"):
        check_reachable("http://example.invalid/x.zip", timeout=0.2)
    assert time.perf_counter() - started < 2


def test_fetch_downloads_from_a_local_server(tmp_path, monkeypatch, capsys):
    """The download path end to end, against an HTTP server on localhost (never the real internet)."""
    import functools
    import http.server
    import threading

    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    src, served = tmp_path / "native", tmp_path / "served"
    for split in ("train", "val"):
        _zip_dir(make_visdrone_fixture(src, n_images=2, split=split), served / f"VisDrone2019-DET-{split}.zip", src)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        fmt = formats.registry()["visdrone"]
        local = tuple(dataclasses.replace(a, url=f"{base}/{a.name}") for a in fmt.archives)
        monkeypatch.setitem(formats.registry(), "visdrone", dataclasses.replace(fmt, archives=local))
        root = tmp_path / "VisDrone"
        assert fetch.main(["visdrone", "--root", str(root)]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert "downloading" in capsys.readouterr().out
    assert is_split_complete(root, "train") and is_split_complete(root, "val") and (root / "data.yaml").is_file()
    assert not (root / ".fetch").exists()  # downloads removed after a successful conversion
