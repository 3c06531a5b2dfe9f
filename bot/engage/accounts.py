"""Review accounts: who may read, edit and approve, and how they sign in.

Why accounts: a free-text "reviewer" box lets anyone write any name, so
"approved by" proved nothing and a junior could approve. Each person gets an
account with one role:

    viewer    reads the queue and the report
    editor    + edits drafts (proposes them for approval), rejects, settles follow to-dos
    approver  + approves items for sending
    admin     + everything (accounts are managed from the command line)

Passwords are hashed with the standard library's scrypt (salted, memory-hard);
no third-party crypto. Every approval anywhere (page, API, CLI) must name an
active approver or admin, even before any other account exists, and the
sender checks the same rule again before a request leaves (``bot.engage.policy``).
Editing and rejecting need an account with that right once accounts exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from config.times import parse_stored, to_stored, utcnow
from storage import accounts as store
from storage.db import transaction

from bot.errors import HuaxiangError

ROLES = ("viewer", "editor", "approver", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "editor": frozenset({"read", "edit", "reject", "todo", "undo"}),
    "approver": frozenset({"read", "edit", "reject", "todo", "undo", "approve"}),
    "admin": frozenset({"read", "edit", "reject", "todo", "undo", "approve", "admin"}),
}
MIN_PASSWORD = 8
# scrypt cost: n=2**14, r=8 is the standard library's documented interactive setting (~16 MB, ~50 ms).
_N, _R, _P = 2 ** 14, 8, 1
# Failed sign-ins: after FREE_FAILURES in a row, each further try waits twice as long (capped).
FREE_FAILURES = 3
MAX_LOCK_S = 300


class AccountError(HuaxiangError):
    """An account operation the rules refuse (unknown name, bad role, weak password)."""


@dataclass
class Account:
    id: int
    name: str
    role: str

    def can(self, what: str) -> bool:
        return what in PERMISSIONS.get(self.role, frozenset())


def _now() -> datetime:
    return datetime.now(timezone.utc)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def check_name(name: str) -> str:
    """Account names are printable, without look-alike tricks, and never the bot's own actors."""
    name = unicodedata.normalize("NFKC", name or "").strip()
    if not name or len(name) > 64:
        raise AccountError("an account name needs 1 to 64 characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name) or "/" in name:
        raise AccountError(f"account name {name!r} has a control, invisible or '/' character")
    if name.lower().startswith("huaxiang") or name.lower() in {"system", "bot", "auto", "planner", "sender"}:
        raise AccountError(f"{name!r} is reserved for the bot's own actors")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def add(db: sqlite3.Connection, name: str, role: str, password: str) -> Account:
    name, role, password = check_name(name), _check_role(role), _check_password(password)
    with transaction(db):
        if store.get_account(db, name) is not None:
            raise AccountError(f"account {name!r} exists already (use `users reset` to change its password)")
        account_id = store.add_account(db, name, role, hash_password(password), utcnow())
    return Account(account_id, name, role)


def _require(db: sqlite3.Connection, name: str) -> dict:
    row = store.get_account(db, name)
    if row is None:
        raise AccountError(f"no account named {name!r} (see `huaxiang users list`)")
    return row


def set_disabled(db: sqlite3.Connection, name: str, disabled: bool) -> None:
    with transaction(db):
        row = _require(db, name)
        store.update_account(db, name, {"disabled": int(disabled), "updated_at": utcnow()})
        if disabled:
            store.delete_sessions_of(db, row["id"])


def reset(db: sqlite3.Connection, name: str, password: str, role: str | None = None) -> None:
    """A new password (and optionally role); every open session of the account ends."""
    _check_password(password)
    values = {"password_hash": hash_password(password), "updated_at": utcnow(), "failed_logins": 0,
              "last_failed_at": None}
    if role is not None:
        values["role"] = _check_role(role)
    with transaction(db):
        row = _require(db, name)
        store.update_account(db, name, values)
        store.delete_sessions_of(db, row["id"])


def list_all(db: sqlite3.Connection) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "password_hash"} for r in store.list_accounts(db)]


def accounts_enabled(db: sqlite3.Connection) -> bool:
    """True once the team has created its first account: from then on editing, rejecting and
    signing in to the page need one too (approving always does)."""
    return store.count_accounts(db) > 0


def active_account(db: sqlite3.Connection, name: str | None) -> Account | None:
    row = store.get_account(db, (name or "").strip())
    if row is None or row["disabled"]:
        return None
    return Account(row["id"], row["name"], row["role"])


def approved_pending_send(db: sqlite3.Connection, name: str) -> int:
    """How many approved, unsent items ``name`` approved: the sender holds them once it may not approve."""
    return store.count_approved_by(db, check_name(name))


def lock_seconds(failed: int, last_failed_at: str | None, now: datetime | None = None) -> int:
    """How long this account must still wait before another try (0 = may try now)."""
    last = parse_stored(last_failed_at)
    if failed < FREE_FAILURES or last is None:
        return 0
    wait = min(MAX_LOCK_S, 2 ** (failed - FREE_FAILURES + 1))
    since = ((now or _now()) - last).total_seconds()
    return max(0, int(wait - since + 0.999))


def authenticate(db: sqlite3.Connection, name: str, password: str,
                 now: datetime | None = None) -> tuple[Account | None, int]:
    """(account, 0) on success; (None, seconds to wait) on failure. Failures are counted per account."""
    now = now or _now()
    with transaction(db):
        row = store.get_account(db, (name or "").strip())
        if row is None:
            hash_password(password or "x")        # the same work either way: no name probing by timing
            return None, 0
        wait = lock_seconds(row["failed_logins"], row["last_failed_at"], now)
        if wait:
            return None, wait
        if row["disabled"] or not verify_password(password or "", row["password_hash"]):
            failed = row["failed_logins"] + 1
            store.update_account(db, row["name"], {"failed_logins": failed, "last_failed_at": to_stored(now)})
            return None, lock_seconds(failed, to_stored(now), now)
        store.update_account(db, row["name"], {"failed_logins": 0, "last_login_at": to_stored(now)})
        return Account(row["id"], row["name"], row["role"]), 0


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(db: sqlite3.Connection, account: Account, hours: float,
                 now: datetime | None = None) -> tuple[str, str]:
    """(session id for the cookie, its CSRF token). Only the id's hash is stored."""
    now = now or _now()
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with transaction(db):
        store.delete_expired_sessions(db, to_stored(now))
        store.add_session(db, _hash_id(session_id), account.id, to_stored(now), to_stored(now + timedelta(hours=hours)), csrf)
    return session_id, csrf


def session(db: sqlite3.Connection, session_id: str, now: datetime | None = None) -> tuple[Account, str] | None:
    """The account and CSRF token of a live session; None when unknown, expired or disabled."""
    if not session_id:
        return None
    row = store.session_account(db, _hash_id(session_id), to_stored(now or _now()))
    if row is None:
        return None
    return Account(row["id"], row["name"], row["role"]), row["csrf"]


def close_session(db: sqlite3.Connection, session_id: str) -> None:
    with transaction(db):
        store.delete_session(db, _hash_id(session_id))
