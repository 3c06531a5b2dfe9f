"""Platform adapters: one module per platform, found by name, and the way to open one."""

from __future__ import annotations

import importlib
from typing import Any

from config import SourceSettings
from config.loader import ConfigError, resolve_secret
from bot.errors import HuaxiangError
from bot.find.http import PoliteClient
from bot.find.sources.base import Source


def source_class(platform: str) -> type[Source]:
    try:
        module = importlib.import_module(f"bot.find.sources.{platform}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bot.find.sources.{platform}":
            raise HuaxiangError(f"no adapter for platform {platform!r} (looked for bot/find/sources/{platform}.py)") from None
        raise
    return module.SOURCE_CLASS


def open_source(settings: Any, source: SourceSettings, transport: Any = None, **client_kw: Any) -> Source:
    """Build the adapter for a configured source with its polite client and secrets.

    ``settings`` is the whole ``config.Settings`` (secrets resolve against its
    origin file); ``transport`` lets tests put ``httpx.MockTransport`` under it.
    Secrets go straight into the client/adapter and are never logged.
    """
    cls = source_class(source.platform)
    cookie = resolve_secret(settings, source, "cookie")
    secrets: dict[str, str | None] = {"cookie": cookie}
    try:
        secrets["token"] = resolve_secret(settings, source, "token")
    except ConfigError as exc:
        # Reads need no token; a write will raise with this message instead.
        secrets["token"], secrets["token_error"] = None, str(exc)
    client = PoliteClient(source, transport=transport, cookie=cookie, **client_kw)
    return cls(source, client, secrets)
