"""Finding the jobs of sweeps on disk: result files, job dirs that never wrote one, paths that
matched nothing. One walk for the aggregator, `plan`'s estimates and anyone else.

A *job dir* is a directory holding `result.json` and/or Hydra's `.hydra/`; it is not searched
further (its train/ output is large).
"""

from __future__ import annotations

import glob
import os
from typing import Iterable

from src.results import RESULT_FILE
from src.results.jobdir import WEIGHTS_DIR

HYDRA_DIR = ".hydra"
# Directories below a job dir that never hold other jobs; never descend there.
_SKIP_DIRS = {HYDRA_DIR, WEIGHTS_DIR.name, "__pycache__", ".git", "wandb", ".venv", "node_modules"}


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _walk(root: str, results: list[str], orphans: list[str]) -> None:
    """Depth-first scan; a job dir is not searched further (its train/ output is large)."""
    try:
        with os.scandir(root) as it:
            entries = list(it)
    except (PermissionError, FileNotFoundError, NotADirectoryError):
        return
    names = {e.name for e in entries}
    if RESULT_FILE in names:
        results.append(os.path.join(root, RESULT_FILE))
        return
    if HYDRA_DIR in names:
        orphans.append(root)
        return
    for e in entries:
        if e.name in _SKIP_DIRS or e.name.startswith("."):  # .git, .ultralytics, .pytest_cache, ...
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                _walk(e.path, results, orphans)
        except OSError:
            continue


def discover(paths: Iterable[str | os.PathLike]) -> tuple[list[str], list[str], list[str]]:
    """(result files, job dirs without a result, paths that matched nothing)."""
    results: list[str] = []
    orphans: list[str] = []
    unmatched: list[str] = []
    for raw in paths:
        raw = os.fspath(raw)
        matches = sorted(glob.glob(raw, recursive=True)) if _is_glob(raw) else [raw]
        if not matches or not any(os.path.exists(m) for m in matches):
            unmatched.append(raw)
            continue
        for m in matches:
            if os.path.isdir(m):
                _walk(m, results, orphans)
            elif os.path.basename(m) == RESULT_FILE:
                results.append(m)
            elif not _is_glob(raw):
                unmatched.append(m)
    # Overlapping PATHs (a sweep and its parent, a glob and a dir) must not count a job twice.
    # abspath, not realpath: resolving symlinks costs more than reading the JSON.
    norm = os.path.abspath
    seen, uniq_r = set(), []
    for r in results:
        key = norm(r)
        if key not in seen:
            seen.add(key)
            uniq_r.append(key)
    result_dirs = {os.path.dirname(r) for r in uniq_r}
    uniq_o = []
    for o in orphans:
        key = norm(o)
        if key not in seen and key not in result_dirs:
            seen.add(key)
            uniq_o.append(key)
    return uniq_r, uniq_o, unmatched
