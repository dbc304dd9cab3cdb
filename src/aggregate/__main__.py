"""`python -m src.aggregate PATH... [--out DIR] [--quiet] [--no-plots] [--no-curves] [--strict]`

PATH: sweep directories, a study's output directory (searched recursively), globs (quote them),
or result.json files. Output goes to --out, else to the first PATH when it is a directory.
Exit codes: 0 aggregated (failed/missing jobs are listed, not fatal unless --strict);
1 with --strict when a job failed, is missing, interrupted or corrupt; 2 a PATH that does not exist,
nothing found (then nothing is written) or bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from src.files import missing_path
from src.runtime import outputs_of, set_environment

from .pipeline import DEFAULT_BOOTSTRAP, aggregate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.aggregate",
        description="Aggregate result.json files into ablation tables, plots and a report.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="sweep dir, study output dir (recursive), glob, or result.json file"
    )
    p.add_argument("--out", metavar="DIR", help="output directory (default: the first PATH if it is a directory)")
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    p.add_argument("--no-plots", action="store_true", help="write tables and report only")
    p.add_argument("--no-curves", action="store_true", help="skip reading each job's results.csv")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        metavar="N",
        help=f"image resamples of each variant's paired test-set CI (default {DEFAULT_BOOTSTRAP}; 0: off)",
    )
    p.add_argument(
        "--min-effect",
        type=float,
        default=None,
        metavar="PP",
        help="the Δ mAP50-95 (percentage points) seeds-needed aims at (default: the rope)",
    )
    p.add_argument(
        "--rope",
        type=float,
        default=None,
        metavar="PP",
        help="Δ mAP50-95 (percentage points) of no practical interest: the verdict's ±PP (default 0.5)",
    )
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when any job failed, is missing, interrupted or corrupt"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = missing_path(args.paths)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    out = args.out
    if out is None:
        if not os.path.isdir(args.paths[0]):
            parser.error("--out is required when the first PATH is not a directory")
        out = args.paths[0]
    set_environment(outputs_of(out))  # matplotlib's cache where the sweep's run kept it
    if args.bootstrap < 0:
        parser.error(f"--bootstrap must be 0 (off) or a positive number of resamples, got {args.bootstrap}")
    summary = aggregate(
        args.paths,
        out,
        plots=not args.no_plots,
        curves=not args.no_curves,
        bootstrap=args.bootstrap,
        min_effect=args.min_effect,
        rope=args.rope,
    )
    if not args.quiet:
        print(summary.terminal)
    if summary.n_jobs == 0:
        print(f"error: no result.json or Hydra job dir found under {' '.join(args.paths)}", file=sys.stderr)
        return 2
    if args.strict and summary.n_problems:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
