"""Idempotent upserts of users and posts, and the reads that go with them.

Why content hashes: crawling or importing the same data twice must change
nothing, and a re-crawl must update only what really changed (counts, text
edits). Each row keeps a hash of its parsed fields; an upsert with the same
hash is a no-op, so repeated runs leave the file byte-for-byte the same rows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any


from config.times import utcnow
from storage.db import chunked, dict_rows, marks
from storage.records import Post, UpsertCounts, User

_USER_FIELDS = ("name", "bio", "tags", "followers", "following", "posts_count", "verified",
                "verified_reason", "gender", "location", "profile_url", "avatar_url")
_POST_FIELDS = ("uid", "kind", "text", "created_at", "topics", "mentions", "reposts", "comments", "likes",
                "parent_pid", "repost_of", "group_id", "region", "url")
# Facts about a post that never change once known; a copy without them keeps the stored value.
_STICKY_FIELDS = ("repost_of", "group_id")
# Details added by migration 0090. They join the content hash only when one is
# known, so rows stored before them (and payloads that lack them) keep their
# hash and a re-import still changes nothing.
_USER_EXTRA = ("verified_type", "ip_location", "birthday", "education", "company", "registered_at", "is_bot",
               "counts_floor")
_POST_EXTRA = ("reply_to", "thread_root", "source", "pic_count", "pic_urls", "video_type", "video_plays",
               "edit_count", "language", "counts_floor")


_KEPT_POST_FIELDS = _STICKY_FIELDS + _POST_EXTRA
_SELECT_KEPT = "SELECT id, content_hash, " + ", ".join(_KEPT_POST_FIELDS) + " FROM posts WHERE platform = ? AND pid = ?"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _hash(values: Sequence[Any]) -> str:
    return hashlib.blake2b(_dumps(list(values)).encode("utf-8"), digest_size=12).hexdigest()


def _floor(fields: list[str]) -> str | None:
    """Which counts are lower bounds ("100万+"), as a JSON list; None when all are exact or unknown."""
    return _dumps(sorted(set(fields))) if fields else None


# An upsert keeps a stored value where the new copy has none (None, or no tags);
# except counts_floor: a copy that gives counts also says whether they are lower
# bounds, so its counts_floor (even None: all exact) always wins.


def _with_extra(fields: tuple[str, ...], extra: tuple[str, ...], vals: dict[str, Any]) -> list[Any]:
    """The values the content hash covers (see _USER_EXTRA)."""
    out = [vals[k] for k in fields]
    more = [vals[k] for k in extra]
    if more.count(None) != len(more):
        out.append(dict(zip(extra, more)))
    return out


def _user_values(u: User) -> dict[str, Any]:
    return {
        "name": u.name, "bio": u.bio, "tags": _dumps(list(u.tags or [])), "followers": u.followers,
        "following": u.following, "posts_count": u.posts_count,
        "verified": None if u.verified is None else int(bool(u.verified)),
        "verified_reason": u.verified_reason, "gender": u.gender, "location": u.location,
        "profile_url": u.profile_url, "avatar_url": u.avatar_url,
        "verified_type": u.verified_type, "ip_location": u.ip_location, "birthday": u.birthday,
        "education": u.education, "company": u.company, "registered_at": u.registered_at,
        "is_bot": None if u.is_bot is None else int(bool(u.is_bot)),
        "counts_floor": _floor(list(u.counts_floor or [])),
    }


def upsert_users(db: sqlite3.Connection, users: Iterable[User], now: str | None = None) -> UpsertCounts:
    """Insert new users, update changed ones; fields a payload lacks (None) never
    overwrite what we already know (a post's author stub carries less than a profile)."""
    now = now or utcnow()
    counts = UpsertCounts()
    conn = db
    for u in users:
        vals = _user_values(u)
        cols = _USER_FIELDS + _USER_EXTRA
        row = conn.execute(
            "SELECT id, content_hash, " + ", ".join(cols) + " FROM users WHERE platform = ? AND uid = ?",
            (u.platform, u.uid),
        ).fetchone()
        if row is None:
            merged = vals
        else:
            counted = vals["followers"] is not None or vals["following"] is not None or vals["posts_count"] is not None
            merged = dict(vals)
            for k, old in zip(cols, row[2:]):
                v = vals[k]
                # a missing value (or no tags) keeps what we know (see the counts_floor note above)
                if (v is None and not (counted and k == "counts_floor")) or (k == "tags" and v == "[]"):
                    merged[k] = old
        h = _hash(_with_extra(_USER_FIELDS, _USER_EXTRA, merged))
        raw = None if u.raw is None else _dumps(u.raw)
        fetched = now if u.full_profile else None
        if row is None:
            conn.execute(
                "INSERT INTO users (platform, uid, " + ", ".join(cols) + ", raw, content_hash, profile_fetched_at, first_seen)"
                " VALUES (?, ?, " + marks(len(cols)) + ", ?, ?, ?, ?)",
                (u.platform, u.uid, *[merged[k] for k in cols], raw, h, fetched, now),
            )
            counts.new += 1
        elif row[1] != h:
            sets = ", ".join(f"{k} = ?" for k in cols)
            conn.execute(
                f"UPDATE users SET {sets}, content_hash = ?, raw = COALESCE(?, raw),"
                " profile_fetched_at = COALESCE(?, profile_fetched_at) WHERE id = ?",
                (*[merged[k] for k in cols], h, raw if u.full_profile or raw else None, fetched, row[0]),
            )
            counts.updated += 1
        else:
            if u.full_profile:
                conn.execute("UPDATE users SET profile_fetched_at = ? WHERE id = ? AND profile_fetched_at IS NULL", (now, row[0]))
            counts.unchanged += 1
    return counts


def _post_values(p: Post) -> dict[str, Any]:
    return {
        "uid": p.uid, "kind": p.kind, "text": p.text or "", "created_at": p.created_at,
        "topics": _dumps(list(p.topics or [])), "mentions": _dumps(list(p.mentions or [])),
        "reposts": p.reposts, "comments": p.comments, "likes": p.likes, "parent_pid": p.parent_pid,
        "repost_of": p.repost_of, "group_id": p.group_id, "region": p.region, "url": p.url,
        "reply_to": p.reply_to, "thread_root": p.thread_root, "source": p.source,
        "pic_count": None if p.pic_urls is None else len(p.pic_urls),
        "pic_urls": None if p.pic_urls is None else _dumps(list(p.pic_urls)),
        "video_type": p.video_type, "video_plays": p.video_plays, "edit_count": p.edit_count, "language": p.language,
        "counts_floor": _floor(list(p.counts_floor or [])),
    }


def upsert_posts(
    db: sqlite3.Connection,
    posts: Iterable[Post],
    query: str | None = None,
    run_id: int | None = None,
    now: str | None = None,
) -> tuple[UpsertCounts, UpsertCounts]:
    """Upsert posts (and their inline authors). Returns (post counts, user counts).

    The caller owns the transaction: wrap a page in ``storage.db.transaction``
    so a crash never leaves half a page behind.
    """
    now = now or utcnow()
    conn = db
    pc, uc = UpsertCounts(), UpsertCounts()
    posts = list(posts)
    authors = {}
    for p in posts:
        if p.author is not None:
            authors[(p.author.platform, p.author.uid)] = p.author
    uc += upsert_users(db, authors.values(), now=now)
    for p in posts:
        vals = _post_values(p)
        raw = None if p.raw is None else _dumps(p.raw)
        stub = conn.execute(
            "INSERT INTO users (platform, uid, first_seen) VALUES (?, ?, ?) ON CONFLICT (platform, uid) DO NOTHING",
            (p.platform, p.uid, now),
        )
        uc.new += stub.rowcount
        row = conn.execute(_SELECT_KEPT, (p.platform, p.pid)).fetchone()
        if row is not None:
            # Being a repost, or a group's post, never changes, but a copy may not
            # show it: an original embedded in someone's repost carries no
            # retweeted_status (or group link) of its own. Keeping the known value
            # makes the row the same whichever copy came last.
            # Details (0090) a copy lacks keep their stored value the same way.
            counted = vals["reposts"] is not None or vals["comments"] is not None or vals["likes"] is not None
            for i, name in enumerate(_KEPT_POST_FIELDS, start=2):
                if vals[name] is None and not (counted and name == "counts_floor"):   # see the counts_floor note above
                    vals[name] = row[i]
        cols = _POST_FIELDS + _POST_EXTRA
        h = _hash(_with_extra(_POST_FIELDS, _POST_EXTRA, vals))
        if row is None:
            cur = conn.execute(
                "INSERT INTO posts (platform, pid, user_id, " + ", ".join(cols) + ", raw, content_hash, first_seen, updated_at)"
                " VALUES (?, ?, (SELECT id FROM users WHERE platform = ? AND uid = ?), "
                + marks(len(cols)) + ", ?, ?, ?, ?)",
                (p.platform, p.pid, p.platform, p.uid, *[vals[k] for k in cols], raw, h, now, now),
            )
            post_id = cur.lastrowid
            pc.new += 1
        else:
            post_id = row[0]
            if row[1] != h:
                sets = ", ".join(f"{k} = ?" for k in cols)
                conn.execute(
                    f"UPDATE posts SET {sets}, raw = COALESCE(?, raw), content_hash = ?, updated_at = ? WHERE id = ?",
                    (*[vals[k] for k in cols], raw, h, now, post_id),
                )
                pc.updated += 1
            else:
                pc.unchanged += 1
        if p.created_at:
            conn.execute(
                "UPDATE users SET last_seen = ? WHERE platform = ? AND uid = ? AND (last_seen IS NULL OR last_seen < ?)",
                (p.created_at, p.platform, p.uid, p.created_at),
            )
        if query:
            conn.execute(
                "INSERT INTO post_queries (post_id, query, run_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (post_id, query, run_id),
            )
    return pc, uc


def known_post_ids(db: sqlite3.Connection, platform: str, pids: Sequence[str]) -> set[str]:
    """Which of these platform post ids are already stored (for incremental stops)."""
    found: set[str] = set()
    pids = list(pids)
    for chunk in chunked(pids):
        q = "SELECT pid FROM posts WHERE platform = ? AND pid IN (" + marks(len(chunk)) + ")"
        found.update(r[0] for r in db.execute(q, (platform, *chunk)))
    return found


def search_posts(db: sqlite3.Connection, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Full-text search over post text; substrings of 3+ characters use the
    trigram index, shorter ones (common in Chinese: 健身) fall back to LIKE."""
    cols = "p.id, p.platform, p.pid, p.uid, u.name AS user_name, p.text, p.created_at"
    if len(text) >= 3:
        phrase = '"' + text.replace('"', '""') + '"'
        sql = (f"SELECT {cols} FROM posts_fts f JOIN posts p ON p.id = f.rowid LEFT JOIN users u ON u.id = p.user_id"
               " WHERE posts_fts MATCH ? ORDER BY p.created_at DESC LIMIT ?")
        args: tuple = (phrase, limit)
    else:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = (f"SELECT {cols} FROM posts p LEFT JOIN users u ON u.id = p.user_id"
               " WHERE p.text LIKE ? ESCAPE '\\' ORDER BY p.created_at DESC LIMIT ?")
        args = (f"%{escaped}%", limit)
    return dict_rows(db.execute(sql, args))


def table_counts(db: sqlite3.Connection, tables: Sequence[str] = ("users", "posts")) -> dict[str, int]:
    out = {}
    for t in tables:
        try:
            out[t] = db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
        except sqlite3.OperationalError:
            out[t] = 0
    return out
