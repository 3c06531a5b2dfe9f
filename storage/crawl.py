"""Crawler state in SQLite: source health, query passes, runs, author work, locks.

Why all of it in the database: a crawl killed at any instant (even
``kill -9``) must resume with no lost and no duplicated rows. Each page's
records and the cursor that says "this page is done" are written in one
transaction by the crawler, using the functions here; nothing about
progress lives only in memory.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlite3

from config.times import UTC, parse_stored, to_stored, utcnow
from storage.db import chunked, dict_rows, marks
from storage.liveness import pid_alive


def _now_dt(now: str | None = None) -> datetime:
    """``now`` (a stored time, for tests and replays) or the clock."""
    return parse_stored(now) or datetime.now(UTC)


# -- sources -----------------------------------------------------------------
def sync_source(db: sqlite3.Connection, name: str, platform: str, base_url: str) -> None:
    db.execute(
        "INSERT INTO sources (name, platform, base_url, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET platform = excluded.platform, base_url = excluded.base_url",
        (name, platform, base_url or "", utcnow()),
    )


def source_pause(db: sqlite3.Connection, name: str, now: str | None = None) -> dict[str, Any] | None:
    """The live pause of a source (paused_until in the future), or None."""
    row = db.execute(
        "SELECT status, paused_until, pause_reason, consecutive_blocks FROM sources WHERE name = ?", (name,)
    ).fetchone()
    if row is None or row[0] != "paused" or not row[1]:
        return None
    until = parse_stored(row[1])
    if until is None or until <= _now_dt(now):
        return None
    return {"paused_until": row[1], "pause_reason": row[2], "consecutive_blocks": row[3]}


def pause_source(db: sqlite3.Connection, name: str, reason: str, base_cooldown_s: float, max_cooldown_s: float,
                 retry_after_s: float | None = None, now: str | None = None) -> str:
    """Pause a blocked source; each consecutive block doubles the cool-down.

    Returns the ISO time the pause ends. A platform's own Retry-After is a
    floor for the cool-down.
    """
    current = _now_dt(now)
    row = db.execute("SELECT consecutive_blocks FROM sources WHERE name = ?", (name,)).fetchone()
    blocks = (row[0] if row else 0) + 1
    cooldown = min(max_cooldown_s, base_cooldown_s * (2 ** (blocks - 1)))
    if retry_after_s:
        cooldown = max(cooldown, retry_after_s)
    until = to_stored(current + timedelta(seconds=cooldown))
    db.execute(
        "UPDATE sources SET status = 'paused', paused_until = ?, pause_reason = ?, consecutive_blocks = ?,"
        " last_blocked_at = ?, updated_at = ? WHERE name = ?",
        (until, reason[:500], blocks, to_stored(current), to_stored(current), name),
    )
    return until


def mark_source_ok(db: sqlite3.Connection, name: str, now: str | None = None) -> None:
    now = now or utcnow()
    stale = to_stored(_now_dt(now) - timedelta(seconds=60))
    db.execute(
        "UPDATE sources SET status = 'ok', paused_until = NULL, consecutive_blocks = 0, last_ok_at = ?,"
        " updated_at = ? WHERE name = ? AND (status != 'ok' OR consecutive_blocks != 0 OR last_ok_at IS NULL"
        " OR last_ok_at < ?)",
        (now, now, name, stale),
    )


def source_health(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every known source with its status, pause and last good/blocked times (for ``status``)."""
    cur = db.execute(
        "SELECT name, platform, base_url, status, paused_until, pause_reason, consecutive_blocks,"
        " last_ok_at, last_blocked_at, updated_at FROM sources ORDER BY name")
    rows = dict_rows(cur)
    now = datetime.now(UTC)
    for r in rows:
        until = parse_stored(r.get("paused_until"))
        r["paused_now"] = bool(r["status"] == "paused" and until and until > now)
    return rows


# -- queries -----------------------------------------------------------------
def sync_query(db: sqlite3.Connection, name: str, source: str, kind: str, value: str) -> None:
    """Register a configured query; changing its source, kind or value starts it afresh."""
    row = db.execute("SELECT source, kind, value FROM queries WHERE name = ?", (name,)).fetchone()
    now = utcnow()
    if row is None:
        db.execute("INSERT INTO queries (name, source, kind, value, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (name, source, kind, value, now))
    elif tuple(row) != (source, kind, value):
        db.execute(
            "UPDATE queries SET source = ?, kind = ?, value = ?, cursor = NULL, newest_id = NULL, newest_at = NULL,"
            " pass_newest_id = NULL, pass_started_at = NULL, pass_pages = 0, updated_at = ? WHERE name = ?",
            (source, kind, value, now, name))


def query_state(db: sqlite3.Connection, name: str) -> dict[str, Any]:
    cur = db.execute(
        "SELECT name, source, kind, value, cursor, newest_id, newest_at, pass_newest_id, pass_started_at,"
        " pass_pages, last_run_id, last_status, updated_at FROM queries WHERE name = ?", (name,))
    rows = dict_rows(cur)
    if not rows:
        raise KeyError(name)
    return rows[0]


def checkpoint_query(db: sqlite3.Connection, name: str, cursor: str | None, pass_newest_id: str | None,
                     pass_done: bool, newest_at: str | None = None) -> None:
    """Record that a page is stored: where to continue, and (when the pass is
    complete) the new stop point. Call inside the page's transaction."""
    now = utcnow()
    if pass_done:
        db.execute(
            "UPDATE queries SET cursor = NULL, newest_id = COALESCE(?, newest_id),"
            " newest_at = COALESCE(?, newest_at), pass_newest_id = NULL, pass_started_at = NULL, pass_pages = 0,"
            " updated_at = ? WHERE name = ?",
            (pass_newest_id, newest_at, now, name))
    else:
        db.execute(
            "UPDATE queries SET cursor = ?, pass_newest_id = ?, pass_started_at = COALESCE(pass_started_at, ?),"
            " pass_pages = pass_pages + 1, updated_at = ? WHERE name = ?",
            (cursor, pass_newest_id, now, now, name))


def set_query_status(db: sqlite3.Connection, name: str, run_id: int, status: str) -> None:
    db.execute("UPDATE queries SET last_run_id = ?, last_status = ?, updated_at = ? WHERE name = ?",
                    (run_id, status, utcnow(), name))


def query_states(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return dict_rows(db.execute(
        "SELECT name, source, kind, value, cursor, newest_id, last_status, last_run_id, updated_at FROM queries ORDER BY name"))


def stored_post_fields(db: sqlite3.Connection, platform: str, pids: list[str]) -> dict[str, dict[str, Any]]:
    """Text, topics, mentions and group of stored posts (so a listing's truncated
    text or missing group never overwrites what a fuller fetch stored)."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunked(pids):
        q = ("SELECT pid, text, topics, mentions, group_id FROM posts WHERE platform = ? AND pid IN ("
             + marks(len(chunk)) + ")")
        for pid, text, topics, mentions, group in db.execute(q, (platform, *chunk)):
            out[pid] = {"text": text, "topics": json.loads(topics or "[]"), "mentions": json.loads(mentions or "[]"),
                        "group_id": group}
    return out


def query_known_pids(db: sqlite3.Connection, platform: str, query: str, pids: list[str]) -> set[str]:
    """Which of these posts this query has already found (another query finding them does not count)."""
    found: set[str] = set()
    for chunk in chunked(pids):
        q = ("SELECT p.pid FROM post_queries pq JOIN posts p ON p.id = pq.post_id WHERE pq.query = ?"
             " AND p.platform = ? AND p.pid IN (" + marks(len(chunk)) + ")")
        found.update(r[0] for r in db.execute(q, (query, platform, *chunk)))
    return found


def link_users(db: sqlite3.Connection, platform: str, query: str, uids: Iterable[str], run_id: int | None) -> None:
    for uid in dict.fromkeys(uids):
        db.execute("INSERT INTO user_queries (platform, uid, query, run_id) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT DO NOTHING", (platform, uid, query, run_id))


def query_known_uids(db: sqlite3.Connection, platform: str, query: str, uids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunked(uids):
        q = ("SELECT uid FROM user_queries WHERE query = ? AND platform = ? AND uid IN ("
             + marks(len(chunk)) + ")")
        found.update(r[0] for r in db.execute(q, (query, platform, *chunk)))
    return found


# -- runs --------------------------------------------------------------------
def start_run(db: sqlite3.Connection, query: str, source: str) -> int:
    cur = db.execute("INSERT INTO crawl_runs (query, source, started_at, pid) VALUES (?, ?, ?, ?)",
                          (query, source, utcnow(), os.getpid()))
    return int(cur.lastrowid)


def update_run(db: sqlite3.Connection, run_id: int, counts: Mapping[str, int], faults: Mapping[str, int]) -> None:
    """Set a run's running totals (called with each page so a killed run still shows its progress)."""
    allowed = ("requests", "bytes", "pages", "new_posts", "updated_posts", "new_users", "updated_users", "errors",
               "authors", "skipped")
    sets = [f"{k} = ?" for k in allowed if k in counts]
    args = [int(counts[k]) for k in allowed if k in counts]
    db.execute(f"UPDATE crawl_runs SET {', '.join(sets + ['faults = ?'])} WHERE id = ?",
                    (*args, json.dumps(dict(faults), sort_keys=True), run_id))


def finish_run(db: sqlite3.Connection, run_id: int, status: str, error: str | None = None) -> None:
    db.execute("UPDATE crawl_runs SET status = ?, ended_at = ?, error = ? WHERE id = ?",
                    (status, utcnow(), error, run_id))


def recent_runs(db: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = dict_rows(db.execute(
        "SELECT id, query, source, started_at, ended_at, status, requests, bytes, pages, new_posts, updated_posts,"
        " new_users, updated_users, authors, errors, skipped, faults, error FROM crawl_runs ORDER BY id DESC LIMIT ?",
        (limit,)))
    for r in rows:
        r["faults"] = json.loads(r["faults"] or "{}")
    return rows


# -- authors -----------------------------------------------------------------
def mark_authors_pending(db: sqlite3.Connection, platform: str, source: str, query: str,
                         uids: Iterable[str], now: str | None = None) -> int:
    """Queue authors for a profile + timeline fetch; already-known authors are left alone."""
    now = now or utcnow()
    n = 0
    for uid in dict.fromkeys(uids):
        cur = db.execute(
            "INSERT INTO crawl_authors (platform, uid, source, query, found_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, uid) DO NOTHING", (platform, uid, source, query, now))
        n += cur.rowcount
    return n


def known_authors(db: sqlite3.Connection, platform: str, uids: Iterable[str]) -> set[str]:
    uids = list(uids)
    found: set[str] = set()
    for chunk in chunked(uids):
        q = "SELECT uid FROM crawl_authors WHERE platform = ? AND uid IN (" + marks(len(chunk)) + ")"
        found.update(r[0] for r in db.execute(q, (platform, *chunk)))
    return found


def pending_authors(db: sqlite3.Connection, source: str, limit: int, max_attempts: int = 3,
                    hold_queries: Sequence[str] = ()) -> list[str]:
    """Authors to fetch next, oldest first; those queued by ``hold_queries``
    wait for those queries' own author step."""
    held = list(hold_queries)
    where = (" AND (query IS NULL OR query NOT IN (" + marks(len(held)) + "))") if held else ""
    return [r[0] for r in db.execute(
        "SELECT uid FROM crawl_authors WHERE source = ? AND status = 'pending' AND attempts < ?" + where +
        " ORDER BY found_at, uid LIMIT ?", (source, max_attempts, *held, limit))]


def queries_mid_pass(db: sqlite3.Connection, names: Sequence[str]) -> list[str]:
    """Those of ``names`` whose current pass has pages still to walk (a saved cursor)."""
    names = list(names)
    if not names:
        return []
    return [r[0] for r in db.execute("SELECT name FROM queries WHERE cursor IS NOT NULL AND name IN ("
                                          + marks(len(names)) + ") ORDER BY name", names)]


def mark_author_done(db: sqlite3.Connection, platform: str, uid: str, now: str | None = None) -> None:
    db.execute("UPDATE crawl_authors SET status = 'done', fetched_at = ?, error = NULL,"
                    " attempts = attempts + 1 WHERE platform = ? AND uid = ?", (now or utcnow(), platform, uid))


def mark_author_failed(db: sqlite3.Connection, platform: str, uid: str, error: str, max_attempts: int = 3) -> None:
    """Count a failed attempt; after ``max_attempts`` the author is given up on (status failed)."""
    db.execute(
        "UPDATE crawl_authors SET attempts = attempts + 1, error = ?,"
        " status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'pending' END WHERE platform = ? AND uid = ?",
        (error[:500], max_attempts, platform, uid))


# -- locks -------------------------------------------------------------------
    return True


def acquire_query_lock(db: sqlite3.Connection, query: str, run_id: int) -> dict[str, Any] | None:
    """Take the query's crawl lock. Returns None on success, or the live holder.

    A lock left by a dead process (``kill -9``) is taken over and that run is
    marked interrupted. Call inside a transaction.
    """
    host = socket.gethostname()
    row = db.execute("SELECT run_id, pid, host, started_at FROM crawl_locks WHERE query = ?", (query,)).fetchone()
    if row is not None:
        holder = {"run_id": row[0], "pid": row[1], "host": row[2], "started_at": row[3]}
        # Our own pid means an earlier crawl in this very process that could not
        # release its lock (the database was read-only or full at the time): one
        # process crawls a query one run at a time, so that lock is stale.
        if row[2] != host or (row[1] != os.getpid() and pid_alive(row[1])):
            return holder
        db.execute("UPDATE crawl_runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?),"
                        " error = COALESCE(error, 'the crawling process died') WHERE id = ? AND status = 'running'",
                        (utcnow(), row[0]))
        db.execute("DELETE FROM crawl_locks WHERE query = ?", (query,))
    db.execute("INSERT INTO crawl_locks (query, run_id, pid, host, started_at) VALUES (?, ?, ?, ?, ?)",
                    (query, run_id, os.getpid(), host, utcnow()))
    return None


def release_query_lock(db: sqlite3.Connection, query: str, run_id: int) -> None:
    db.execute("DELETE FROM crawl_locks WHERE query = ? AND run_id = ?", (query, run_id))


def interrupt_stale_runs(db: sqlite3.Connection) -> int:
    """Runs still 'running' whose process is gone (and holds no lock) become 'interrupted'."""
    host_pids = db.execute(
        "SELECT id, pid FROM crawl_runs WHERE status = 'running' AND id NOT IN (SELECT run_id FROM crawl_locks"
        " WHERE run_id IS NOT NULL)").fetchall()
    n = 0
    for run_id, pid in host_pids:
        if pid is None or not pid_alive(pid) or pid == os.getpid():
            n += db.execute("UPDATE crawl_runs SET status = 'interrupted', ended_at = ?,"
                                 " error = COALESCE(error, 'the crawling process died') WHERE id = ? AND status = 'running'",
                                 (utcnow(), run_id)).rowcount
    return n
