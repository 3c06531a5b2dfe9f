"""``huaxiang login PLATFORM [--source NAME] [--headless] [--timeout S]``: sign in in a real browser.

The platforms offered are those whose adapter declares a browser sign-in
(``Source.signin``); an adapter may stand in for another's (the sandbox signs
in the way Weibo does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.argtypes import float_range
from bot.context import Context
from bot.errors import HuaxiangError
from bot.find.login import browser_signin, store_cookie
from bot.find.sources import signin_platforms


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("login", help="sign in to a platform in a real browser and keep the session cookie",
                       description="Opens the platform's sign-in page in Chromium; sign in (e.g. scan the QR code "
                                   "with the Weibo app). The session cookie goes to the source's cookie_file (or "
                                   "the default secrets file), never to the database or logs.")
    p.add_argument("platform", choices=sorted(signin_platforms()), help="platform to sign in to")
    p.add_argument("--source", metavar="NAME", help="which [[sources]] entry (default: the first of that platform)")
    p.add_argument("--timeout", type=float_range(1, 3600), default=300.0,
                   help="seconds to wait for the sign-in (default 300; 1 to 3600)")
    p.add_argument("--headless", action="store_true", help="no window (for automation; a person cannot scan then)")
    p.add_argument("--browser", metavar="PATH", help="Chromium to use (default: the system's)")
    p.add_argument("--qr-image", metavar="FILE", help="save a picture of the sign-in page (QR code) here to scan "
                                                      "from another screen (with --headless on a server)")
    p.set_defaults(func=run)


def _pick_source(ctx: Context, platform: str, name: str | None):
    platforms = signin_platforms()[platform]
    fits = [s for s in ctx.settings.sources if s.platform in platforms]
    if name:
        fits = [s for s in fits if s.name == name]
        if not fits:
            known = ", ".join(s.name for s in ctx.settings.sources if s.platform in platforms) or "none"
            raise HuaxiangError(f"--source: no {platform} source named {name!r} (configured: {known})")
    if not fits:
        raise HuaxiangError(f"{ctx.settings.origin}: no [[sources]] entry with platform = \"{platform}\"")
    return fits[0]


def _check_session(src, cookie: str) -> str:
    """Ask the platform whether the new cookie is a session (``/api/config``), before keeping it."""
    from bot.find.http import PoliteClient
    from bot.find.sources import source_class
    from bot.find.errors import SourceError

    with PoliteClient(src, cookie=cookie) as client:
        adapter = source_class(src.platform)(src, client, {"cookie": cookie})
        try:
            uid = adapter.session_uid()
        except SourceError as exc:
            raise HuaxiangError(f"signed in, but the session could not be checked ({exc}); nothing stored") from None
    if uid is None:
        raise HuaxiangError("the browser signed in, but the platform does not accept that session; nothing stored")
    return uid


def run(args: argparse.Namespace, ctx: Context) -> int:
    from config.loader import default_cookie_file
    from bot.find.sources import source_class
    from storage import crawl as store
    from storage.db import transaction

    src = _pick_source(ctx, args.platform, args.source)
    adapter = source_class(src.platform)(src, None, {})
    target = Path(src.cookie_file).expanduser() if src.cookie_file else default_cookie_file(src.name)
    ctx.console.print(f"opening the sign-in page for source {src.name}; sign in there "
                      f"(waiting up to {args.timeout:.0f} s)", markup=False)
    snapshot = Path(args.qr_image).expanduser() if args.qr_image else None
    result = browser_signin(adapter.signin_url(), adapter.base + "/", timeout_s=args.timeout,
                            headless=args.headless, browser=args.browser, snapshot=snapshot,
                            on_open=(lambda url: ctx.console.print(f"scan the QR code in {snapshot}", markup=False))
                            if snapshot else None)
    uid = _check_session(src, result.cookie)
    store_cookie(target, result.cookie)
    with transaction(ctx.db):
        store.sync_source(ctx.db, src.name, src.platform, src.base_url)
        store.mark_source_ok(ctx.db, src.name)          # lifts a "session expired" pause
    who = f" as user {uid}" if uid else ""
    ctx.console.print(f"signed in{who}: session cookie ({', '.join(result.names)}) stored in {target}, owner-only; "
                      f"source {src.name} may crawl again", markup=False)
    if src.cookie_env:
        ctx.console.print(f"note: ${src.cookie_env} still wins over the file while it is set", markup=False)
    return 0
