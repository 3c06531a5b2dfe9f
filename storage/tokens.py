"""The token cache: each post's cut words, cleaned text, topics and mentions.

Why stored and not kept in memory: cutting words is the slow part of an
analysis, and most posts never change between hourly runs; keeping tokens
per post (with the hash of the text they were cut from) makes re-analysis
cost only the new and edited posts. The user dictionary they were cut with
is kept beside them (``meta``), so a dictionary change re-cuts exactly the
posts it can affect.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence

from config.times import utcnow
from storage.db import chunked, marks

META_DICT_KEY = "analysis.token_dictionary"
MANY_WORDS = 20          # above this many changed words one regex pass over the texts beats a scan per word


def text_hash(text: str) -> str:
    """The key of a text in the token and vector caches."""
    return hashlib.blake2b((text or "").encode("utf-8"), digest_size=10).hexdigest()


def token_dictionary(db: sqlite3.Connection) -> tuple[str, list[str]] | None:
    """(fingerprint, words) of the user dictionary the cached tokens were made with."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (META_DICT_KEY,)).fetchone()
    if not row:
        return None
    data = json.loads(row[0])
    return data["fingerprint"], list(data["words"])


def set_token_dictionary(db: sqlite3.Connection, fingerprint: str, words: Sequence[str]) -> None:
    value = json.dumps({"fingerprint": fingerprint, "words": sorted(words)}, ensure_ascii=False, separators=(",", ":"))
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (META_DICT_KEY, value))


def clear_token_cache(db: sqlite3.Connection) -> int:
    return db.execute("DELETE FROM post_tokens").rowcount


def frequent_topics(db: sqlite3.Connection, min_posts: int = 3, max_len: int = 8, limit: int = 2000) -> list[str]:
    """Short all-Chinese ``#topic#`` names used by at least ``min_posts`` posts, most used first."""
    rows = db.execute(
        "SELECT lower(j.value) AS t, COUNT(*) AS n FROM posts p, json_each(p.topics) j"
        " WHERE p.topics != '[]' AND length(j.value) BETWEEN 2 AND ? GROUP BY t HAVING n >= ?"
        " ORDER BY n DESC, t LIMIT ?", (max_len, min_posts, limit)).fetchall()
    return [t for t, _ in rows if all("\u4e00" <= c <= "\u9fff" for c in t)]


def invalidate_tokens_containing(db: sqlite3.Connection, words: Iterable[str]) -> int:
    """Drop cached tokens of posts whose text contains any of these words
    (the user dictionary gained or lost them, so their cut may differ)."""
    words = [w for w in words if w]
    if len(words) > MANY_WORDS:
        pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
        hit = [pid for pid, text in db.execute("SELECT p.id, lower(p.text) FROM posts p JOIN post_tokens t"
                                               " ON t.post_id = p.id") if text and pattern.search(text)]
        for chunk in chunked(hit):
            db.execute("DELETE FROM post_tokens WHERE post_id IN (" + marks(len(chunk)) + ")", chunk)
        return len(hit)
    n = 0
    for w in words:
        n += db.execute(
            "DELETE FROM post_tokens WHERE post_id IN (SELECT id FROM posts WHERE instr(lower(text), ?) > 0)", (w,)
        ).rowcount
    return n


def count_untokenised(db: sqlite3.Connection) -> int:
    """How many posts have no cached tokens at all (a quick count: stale ones
    are found by ``pending_token_posts``)."""
    return db.execute("SELECT (SELECT COUNT(*) FROM posts) - (SELECT COUNT(*) FROM post_tokens)").fetchone()[0]


def pending_token_posts(db: sqlite3.Connection) -> list[int]:
    """Ids of posts to (re-)tokenise: no cached tokens, or a text that changed.

    A post whose content hash moved on only because counts changed keeps its
    tokens (its cached content hash is brought up to date here); the caller
    runs this inside a transaction.
    """
    pending: list[int] = []
    refresh: list[tuple[str, int]] = []
    cur = db.execute(
        "SELECT p.id, t.text_hash, p.content_hash, CASE WHEN t.post_id IS NULL THEN NULL ELSE p.text END"
        " FROM posts p LEFT JOIN post_tokens t ON t.post_id = p.id"
        " WHERE t.post_id IS NULL OR t.content_hash IS NOT p.content_hash")
    for pid, old_hash, chash, text in cur:
        if old_hash is not None and old_hash == text_hash(text):
            refresh.append((chash, pid))
        else:
            pending.append(pid)
    db.executemany("UPDATE post_tokens SET content_hash = ? WHERE post_id = ?", refresh)
    return pending


def post_texts_for_tokens(db: sqlite3.Connection, post_ids: Sequence[int]) -> list[tuple[int, str, str | None]]:
    """(post_id, text, content_hash) for these posts, in the given order."""
    found: dict[int, tuple[int, str, str | None]] = {}
    ids = list(post_ids)
    for chunk in chunked(ids):
        for r in db.execute("SELECT id, text, content_hash FROM posts WHERE id IN (" + marks(len(chunk)) + ")", chunk):
            found[r[0]] = (r[0], r[1] or "", r[2])
    return [found[i] for i in ids if i in found]


def store_tokens(db: sqlite3.Connection, rows: Iterable[tuple[int, str | None, str, str, str, str, str, str]]) -> int:
    """rows: (post_id, content_hash, text_hash, tokens, clean, topics, mentions, emoticons)."""
    now = utcnow()
    cur = db.executemany(
        "INSERT INTO post_tokens (post_id, content_hash, text_hash, tokens, clean, topics, mentions, emoticons, tokenized_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (post_id) DO UPDATE SET content_hash = excluded.content_hash,"
        " text_hash = excluded.text_hash, tokens = excluded.tokens, clean = excluded.clean, topics = excluded.topics,"
        " mentions = excluded.mentions, emoticons = excluded.emoticons, tokenized_at = excluded.tokenized_at",
        ((*r, now) for r in rows),
    )
    return cur.rowcount
