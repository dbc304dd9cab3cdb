"""Versions and times a result records, so a number can be traced to the code that made it."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import version

from src.runtime import PROJECT_ROOT


def versions() -> dict[str, str | None]:
    import hydra
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": version("ultralytics"),
        "hydra": hydra.__version__,
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    """The project's commit (short hash); None outside a git checkout."""
    return _git("rev-parse", "--short", "HEAD")


def git_dirty() -> bool | None:
    """Whether tracked files differ from that commit; None outside a git checkout."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        return (out.stdout.strip() or None) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
