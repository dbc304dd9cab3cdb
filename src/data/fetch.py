"""Get a native-format dataset ready in YOLO layout: official archives -> extract -> convert.

    python -m src.data.fetch coco|visdrone [--root DIR] [--archives DIR] [--force] [--keep-archives]

The datasets are the formats of src/data/formats/ (their archives, split plans and converters);
this module only drives them. --root is the dataset root (default $DATASETS_DIR/<the format's
folder>, e.g. ./datasets/VisDrone or ./datasets/coco, DATASETS_DIR defaulting to ./datasets), the
same folder as the `dataset.root` of conf/dataset/<name>.yaml. With --archives DIR the zip files
already in DIR (official names) are used and nothing is downloaded. Without it they are
downloaded, after checking within seconds that their host can be reached; when it cannot, the
command fails at once and says which files to put where by hand.

Archives are extracted into ROOT/.fetch/ (same file system, so images are hardlinked into place),
converted, and the temp area is removed at the end. Splits already complete are skipped unless
--force; a split made only from optional archives is converted only when they are in --archives.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from src.data.archives import FetchError, check_reachable, download, endpoint
from src.data.formats import NativeFormat, registry
from src.data.yolo_layout import ConversionError, is_split_complete, write_data_yaml
from src.runtime import set_environment


def default_root(name: str) -> Path:
    return Path(os.environ.get("DATASETS_DIR") or "datasets") / registry()[name].folder


def manual_instructions(name: str, root: Path) -> str:
    fmt = registry()[name]
    lines = [f"Download these archives by hand (from {fmt.page} or the URLs below) into one folder DIR:"]
    width = max(len(a.name) for a in fmt.archives)
    for a in fmt.archives:
        lines.append(f"  {a.name:<{width}}  {a.size:>7}  {a.url}{'' if a.required else '  (optional)'}")
    lines += [
        "then run:",
        f"  make {fmt.make_target} ARCHIVES=DIR",
        f"  (or: python -m src.data.fetch {name} --root {root} --archives DIR)",
    ]
    return "\n".join(lines)


def _locate_archives(
    fmt: NativeFormat, root: Path, todo: list[str], archives: Path | None, log: Callable[[str], None]
) -> dict[str, Path]:
    """archive name -> local zip, for the splits in `todo` (optional archives only when given)."""
    by_name = {a.name: a for a in fmt.archives}
    needed = list(dict.fromkeys(n for split in todo for n in fmt.splits[split]))
    if archives is not None:
        archives = Path(archives)
        missing = [n for n in needed if by_name[n].required and not (archives / n).is_file()]
        if missing:
            raise FetchError(
                f"missing in {archives.resolve()}: {', '.join(missing)}\n" + manual_instructions(fmt.name, root)
            )
        return {n: archives / n for n in needed if (archives / n).is_file()}
    downloads = root / ".fetch" / "downloads"
    wanted = [by_name[n] for n in needed if by_name[n].required]
    remote = [a for a in wanted if not (downloads / a.name).is_file()]  # others: left by an earlier run
    for url in {endpoint(a.url): a.url for a in remote}.values():  # fail fast, once per host
        try:
            check_reachable(url)
        except FetchError as exc:
            raise FetchError(f"{exc}\n{manual_instructions(fmt.name, root)}") from None
    found = {}
    for a in wanted:
        log(f"downloading {a.url} ({a.size})")
        try:
            found[a.name] = download(a.url, downloads / a.name, log)
        except (OSError, FetchError) as exc:
            raise FetchError(f"downloading {a.url} failed: {exc}\n{manual_instructions(fmt.name, root)}") from None
    return found


def fetch(
    name: str,
    root: Path | None = None,
    archives: Path | None = None,
    *,
    force: bool = False,
    keep_archives: bool = False,
    log: Callable[[str], None] = print,
) -> Path | None:
    """Get dataset `name` ready under `root`; returns ROOT/data.yaml (None if train or val is still missing)."""
    if name not in registry():
        raise FetchError(f"unknown dataset {name!r}; valid choices: {', '.join(registry())}")
    fmt = registry()[name]
    root = Path(root or default_root(name)).resolve()
    by_name = {a.name: a for a in fmt.archives}
    todo = []
    for split, needs in fmt.splits.items():
        optional = not all(by_name[n].required for n in needs)
        if not force and is_split_complete(root, split):
            log(f"{name} {split}: already complete in {root} (--force to redo)")
        elif optional and (archives is None or not all((Path(archives) / n).is_file() for n in needs)):
            continue  # optional split: converted only when its archive is given
        else:
            todo.append(split)
    if todo:
        found = _locate_archives(fmt, root, todo, archives, log)  # fails before anything is written
        work = root / ".fetch" / "extract"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            for split in todo:
                _convert_split(fmt, split, found, work, root, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if archives is None and not keep_archives:
            shutil.rmtree(root / ".fetch", ignore_errors=True)
        else:
            try:
                (root / ".fetch").rmdir()  # only when empty
            except OSError:
                pass
    return write_data_yaml(root, log)


def _convert_split(
    fmt: NativeFormat, split: str, found: dict[str, Path], work: Path, root: Path, log: Callable[[str], None]
) -> None:
    started = time.perf_counter()
    inputs = fmt.unpack(split, [found[n] for n in fmt.splits[split]], work, log)
    log(f"  extracted in {time.perf_counter() - started:.0f} s; converting")
    fmt.convert(*inputs, root, split, link="hardlink", log=log)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.data.fetch", description=__doc__.split("\n\n")[0])
    table = registry()
    p.add_argument("dataset", choices=sorted(table))
    roots = " or ".join(f"$DATASETS_DIR/{fmt.folder}" for fmt in table.values())
    p.add_argument("--root", type=Path, default=None, help=f"dataset root (default {roots}, DATASETS_DIR=datasets)")
    p.add_argument(
        "--archives",
        type=Path,
        default=None,
        help="folder holding the official zip files already downloaded; nothing is downloaded",
    )
    p.add_argument("--force", action="store_true", help="convert again splits that are already complete")
    p.add_argument("--keep-archives", action="store_true", help="keep downloaded zips in ROOT/.fetch/downloads")
    args = p.parse_args(argv)
    set_environment("outputs")  # paths.outputs' default: ultralytics (asked for image suffixes) keeps its files there
    try:
        data_yaml = fetch(args.dataset, args.root, args.archives, force=args.force, keep_archives=args.keep_archives)
    except (FetchError, ConversionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if data_yaml is None:
        print("error: the train and val splits are not both complete", file=sys.stderr)
        return 1
    print(f"ready: {data_yaml}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
