"""Platform adapters. One module per platform, found by name."""

from __future__ import annotations

import importlib

from bot.errors import HuaxiangError
from bot.find.sources.base import BlockedError, Page, PayloadError, SendResult, Source, SourceError, UnsupportedError


def source_class(platform: str) -> type[Source]:
    try:
        module = importlib.import_module(f"bot.find.sources.{platform}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bot.find.sources.{platform}":
            raise HuaxiangError(f"no adapter for platform {platform!r} (looked for bot/find/sources/{platform}.py)") from None
        raise
    return module.SOURCE_CLASS


__all__ = ["BlockedError", "Page", "PayloadError", "SendResult", "Source", "SourceError", "UnsupportedError", "source_class"]
