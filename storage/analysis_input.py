"""What the analysis reads: posts with their cached tokens, by user, and the users' stored rows.

Why streamed in batches that never split a user: profiles are built one user
at a time, and a million posts must not be in memory at once. The row order
of ``iter_user_posts`` is ``nlp.user_posts.POST_FIELDS``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from storage.db import chunked, dict_rows, marks

_USER_POSTS_SQL = ("SELECT p.user_id, p.id, t.tokens, t.topics, t.mentions, p.created_at, p.reposts, p.comments,"
                   " p.likes, {clean}, p.topics FROM posts p JOIN post_tokens t ON t.post_id = p.id")


def count_posts(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]


def posts_per_user(db: sqlite3.Connection) -> list[tuple[int, int]]:
    """(user id, how many posts) of every user with a stored post, in the order ``iter_user_posts`` reads them."""
    return db.execute("SELECT user_id, COUNT(*) FROM posts WHERE user_id IS NOT NULL GROUP BY user_id"
                      " ORDER BY user_id").fetchall()


def user_posts_to_cut(db: sqlite3.Connection, user_ids: Sequence[int]) -> list[tuple]:
    """These users' posts as a first analysis cuts and sums them up in one
    pass, ordered by user: (user_id, post_id, text, content_hash,
    created_at, reposts, comments, likes, topics JSON)."""
    rows: list[tuple] = []
    for chunk in chunked(sorted(set(user_ids))):
        rows += db.execute("SELECT user_id, id, text, content_hash, created_at, reposts, comments, likes, topics"
                           " FROM posts WHERE user_id IN (" + marks(len(chunk)) + ") ORDER BY user_id, id",
                           chunk).fetchall()
    return rows


def iter_user_posts(db: sqlite3.Connection, batch: int = 20000, user_ids: Sequence[int] | None = None,
                    texts: bool = True) -> Iterator[list[tuple]]:
    """Posts with their cached tokens, ordered by user, in batches that never
    split a user: (user_id, post_id, tokens, topics, mentions, created_at,
    reposts, comments, likes, clean, topics JSON). Streams, so 1M posts fit in
    memory. With ``user_ids``: only those users' posts. ``texts=False``
    leaves the cleaned text out (None): only sentence vectors need it, and it
    is the longest column."""
    sql = _USER_POSTS_SQL.format(clean="t.clean" if texts else "NULL")
    if user_ids is not None:
        for chunk in chunked(sorted(set(user_ids))):
            rows = db.execute(sql + " WHERE p.user_id IN (" + marks(len(chunk)) + ") ORDER BY p.user_id, p.id",
                              chunk).fetchall()
            if rows:
                yield rows
        return
    cur = db.execute(sql + " WHERE p.user_id IS NOT NULL ORDER BY p.user_id, p.id")
    buf: list[tuple] = []
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            break
        buf.extend(rows)
        last = buf[-1][0]
        cut = len(buf)
        while cut > 0 and buf[cut - 1][0] == last:
            cut -= 1
        if cut == 0:
            continue
        yield buf[:cut]
        buf = buf[cut:]
    if buf:
        yield buf


def user_profiles(db: sqlite3.Connection, user_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """uid, name, bio, tags, followers, verified, last_seen of these users."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunked(list(user_ids)):
        cur = db.execute(
            "SELECT id, platform, uid, name, bio, tags, followers, posts_count, verified, last_seen FROM users"
            " WHERE id IN (" + marks(len(chunk)) + ")", chunk)
        for r in dict_rows(cur):
            try:
                r["tags"] = json.loads(r["tags"] or "[]")
            except ValueError:
                r["tags"] = []
            out[r["id"]] = r
    return out


def posts_text(db: sqlite3.Connection, post_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Post id -> pid, platform, text, created_at, author (uid, name) and total engagement."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunked(list(post_ids)):
        cur = db.execute(
            "SELECT p.id, p.pid, p.platform, p.text, p.created_at, p.user_id, u.uid, u.name AS user_name,"
            " COALESCE(p.reposts,0)+COALESCE(p.comments,0)+COALESCE(p.likes,0) AS engagement"
            " FROM posts p LEFT JOIN users u ON u.id = p.user_id WHERE p.id IN (" + marks(len(chunk)) + ")", chunk)
        for r in dict_rows(cur):
            out[r["id"]] = r
    return out


def member_posts_tokens(db: sqlite3.Connection, user_ids: Sequence[int], per_user: int = 50) -> list[tuple[int, int, str]]:
    """(user_id, post_id, tokens) of these users' posts (newest ``per_user`` each)."""
    out: list[tuple[int, int, str]] = []
    for u in user_ids:
        out.extend(db.execute(
            "SELECT p.user_id, p.id, t.tokens FROM posts p JOIN post_tokens t ON t.post_id = p.id WHERE p.user_id = ?"
            " ORDER BY p.id DESC LIMIT ?", (u, per_user)).fetchall())
    return out


def owners_of_posts(db: sqlite3.Connection, post_ids: Sequence[int]) -> set[int]:
    """The authors of these posts (an incremental run re-profiles them)."""
    out: set[int] = set()
    for chunk in chunked(list(post_ids)):
        out.update(r[0] for r in db.execute(
            "SELECT DISTINCT user_id FROM posts WHERE user_id IS NOT NULL AND id IN (" + marks(len(chunk)) + ")",
            chunk))
    return out


def unanalysed_user_ids(db: sqlite3.Connection) -> list[int]:
    """Users with posts the analysis has not seen yet (no user_stats row).
    Users it saw and left unassigned have a row (audience_id NULL)."""
    return [r[0] for r in db.execute(
        "SELECT DISTINCT p.user_id FROM posts p LEFT JOIN user_stats s ON s.user_id = p.user_id"
        " WHERE p.user_id IS NOT NULL AND s.user_id IS NULL")]
