"""Who is asking, and what they may do.

A request is identified once, by the app's middleware: a live account
session (cookie), else the review token (cookie or ``Authorization: Bearer``).
Each route then names the right it needs (``need("approve")``); state changes
also need the ``X-CSRF-Token`` header, whose value only a signed-in page or
client can read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request

from bot.engage import accounts
from bot.i18n import t

COOKIE = "hx_session"
# The token is nobody's account, so it never approves: approving needs an approver account.
TOKEN_RIGHTS = frozenset({"read", "edit", "reject", "todo", "undo"})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def token_path(db_path: str | Path) -> Path:
    """The token lives beside the database file (``huaxiang.db.review-token``)."""
    return Path(str(db_path) + ".review-token")


def load_or_create_token(db_path: str | Path) -> str:
    """The review token, generated on first use and kept with mode 0600."""
    path = token_path(db_path)
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            os.chmod(path, 0o600)
            return value
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)
    return value


def derive(token: str, purpose: str) -> str:
    """A value derived from the token for one purpose (its session cookie, its CSRF token),
    so neither gives the token away."""
    return hmac.new(token.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class TokenKeys:
    """The review token and what is derived from it."""

    token: str
    session: str
    csrf: str

    @classmethod
    def of(cls, token: str) -> TokenKeys:
        return cls(token, derive(token, "session"), derive(token, "csrf"))


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of text from the wire. As bytes: ``hmac.compare_digest``
    raises TypeError on non-ASCII str, which would turn a bad credential into a 500."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


@dataclass
class Who:
    """The person behind a request: an account, or the token holder (name from the body)."""

    name: str | None
    role: str
    rights: frozenset[str]
    csrf: str
    accounts_mode: bool = False
    session_id: str = field(default="", repr=False)

    def actor(self, typed: str) -> str:
        return self.name if self.accounts_mode and self.name else typed


def identify(db: sqlite3.Connection, request: Request, keys: TokenKeys) -> Who | None:
    """Who is asking: a live account session, else the token (full rights only without accounts)."""
    with_accounts = accounts.accounts_enabled(db)
    cookie = request.cookies.get(COOKIE, "")
    if with_accounts and cookie:
        found = accounts.session(db, cookie)
        if found is not None:
            account, csrf = found
            return Who(account.name, account.role, accounts.PERMISSIONS[account.role], csrf, True, cookie)
    auth = request.headers.get("authorization", "")
    by_token = same(cookie, keys.session) or (auth.lower().startswith("bearer ") and same(auth[7:].strip(), keys.token))
    if by_token:
        rights = frozenset({"read"}) if with_accounts else TOKEN_RIGHTS
        return Who(None, "token", rights, keys.csrf, with_accounts)
    return None


def current(request: Request) -> Who | None:
    """The requester the middleware identified (None: nobody signed in)."""
    return getattr(request.state, "who", None)


def check(request: Request, right: str, lang: str) -> Who:
    """The requester, if signed in, holding ``right``, and (for a state change) showing the CSRF token;
    else the HTTP error that says which of these is missing."""
    w = current(request)
    if w is None:
        raise HTTPException(status_code=401, detail="sign in first (account, or the token printed by `huaxiang review`)")
    if request.method not in SAFE_METHODS and not same(request.headers.get("x-csrf-token"), w.csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
    if right == "approve" and w.role == "token":
        raise HTTPException(status_code=403, detail=t("err.no_approver", lang))
    if right not in w.rights:
        raise HTTPException(status_code=403, detail=f"your role ({w.role}) may not {right}")
    return w


def need(right: str) -> Callable[[Request], Who]:
    """A route dependency: the requester, who must hold ``right``."""
    def dependency(request: Request) -> Who:
        return check(request, right, request.app.state.review.lang)
    return dependency


class SignInThrottle:
    """Failed sign-ins per client address (any account name, known or not): after
    ``free`` failures in a row each further try waits twice as long, up to ``cap`` seconds.
    The per-account counter (``bot.engage.accounts``) slows guessing one password;
    this slows trying many names from one place."""

    def __init__(self, free: int = 5, cap: int = 300):
        self.free, self.cap = free, cap
        self._fails: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str, now: float | None = None) -> int:
        with self._lock:
            count, last = self._fails.get(client, (0, 0.0))
        if count < self.free:
            return 0
        left = min(self.cap, 2 ** (count - self.free + 1)) - ((now or time.monotonic()) - last)
        return max(0, int(left + 0.999))

    def failed(self, client: str) -> None:
        with self._lock:
            count, _ = self._fails.get(client, (0, 0.0))
            self._fails[client] = (count + 1, time.monotonic())
            if len(self._fails) > 10_000:        # bounded memory under a spray of addresses
                self._fails.pop(next(iter(self._fails)))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)
