"""Which W&B settings a run gets: `logger` config plus environment -> mode, project, tags, timeouts; credentials.

Mode: `logger.mode` (offline by default); the WANDB_MODE environment variable wins when set.
`logger=none` or mode `disabled` means no run at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from src.tracking.keys import DEFAULT_PROJECT
from src.tracking.payloads import plain

MODES = ("online", "offline", "disabled")
_MODE_ALIASES = {"dryrun": "offline", "run": "online"}


def logger_settings(logger_cfg: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The effective settings, or None when W&B is off (logger=none, mode disabled). Raises
    ValueError for a mode W&B does not know."""
    cfg = plain(logger_cfg) if logger_cfg is not None else {}
    if not cfg or str(cfg.get("name", "none")).lower() in ("none", "null", ""):
        return None
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    mode = env_mode or str(cfg.get("mode") or "offline").strip().lower()
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        source = "WANDB_MODE" if env_mode else "logger.mode"
        raise ValueError(f"{source}={mode!r} is not one of {', '.join(MODES)}")
    if mode == "disabled":
        return None
    tags = cfg.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    return {
        "mode": mode,
        "project": cfg.get("project") or DEFAULT_PROJECT,
        "entity": cfg.get("entity") or None,
        "tags": list(tags),
        "init_timeout": float(cfg.get("init_timeout") or 60),
        "finish_timeout": float(cfg.get("finish_timeout") or 0),
        "system_metrics": bool(cfg.get("system_metrics", True)),
        "label": cfg.get("name"),
    }


def api_key_available() -> bool:
    """A W&B credential is configured (WANDB_API_KEY, an identity token file, or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    try:
        from wandb.sdk.lib.wbauth import wbnetrc

        return bool(wbnetrc.read_netrc_auth(host=host))
    except Exception:  # noqa: BLE001 - fall back to reading the netrc file ourselves
        import netrc
        from urllib.parse import urlsplit

        try:
            path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
            return bool(netrc.netrc(path).authenticators(urlsplit(host).hostname or host))
        except (OSError, netrc.NetrcParseError):
            return False
