"""The two rules of ultralytics' dataset layout that our datasets, figures and benchmarks share:
which file suffixes are images, and where an image's label file is. Asked of ultralytics (so a
new format or rule there reaches us), lazily: importing this module imports neither torch nor
ultralytics."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def image_suffixes() -> frozenset[str]:
    """Image file suffixes ultralytics reads (`.jpg`, `.png`, ...), lower case with the dot."""
    from ultralytics.data.utils import IMG_FORMATS

    return frozenset(f".{s.lower()}" for s in IMG_FORMATS)


def label_path(image: str | os.PathLike) -> Path:
    """The label file ultralytics reads for `image` (last /images/ -> /labels/, suffix .txt)."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([os.fspath(image)])[0])
