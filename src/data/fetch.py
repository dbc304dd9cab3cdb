"""Get COCO 2017 or VisDrone2019-DET ready in YOLO layout: official archives -> extract -> convert.

    python -m src.data.fetch visdrone|coco [--root DIR] [--archives DIR] [--force] [--keep-archives]

--root is the dataset root (default $DATASETS_DIR/VisDrone or $DATASETS_DIR/coco, DATASETS_DIR
defaulting to ./datasets), the same folder as the `dataset.root` of conf/dataset/<name>.yaml.
With --archives DIR the zip files already in DIR (official names, below) are used and nothing
is downloaded. Without it they are downloaded, after checking within seconds that their host can
be reached; when it cannot, the command fails at once and says which files to put where by hand.

Archives are extracted into ROOT/.fetch/ (same file system, so images are hardlinked into place),
converted by src.data.convert, and the temp area is removed at the end. Splits already complete
are skipped unless --force.

Sources
- COCO 2017 (https://cocodataset.org/#download): http://images.cocodataset.org/zips/train2017.zip
  (18 GB, 118,287 images), .../zips/val2017.zip (0.8 GB, 5,000 images),
  http://images.cocodataset.org/annotations/annotations_trainval2017.zip (0.24 GB).
- VisDrone2019-DET: the official links are Google Drive / Baidu pages listed at
  https://github.com/VisDrone/VisDrone-Dataset (trainset 1.44 GB, valset 0.07 GB, test-dev 0.28 GB),
  not scriptable; the same zips are mirrored by ultralytics (cfg/datasets/VisDrone.yaml) at
  https://github.com/ultralytics/assets/releases/download/v0.0.0/VisDrone2019-DET-{train,val,test-dev}.zip,
  which is what is downloaded here.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from src.data import convert

CONNECT_TIMEOUT = 5.0   # seconds to reach a host before giving up
READ_TIMEOUT = 60.0     # seconds without data during a download
ULTRALYTICS_ASSETS = "https://github.com/ultralytics/assets/releases/download/v0.0.0"
COCO_IMAGES = "http://images.cocodataset.org"


@dataclass(frozen=True)
class Archive:
    name: str          # official file name, looked for in --archives DIR
    url: str
    size: str          # for the messages
    required: bool = True


@dataclass(frozen=True)
class Source:
    folder: str        # default root: $DATASETS_DIR/<folder>
    make_target: str
    archives: tuple[Archive, ...]
    page: str


SOURCES: dict[str, Source] = {
    "visdrone": Source(
        folder="VisDrone", make_target="data-visdrone", page="https://github.com/VisDrone/VisDrone-Dataset",
        archives=(
            Archive("VisDrone2019-DET-train.zip", f"{ULTRALYTICS_ASSETS}/VisDrone2019-DET-train.zip", "1.4 GB"),
            Archive("VisDrone2019-DET-val.zip", f"{ULTRALYTICS_ASSETS}/VisDrone2019-DET-val.zip", "0.08 GB"),
            # optional: converted when present in --archives, not downloaded
            Archive("VisDrone2019-DET-test-dev.zip", f"{ULTRALYTICS_ASSETS}/VisDrone2019-DET-test-dev.zip",
                    "0.3 GB", required=False),
        )),
    "coco": Source(
        folder="coco", make_target="data-coco", page="https://cocodataset.org/#download",
        archives=(
            Archive("annotations_trainval2017.zip", f"{COCO_IMAGES}/annotations/annotations_trainval2017.zip",
                    "0.24 GB"),
            Archive("val2017.zip", f"{COCO_IMAGES}/zips/val2017.zip", "0.8 GB"),
            Archive("train2017.zip", f"{COCO_IMAGES}/zips/train2017.zip", "18 GB"),
        )),
}


class FetchError(RuntimeError):
    """Archives missing or unreachable; the message says what to do by hand."""


def default_root(name: str) -> Path:
    return Path(os.environ.get("DATASETS_DIR") or "datasets") / SOURCES[name].folder


def manual_instructions(name: str, root: Path) -> str:
    src = SOURCES[name]
    lines = [f"Download these archives by hand (from {src.page} or the URLs below) into one folder DIR:"]
    width = max(len(a.name) for a in src.archives)
    for a in src.archives:
        lines.append(f"  {a.name:<{width}}  {a.size:>7}  {a.url}{'' if a.required else '  (optional)'}")
    lines += ["then run:",
              f"  make {src.make_target} ARCHIVES=DIR",
              f"  (or: python -m src.data.fetch {name} --root {root} --archives DIR)"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- network

def _endpoint(url: str) -> tuple[str, int]:
    """host, port to connect to for `url` (its proxy when one is configured)."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname or "", p.port or 80
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise FetchError unless a TCP connection to the url's host (DNS included) succeeds within `timeout`."""
    host, port = _endpoint(url)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except BaseException as exc:  # reported to the caller below
            outcome.append(exc)

    t = threading.Thread(target=attempt, daemon=True)  # getaddrinfo has no timeout of its own
    t.start()
    t.join(timeout + 0.5)
    if not outcome:
        raise FetchError(f"cannot reach {host}:{port} within {timeout:g} s (no network?)")
    if outcome[0] is not None:
        raise FetchError(f"cannot reach {host}:{port}: {outcome[0]} (no network?)")


def download(url: str, dest: Path, log: Callable[[str], None] = print,
             connect_timeout: float = CONNECT_TIMEOUT) -> Path:
    """Stream `url` to `dest` (via dest.part, renamed when the size matches). An existing `dest` is reused."""
    if dest.is_file():
        log(f"  {dest.name}: already downloaded")
        return dest
    check_reachable(url, connect_timeout)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as resp, open(part, "wb") as f:
        total = int(resp.headers.get("Content-Length") or 0)
        done, step, last = 0, max(total // 20, 1 << 26), 0
        while chunk := resp.read(1 << 20):
            f.write(chunk)
            done += len(chunk)
            if done - last >= step:
                last = done
                log(f"  {dest.name}: {done / 1e9:.2f}" + (f" / {total / 1e9:.2f} GB" if total else " GB"))
    if total and part.stat().st_size != total:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: download incomplete ({done} of {total} bytes); run again")
    os.replace(part, dest)
    return dest


# --------------------------------------------------------------------------------------------- extraction

def extract(zip_path: Path, dest: Path, members: Callable[[str], bool] | None = None) -> Path:
    """Extract (a selection of) `zip_path` into `dest` (zipfile drops absolute paths and '..')."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = [n for n in zf.namelist() if members is None or members(n)]
            zf.extractall(dest, names)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{zip_path} is not a valid zip ({exc}); delete it and get it again") from None
    return dest


def _candidates(base: Path, name: str, *first: Path):
    """`first`, then every path named `name` below `base` (walked only when needed)."""
    yield from first
    yield from sorted(base.rglob(name))


def _find_split_dir(base: Path, folder: str) -> Path:
    """The `folder` (e.g. VisDrone2019-DET-val) holding images/ and annotations/, wherever the zip put it."""
    for cand in _candidates(base, "annotations", base / folder / "annotations"):
        if cand.is_dir() and (cand.parent / "images").is_dir():
            return cand.parent
    raise FetchError(f"no images/ + annotations/ folder found in the extracted {folder}.zip under {base}")


def _find_dir(base: Path, folder: str) -> Path:
    for cand in _candidates(base, folder, base / folder):
        if cand.is_dir():
            return cand
    raise FetchError(f"no {folder}/ folder in the extracted archive under {base}")


def _find_file(base: Path, name: str) -> Path:
    for cand in _candidates(base, name, base / "annotations" / name):
        if cand.is_file():
            return cand
    raise FetchError(f"{name} not found in the extracted annotations archive under {base}")


# --------------------------------------------------------------------------------------------- main

def _needs(name: str, split: str) -> list[str]:
    """Archive names a split is made from."""
    if name == "visdrone":
        return [f"VisDrone2019-DET-{split}.zip"]
    return ["annotations_trainval2017.zip", f"{split}.zip"]


def _plan(name: str) -> list[str]:
    """Splits in conversion order (the small val split first: a bad archive shows up early)."""
    return ["val", "train", "test-dev"] if name == "visdrone" else ["val2017", "train2017"]


def _locate_archives(name: str, root: Path, todo: list[str], archives: Path | None,
                     log: Callable[[str], None]) -> dict[str, Path]:
    """archive name -> local zip, for the splits in `todo` (optional archives only when given)."""
    src = SOURCES[name]
    by_name = {a.name: a for a in src.archives}
    needed = list(dict.fromkeys(n for split in todo for n in _needs(name, split)))
    if archives is not None:
        archives = Path(archives)
        missing = [n for n in needed if by_name[n].required and not (archives / n).is_file()]
        if missing:
            raise FetchError(f"missing in {archives.resolve()}: {', '.join(missing)}\n"
                             + manual_instructions(name, root))
        return {n: archives / n for n in needed if (archives / n).is_file()}
    downloads = root / ".fetch" / "downloads"
    wanted = [by_name[n] for n in needed if by_name[n].required]
    remote = [a for a in wanted if not (downloads / a.name).is_file()]  # others: left by an earlier run
    for url in {_endpoint(a.url): a.url for a in remote}.values():  # fail fast, once per host
        try:
            check_reachable(url)
        except FetchError as exc:
            raise FetchError(f"{exc}\n{manual_instructions(name, root)}") from None
    found = {}
    for a in wanted:
        log(f"downloading {a.url} ({a.size})")
        try:
            found[a.name] = download(a.url, downloads / a.name, log)
        except (OSError, FetchError) as exc:
            raise FetchError(f"downloading {a.url} failed: {exc}\n{manual_instructions(name, root)}") from None
    return found


def fetch(name: str, root: Path | None = None, archives: Path | None = None, *, force: bool = False,
          keep_archives: bool = False, log: Callable[[str], None] = print) -> Path | None:
    """Get dataset `name` ready under `root`; returns ROOT/data.yaml (None if train or val is still missing)."""
    if name not in SOURCES:
        raise FetchError(f"unknown dataset {name!r}; valid choices: {', '.join(SOURCES)}")
    root = Path(root or default_root(name)).resolve()
    by_name = {a.name: a for a in SOURCES[name].archives}
    todo = []
    for split in _plan(name):
        optional = not all(by_name[n].required for n in _needs(name, split))
        if not force and convert.is_split_complete(root, split):
            log(f"{name} {split}: already complete in {root} (--force to redo)")
        elif optional and (archives is None or not all((Path(archives) / n).is_file() for n in _needs(name, split))):
            continue  # optional split: converted only when its archive is given
        else:
            todo.append(split)
    if todo:
        found = _locate_archives(name, root, todo, archives, log)  # fails before anything is written
        work = root / ".fetch" / "extract"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            for split in todo:
                _convert_split(name, split, found, work, root, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if archives is None and not keep_archives:
            shutil.rmtree(root / ".fetch", ignore_errors=True)
        else:
            try:
                (root / ".fetch").rmdir()  # only when empty
            except OSError:
                pass
    return convert.write_data_yaml(root, log)


def _convert_split(name: str, split: str, found: dict[str, Path], work: Path, root: Path,
                   log: Callable[[str], None]) -> None:
    started = time.perf_counter()
    if name == "visdrone":
        zip_path = found[_needs(name, split)[0]]
        log(f"extracting {zip_path}")
        base = extract(zip_path, work / split)
        split_dir = _find_split_dir(base, f"VisDrone2019-DET-{split}")
        log(f"  extracted in {time.perf_counter() - started:.0f} s; converting")
        convert.convert_visdrone(split_dir, root, split, link="hardlink", log=log)
    else:
        ann_zip, img_zip = (found[n] for n in _needs(name, split))
        json_name = f"instances_{split}.json"
        log(f"extracting {json_name} from {ann_zip}, and {img_zip}")
        ann = extract(ann_zip, work / f"annotations-{split}", lambda n: Path(n).name == json_name)
        base = extract(img_zip, work / split)
        log(f"  extracted in {time.perf_counter() - started:.0f} s; converting")
        convert.convert_coco(_find_file(ann, json_name), _find_dir(base, split), root, split,
                             link="hardlink", log=log)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.data.fetch", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=sorted(SOURCES))
    p.add_argument("--root", type=Path, default=None,
                   help="dataset root (default $DATASETS_DIR/VisDrone or $DATASETS_DIR/coco, DATASETS_DIR=datasets)")
    p.add_argument("--archives", type=Path, default=None,
                   help="folder holding the official zip files already downloaded; nothing is downloaded")
    p.add_argument("--force", action="store_true", help="convert again splits that are already complete")
    p.add_argument("--keep-archives", action="store_true", help="keep downloaded zips in ROOT/.fetch/downloads")
    args = p.parse_args(argv)
    try:
        data_yaml = fetch(args.dataset, args.root, args.archives, force=args.force, keep_archives=args.keep_archives)
    except (FetchError, convert.ConversionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if data_yaml is None:
        print("error: the train and val splits are not both complete", file=sys.stderr)
        return 1
    print(f"ready: {data_yaml}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
