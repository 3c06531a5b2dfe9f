"""Platform adapters: the registry of them, and the way to open one.

Why a registry: the rest of the bot asks an adapter about its platform
(links, send mode, sign-in, which settings it takes) instead of naming
platforms. An adapter is registered by being a module in this package
that defines ``SOURCE_CLASS``; nothing else is listed anywhere.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from config import PlatformRules, SourceSettings
from config.loader import ConfigError, resolve_secret
from bot.errors import HuaxiangError
from bot.find.http import PoliteClient
from bot.find.sources.base import Source


def registered() -> dict[str, type[Source]]:
    """Every adapter in this package, by platform name."""
    return dict(_discover())


@functools.cache
def _discover() -> tuple[tuple[str, type[Source]], ...]:
    # Cached like the imports it makes: the package's files do not change while we run.
    found = []
    for info in pkgutil.iter_modules(__path__):
        cls = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SOURCE_CLASS", None)
        if cls is not None:
            found.append((cls.platform, cls))
    return tuple(sorted(found))


def source_class(platform: str) -> type[Source]:
    """The adapter for a configured ``platform`` value."""
    adapters = registered()
    if platform not in adapters:
        raise HuaxiangError(f"no adapter for platform {platform!r} (registered: {', '.join(adapters)}; "
                            f"an adapter is a module in bot/find/sources/ defining SOURCE_CLASS)")
    return adapters[platform]


def platform_rules() -> PlatformRules:
    """What the config may name, for the loader (``config`` imports nothing of ours)."""
    adapters = registered()
    return PlatformRules(keys={name: cls.source_keys for name, cls in adapters.items()},
                         send_modes=tuple(cls.send_mode for cls in adapters.values() if cls.send_mode))


def send_platforms(mode: str) -> tuple[str, ...]:
    """Platforms whose adapter sends in this ``send_mode`` (empty for dry-run and manual)."""
    return tuple(name for name, cls in registered().items() if cls.send_mode == mode)


def signin_platforms() -> dict[str, tuple[str, ...]]:
    """``huaxiang login NAME`` -> the platforms that sign in that way."""
    out: dict[str, tuple[str, ...]] = {}
    for name, cls in registered().items():
        if cls.signin:
            out[cls.signin] = out.get(cls.signin, ()) + (name,)
    return out


def default_platform() -> str:
    """The platform a bare user id belongs to."""
    return next(name for name, cls in registered().items() if cls.default)


def local_platforms() -> tuple[str, ...]:
    """Platforms served on this machine (the sandbox the demo starts)."""
    return tuple(name for name, cls in registered().items() if cls.local)


def post_link(platform: str | None, pid: str | None, url: str | None, sources: list[SourceSettings]) -> str:
    """The stored post URL, else one the platform's adapter builds, else ""."""
    if url:
        return url
    cls = registered().get(platform or "")
    return (cls.post_link(pid, sources) or "") if cls is not None and pid else ""


def profile_link(platform: str | None, uid: str | None, url: str | None) -> str:
    """The stored profile URL, else one the platform's adapter builds, else ""."""
    if url:
        return url
    cls = registered().get(platform or "")
    return (cls.profile_link(uid) or "") if cls is not None and uid else ""


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
