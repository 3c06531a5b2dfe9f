"""Signing in to a platform in a real browser and keeping the session cookie.

Why a browser: Weibo signs people in by QR code (or SMS) on its own pages,
with scripts and redirects no HTTP client should imitate. Like MediaCrawler,
we open the platform's sign-in page in Chromium (the system's, driven by
Playwright), let the person sign in, and watch the browser's cookies until
the session cookies appear.

Where the cookie goes: only the secrets file (the source's ``cookie_file``,
else ``config.loader.default_cookie_file``), written owner-only and
atomically. It is never printed, logged or stored in the database; the
crawl reads it through ``config.loader.resolve_secret`` like a pasted cookie.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import HuaxiangError

log = logging.getLogger(__name__)

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
HEADLESS_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]
MOBILE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


@dataclass
class SignIn:
    """A finished sign-in: the cookie header for the platform and the names it holds."""

    cookie: str
    names: list[str]


def signed_in(cookies: dict[str, str]) -> bool:
    """Weibo's signed-in session: a ``SUB`` plus the sign-in marks (``SSOLoginState``
    or ``MLOGIN=1``). A visitor's ``SUB`` alone does not count."""
    return bool(cookies.get("SUB")) and (bool(cookies.get("SSOLoginState")) or cookies.get("MLOGIN") == "1")


def find_browser(explicit: str | None = None) -> str:
    """The Chromium to drive: --browser, $HUAXIANG_CHROMIUM, or the system's."""
    for candidate in (explicit, os.environ.get("HUAXIANG_CHROMIUM")):
        if candidate:
            if Path(candidate).is_file():
                return candidate
            raise HuaxiangError(f"--browser: no browser at {candidate}")
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise HuaxiangError("no Chromium found (apt-get install chromium, or pass --browser /path/to/chrome)")


def browser_signin(signin_url: str, cookie_url: str, timeout_s: float = 300.0, headless: bool = False,
                   browser: str | None = None, on_open: Callable[[str], None] | None = None,
                   snapshot: Path | None = None) -> SignIn:
    """Open ``signin_url`` in Chromium and wait until ``cookie_url`` has a signed-in session.

    ``snapshot``: save a picture of the sign-in page (its QR code) there, for a
    person to scan when the browser has no window (a server, ``--headless``).
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise HuaxiangError("huaxiang login needs Playwright: pip install 'huaxiang[login]' "
                            "(it drives your system Chromium; no browser download)") from None
    exe = find_browser(browser)
    if not headless and os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise HuaxiangError("no display for the browser window; on a server use --headless --qr-image FILE "
                            "and scan the saved picture with the Weibo app")
    deadline = time.monotonic() + timeout_s
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=exe, headless=headless,
                                          args=HEADLESS_ARGS if headless else ["--no-first-run"])
            try:
                context = chromium.new_context(user_agent=MOBILE_UA, viewport={"width": 420, "height": 860})
                page = context.new_page()
                page.goto(signin_url, wait_until="domcontentloaded")
                if snapshot is not None:
                    page.wait_for_timeout(500)            # let the QR code render
                    page.screenshot(path=str(snapshot))
                if on_open is not None:
                    on_open(signin_url)
                while time.monotonic() < deadline:
                    jar = {c["name"]: c["value"] for c in context.cookies([cookie_url])}
                    if signed_in(jar):
                        return SignIn("; ".join(f"{k}={v}" for k, v in jar.items()), sorted(jar))
                    page.wait_for_timeout(300)
            finally:
                chromium.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HuaxiangError(f"the browser failed: {first}") from None
    raise HuaxiangError(f"no sign-in within {timeout_s:.0f} s; run `huaxiang login weibo` again when ready")


def store_cookie(path: Path, cookie: str) -> None:
    """Write the cookie owner-only and atomically (a reader never sees half of it)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".cookie-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(cookie.strip() + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
