"""Official dataset archives: what one is, whether its host answers, downloading and unpacking it.

Nothing here knows a dataset: the formats (src/data/formats/) list their archives as `Archive`s
and find their files in what `extract` unpacked; src.data.fetch drives the whole.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

CONNECT_TIMEOUT = 5.0  # seconds to reach a host before giving up
READ_TIMEOUT = 60.0  # seconds without data during a download


@dataclass(frozen=True)
class Archive:
    name: str  # official file name, looked for in --archives DIR
    url: str
    size: str  # for the messages
    required: bool = True


class FetchError(RuntimeError):
    """Archives missing or unreachable; the message says what to do by hand."""


# --------------------------------------------------------------------------------------------- network


def endpoint(url: str) -> tuple[str, int]:
    """host, port to connect to for `url` (its proxy when one is configured)."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname or "", p.port or 80
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise FetchError unless a TCP connection to the url's host (DNS included) succeeds within `timeout`."""
    host, port = endpoint(url)
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


def download(
    url: str, dest: Path, log: Callable[[str], None] = print, connect_timeout: float = CONNECT_TIMEOUT
) -> Path:
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


def candidates(base: Path, name: str, *first: Path) -> Iterator[Path]:
    """`first`, then every path named `name` below `base` (walked only when needed)."""
    yield from first
    yield from sorted(base.rglob(name))


def find_dir(base: Path, folder: str) -> Path:
    """The folder named `folder` in an extracted archive under `base`, wherever the zip put it."""
    for cand in candidates(base, folder, base / folder):
        if cand.is_dir():
            return cand
    raise FetchError(f"no {folder}/ folder in the extracted archive under {base}")
