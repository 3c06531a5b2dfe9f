"""All SQL for review accounts and their sign-in sessions (migration 0110).

Callers own transactions (``storage.db.transaction``); hashing and role rules
live in ``bot.engage.accounts``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from storage.db import dict_rows

_COLUMNS = "id, name, role, password_hash, disabled, created_at, updated_at, failed_logins, last_failed_at, last_login_at"


def _one(cur: sqlite3.Cursor) -> dict[str, Any] | None:
    rows = dict_rows(cur)
    return rows[0] if rows else None


def add_account(db, name: str, role: str, password_hash: str, at: str) -> int:
    cur = db.execute("INSERT INTO accounts (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                            (name, role, password_hash, at))
    return int(cur.lastrowid)


def get_account(db, name: str) -> dict[str, Any] | None:
    return _one(db.execute(f"SELECT {_COLUMNS} FROM accounts WHERE name = ?", (name,)))


def account_by_id(db, account_id: int) -> dict[str, Any] | None:
    return _one(db.execute(f"SELECT {_COLUMNS} FROM accounts WHERE id = ?", (account_id,)))


def list_accounts(db) -> list[dict[str, Any]]:
    return dict_rows(db.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY name"))


def count_accounts(db) -> int:
    try:
        return int(db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])
    except sqlite3.OperationalError:      # a database from before migration 0110 (read-only copies)
        return 0


def update_account(db, name: str, values: dict[str, Any]) -> bool:
    allowed = {"role", "password_hash", "disabled", "updated_at", "failed_logins", "last_failed_at", "last_login_at"}
    bad = set(values) - allowed
    if bad:
        raise ValueError(f"not updatable account columns: {sorted(bad)}")
    sets = ", ".join(f"{c} = ?" for c in values)
    return db.execute(f"UPDATE accounts SET {sets} WHERE name = ?", (*values.values(), name)).rowcount > 0


def add_session(db, id_hash: str, account_id: int, created_at: str, expires_at: str, csrf: str) -> None:
    db.execute("INSERT INTO review_sessions (id_hash, account_id, created_at, expires_at, csrf) VALUES (?, ?, ?, ?, ?)",
                      (id_hash, account_id, created_at, expires_at, csrf))


def session_account(db, id_hash: str, now_iso: str) -> dict[str, Any] | None:
    """The live session's account (with ``csrf``); None when unknown, expired or disabled."""
    cur = db.execute(
        "SELECT a.id, a.name, a.role, s.csrf, s.expires_at FROM review_sessions s JOIN accounts a ON a.id = s.account_id"
        " WHERE s.id_hash = ? AND s.expires_at > ? AND a.disabled = 0", (id_hash, now_iso))
    return _one(cur)


def delete_session(db, id_hash: str) -> None:
    db.execute("DELETE FROM review_sessions WHERE id_hash = ?", (id_hash,))


def delete_sessions_of(db, account_id: int) -> int:
    return db.execute("DELETE FROM review_sessions WHERE account_id = ?", (account_id,)).rowcount


def delete_expired_sessions(db, now_iso: str) -> int:
    return db.execute("DELETE FROM review_sessions WHERE expires_at <= ?", (now_iso,)).rowcount


def count_approved_by(db, name: str) -> int:
    """Approved, not yet sent items this account approved (held at send time if it may no longer approve)."""
    return int(db.execute("SELECT COUNT(*) FROM queue WHERE status = 'approved' AND approved_by = ?",
                                 (name,)).fetchone()[0])
