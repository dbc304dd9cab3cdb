"""The converter command: one split of a native-format dataset (src/data/formats/) to YOLO layout.

    python -m src.data.convert visdrone SPLIT_DIR OUT_DIR [--split NAME] [--link MODE]
    python -m src.data.convert coco INSTANCES_JSON IMAGES_DIR OUT_DIR [--split NAME] [--link MODE]

One sub-command per format, its inputs from the format's table entry. The split is written to
OUT_DIR/images/<split> and OUT_DIR/labels/<split> safely (src.data.yolo_layout), the summary of
images, boxes and dropped boxes is printed, and OUT_DIR/data.yaml is written once a train and a
val split are both complete. Exit status 2 when the input is not what the format expects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.data.formats import registry
from src.data.yolo_layout import LINK_MODES, ConversionError
from src.runtime import set_environment


def main(argv: list[str] | None = None) -> int:
    table = registry()
    p = argparse.ArgumentParser(prog="python -m src.data.convert", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="dataset", required=True)
    for name, fmt in table.items():
        s = sub.add_parser(name, help=fmt.help)
        for arg in fmt.inputs:
            s.add_argument(arg, type=Path)
        s.add_argument("out_dir", type=Path)
        s.add_argument("--split", default=None, help="split name (default: from the folder / json name)")
        s.add_argument(
            "--link",
            default="auto",
            choices=LINK_MODES,
            help="how images are placed: auto = hardlink, else symlink, else copy",
        )
    args = p.parse_args(argv)
    fmt = table[args.dataset]
    set_environment("outputs")  # paths.outputs' default: ultralytics (asked for image suffixes) keeps its files there
    try:
        fmt.convert(*(getattr(args, a) for a in fmt.inputs), args.out_dir, args.split, link=args.link)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
