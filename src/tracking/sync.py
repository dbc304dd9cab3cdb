"""The tracking CLI: `python -m src.tracking sync SWEEP` uploads a sweep's offline runs, `dirs SWEEP` lists them."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from src.tracking.offline import offline_run_dirs
from src.tracking.settings import api_key_available


def sync(
    sweep_dir: str | os.PathLike, *, dry_run: bool = False, project: str | None = None, entity: str | None = None
) -> int:
    """`wandb sync` every offline run of a sweep (the jobs' and the aggregate's)."""
    dirs = offline_run_dirs(sweep_dir)
    if not dirs:
        print(
            f"no offline W&B runs under {sweep_dir} (looked for */wandb/offline-run-* and wandb/offline-run-*)",
            file=sys.stderr,
        )
        return 2
    if not dry_run and not api_key_available():
        print("no W&B API key: set WANDB_API_KEY or run `wandb login`, then sync again", file=sys.stderr)
        return 2
    cmd = [
        sys.executable,
        "-m",
        "wandb",
        "sync",
        *(["--dry-run"] if dry_run else []),
        *(["--project", project] if project else []),
        *(["--entity", entity] if entity else []),
        *map(str, dirs),
    ]
    print(f"syncing {len(dirs)} run(s): wandb sync {'--dry-run ' if dry_run else ''}{sweep_dir}/.../offline-run-*")
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    from src import tracking

    parser = argparse.ArgumentParser(prog="python -m src.tracking", description=tracking.__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_sync = sub.add_parser("sync", help="upload a sweep's offline W&B runs (wandb sync)")
    p_sync.add_argument("sweep_dir")
    p_sync.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    p_sync.add_argument("--project")
    p_sync.add_argument("--entity")
    p_dirs = sub.add_parser("dirs", help="print a sweep's offline run dirs, one a line")
    p_dirs.add_argument("sweep_dir")
    args = parser.parse_args(argv)
    if args.command == "dirs":
        for d in offline_run_dirs(args.sweep_dir):
            print(d)
        return 0
    return sync(args.sweep_dir, dry_run=args.dry_run, project=args.project, entity=args.entity)
