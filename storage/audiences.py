"""All SQL of audience analysis: token cache, analysis runs, audiences,
memberships, per-user stats, relevance to seeded targets and history.

Why the token cache lives here and not in memory: tokenising is the slow
part of analysis, and most posts never change between hourly runs; keeping
tokens per post (keyed by the text's hash) makes re-analysis cost only the
new posts.

Tables other areas read (see 0001_initial.sql and 0020_audiences.sql):
``memberships`` (user_id, audience_id, score, tier, run_id), ``user_stats``,
``user_relevance``, ``audiences`` and ``audience_history``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any


from config.times import utcnow
from storage.db import chunked, dict_rows

META_DICT_KEY = "analysis.token_dictionary"


def text_hash(text: str) -> str:
    return hashlib.blake2b((text or "").encode("utf-8"), digest_size=10).hexdigest()


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- token cache

@dataclass
class CachedTokens:
    post_id: int
    tokens: str          # space-separated
    clean: str
    topics: str          # tab-separated
    mentions: str
    emoticons: str


def token_dictionary(db: sqlite3.Connection) -> tuple[str, list[str]] | None:
    """(fingerprint, words) of the user dictionary the cached tokens were made with."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (META_DICT_KEY,)).fetchone()
    if not row:
        return None
    data = json.loads(row[0])
    return data["fingerprint"], list(data["words"])


def set_token_dictionary(db: sqlite3.Connection, fingerprint: str, words: Sequence[str]) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (META_DICT_KEY, _dumps({"fingerprint": fingerprint, "words": sorted(words)})),
    )


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
    if len(words) > 20:
        # One pass over the texts beats one scan per word.
        import re

        pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
        hit = [pid for pid, text in db.execute("SELECT p.id, lower(p.text) FROM posts p JOIN post_tokens t"
                                                    " ON t.post_id = p.id") if text and pattern.search(text)]
        for chunk in chunked(hit, 900):
            db.execute("DELETE FROM post_tokens WHERE post_id IN (" + ",".join("?" * len(chunk)) + ")", chunk)
        return len(hit)
    n = 0
    for w in words:
        if not w:
            continue
        n += db.execute(
            "DELETE FROM post_tokens WHERE post_id IN (SELECT id FROM posts WHERE instr(lower(text), ?) > 0)", (w,)
        ).rowcount
    return n


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
    for chunk in chunked(ids, 900):
        for r in db.execute("SELECT id, text, content_hash FROM posts WHERE id IN (" + ",".join("?" * len(chunk)) + ")",
                                 chunk):
            found[r[0]] = (r[0], r[1] or "", r[2])
    return [found[i] for i in ids if i in found]


# ---------------------------------------------------------------- sentence vectors

def cleaned_texts(db: sqlite3.Connection, user_ids: Sequence[int] | None = None) -> Iterator[str]:
    """Each distinct cleaned text of the tokenised posts (of all users, or of these)."""
    if user_ids is None:
        for (clean,) in db.execute("SELECT DISTINCT clean FROM post_tokens"):
            yield clean or ""
        return
    ids = sorted(set(user_ids))
    for chunk in chunked(ids):
        for (clean,) in db.execute("SELECT DISTINCT t.clean FROM posts p JOIN post_tokens t ON t.post_id = p.id"
                                        " WHERE p.user_id IN (" + ",".join("?" * len(chunk)) + ")", chunk):
            yield clean or ""


def vector_keys(db: sqlite3.Connection, model: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT text_key FROM text_vectors WHERE model = ?", (model,))}


def count_vectors(db: sqlite3.Connection, model: str) -> int:
    return db.execute("SELECT COUNT(*) FROM text_vectors WHERE model = ?", (model,)).fetchone()[0]


def store_vectors(db: sqlite3.Connection, model: str, rows: Iterable[tuple[str, bytes]]) -> int:
    """rows: (text key, vector blob); an existing vector is kept (same text, same model, same vector)."""
    cur = db.executemany("INSERT OR IGNORE INTO text_vectors (text_key, model, vector) VALUES (?, ?, ?)",
                              ((k, model, v) for k, v in rows))
    return cur.rowcount


def load_vectors(db: sqlite3.Connection, model: str, keys: Iterable[str] | None = None) -> dict[str, bytes]:
    """Stored vectors of this model: all, or just these keys (an incremental run's few users)."""
    if keys is None:
        return dict(db.execute("SELECT text_key, vector FROM text_vectors WHERE model = ?", (model,)))
    wanted = sorted(set(keys))
    out: dict[str, bytes] = {}
    for chunk in chunked(wanted):
        out.update(db.execute("SELECT text_key, vector FROM text_vectors WHERE model = ? AND text_key IN ("
                                   + ",".join("?" * len(chunk)) + ")", (model, *chunk)))
    return out


def prune_vectors(db: sqlite3.Connection, model: str, keep: set[str]) -> int:
    """Drop this model's vectors of texts no post has any more (edited or deleted posts)."""
    gone = [k for k in vector_keys(db, model) if k not in keep]
    for chunk in chunked(gone):
        db.execute("DELETE FROM text_vectors WHERE model = ? AND text_key IN (" + ",".join("?" * len(chunk)) + ")",
                        (model, *chunk))
    return len(gone)


def drop_other_vectors(db: sqlite3.Connection, model: str) -> int:
    return db.execute("DELETE FROM text_vectors WHERE model != ?", (model,)).rowcount


def count_posts(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]


def member_posts_tokens(db: sqlite3.Connection, user_ids: Sequence[int], per_user: int = 50) -> list[tuple[int, int, str]]:
    """(user_id, post_id, tokens) of these users' posts (newest ``per_user`` each)."""
    out: list[tuple[int, int, str]] = []
    for u in user_ids:
        out.extend(db.execute(
            "SELECT p.user_id, p.id, t.tokens FROM posts p JOIN post_tokens t ON t.post_id = p.id WHERE p.user_id = ?"
            " ORDER BY p.id DESC LIMIT ?", (u, per_user)).fetchall())
    return out


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


def count_cached_tokens(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM post_tokens").fetchone()[0]


# -------------------------------------------------------------- reading input

_USER_POSTS_SQL = ("SELECT p.user_id, p.id, t.tokens, t.topics, t.mentions, p.created_at, p.reposts, p.comments,"
                   " p.likes, t.clean, p.topics FROM posts p JOIN post_tokens t ON t.post_id = p.id")


def iter_user_posts(db: sqlite3.Connection, batch: int = 20000,
                    user_ids: Sequence[int] | None = None) -> Iterator[list[tuple]]:
    """Posts with their cached tokens, ordered by user, in batches that never
    split a user: (user_id, post_id, tokens, topics, mentions, created_at,
    reposts, comments, likes, clean, topics JSON). Streams, so 1M posts fit in
    memory. With ``user_ids``: only those users' posts."""
    if user_ids is not None:
        ids = sorted(set(user_ids))
        for chunk in chunked(ids):
            rows = db.execute(_USER_POSTS_SQL + " WHERE p.user_id IN (" + ",".join("?" * len(chunk)) + ")"
                                   " ORDER BY p.user_id, p.id", chunk).fetchall()
            if rows:
                yield rows
        return
    cur = db.execute(_USER_POSTS_SQL + " WHERE p.user_id IS NOT NULL ORDER BY p.user_id, p.id")
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
    ids = list(user_ids)
    for chunk in chunked(ids, 900):
        cur = db.execute(
            "SELECT id, platform, uid, name, bio, tags, followers, posts_count, verified, last_seen FROM users"
            " WHERE id IN (" + ",".join("?" * len(chunk)) + ")", chunk)
        for r in dict_rows(cur):
            try:
                r["tags"] = json.loads(r["tags"] or "[]")
            except ValueError:
                r["tags"] = []
            out[r["id"]] = r
    return out


def posts_text(db: sqlite3.Connection, post_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    ids = list(post_ids)
    for chunk in chunked(ids, 900):
        cur = db.execute(
            "SELECT p.id, p.pid, p.platform, p.text, p.created_at, p.user_id, u.uid, u.name AS user_name,"
            " COALESCE(p.reposts,0)+COALESCE(p.comments,0)+COALESCE(p.likes,0) AS engagement"
            " FROM posts p LEFT JOIN users u ON u.id = p.user_id WHERE p.id IN (" + ",".join("?" * len(chunk)) + ")", chunk)
        for r in dict_rows(cur):
            out[r["id"]] = r
    return out


# --------------------------------------------------------------- runs

def start_analysis_run(db: sqlite3.Connection, params: dict[str, Any]) -> int:
    cur = db.execute("INSERT INTO analysis_runs (started_at, status, params) VALUES (?, 'running', ?)",
                          (utcnow(), _dumps(params)))
    return int(cur.lastrowid)


def finish_analysis_run(db: sqlite3.Connection, run_id: int, status: str, k: int | None = None,
                        n_users: int | None = None, n_posts: int | None = None,
                        metrics: dict[str, Any] | None = None) -> None:
    db.execute(
        "UPDATE analysis_runs SET ended_at = ?, status = ?, k = COALESCE(?, k), n_users = COALESCE(?, n_users),"
        " n_posts = COALESCE(?, n_posts), metrics = ? WHERE id = ?",
        (utcnow(), status, k, n_users, n_posts, _dumps(metrics or {}), run_id),
    )


def last_analysis_run(db: sqlite3.Connection) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT * FROM analysis_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None


# --------------------------------------------------------------- audiences

def current_memberships(db: sqlite3.Connection) -> dict[int, set[int]]:
    """audience_id -> member user ids, for active audiences (to match re-runs)."""
    out: dict[int, set[int]] = {}
    for uid, aid in db.execute(
            "SELECT m.user_id, m.audience_id FROM memberships m JOIN audiences a ON a.id = m.audience_id"
            " WHERE a.status = 'active'"):
        out.setdefault(aid, set()).add(uid)
    return out


def create_audience(db: sqlite3.Connection, run_id: int) -> int:
    now = utcnow()
    cur = db.execute("INSERT INTO audiences (created_run, updated_run, created_at, updated_at) VALUES (?, ?, ?, ?)",
                          (run_id, run_id, now, now))
    return int(cur.lastrowid)


def save_audience(db: sqlite3.Connection, audience_id: int, run_id: int, fields: dict[str, Any]) -> None:
    """Write an audience's descriptors; never touches the person-edited ``name``."""
    allowed = ("auto_name", "size", "share", "keywords", "topics", "mentions", "influencers", "sample_posts",
               "active_hours", "tier_counts", "centroid_terms", "x", "y", "target", "target_score", "mixed", "cohesion")
    sets, vals = [], []
    for k in allowed:
        if k in fields:
            v = fields[k]
            sets.append(f"{k} = ?")
            vals.append(_dumps(v) if isinstance(v, (list, dict)) else v)
    sets += ["status = 'active'", "updated_run = ?", "updated_at = ?"]
    vals += [run_id, utcnow(), audience_id]
    db.execute(f"UPDATE audiences SET {', '.join(sets)} WHERE id = ?", vals)


def retire_audiences(db: sqlite3.Connection, keep: Iterable[int], run_id: int) -> list[int]:
    """Audiences not found again in this run become 'retired' (kept for history, no members)."""
    keep = set(keep)
    gone = [r[0] for r in db.execute("SELECT id FROM audiences WHERE status = 'active'") if r[0] not in keep]
    for aid in gone:
        db.execute("UPDATE audiences SET status = 'retired', size = 0, share = 0, updated_run = ?, updated_at = ?"
                        " WHERE id = ?", (run_id, utcnow(), aid))
        db.execute("DELETE FROM memberships WHERE audience_id = ?", (aid,))
    return gone


def replace_memberships(db: sqlite3.Connection, rows: Iterable[tuple[int, int, float, str]], run_id: int) -> None:
    """rows: (user_id, audience_id, score, tier). Replaces all memberships: each user is in one audience."""
    db.execute("DELETE FROM memberships")
    db.executemany("INSERT INTO memberships (user_id, audience_id, score, tier, run_id) VALUES (?, ?, ?, ?, ?)",
                        ((u, a, float(s), t, run_id) for u, a, s, t in rows))


def record_history(db: sqlite3.Connection, audience_id: int, run_id: int, size: int, share: float,
                   joined: int, left: int) -> None:
    db.execute(
        "INSERT INTO audience_history (audience_id, run_id, size, share, joined, left, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (audience_id, run_id) DO UPDATE SET size = excluded.size, share = excluded.share,"
        " joined = excluded.joined, left = excluded.left",
        (audience_id, run_id, size, share, joined, left, utcnow()),
    )


def replace_user_stats(db: sqlite3.Connection, rows: Iterable[dict[str, Any]], run_id: int) -> None:
    """Everyone's stats from a full run: the old rows go, these come."""
    db.execute("DELETE FROM user_stats")
    upsert_user_stats(db, rows, run_id)


def replace_relevance(db: sqlite3.Connection, rows: Iterable[tuple], run_id: int) -> None:
    """rows: (user_id, target, score, explanation, terms[, facts]); the old rows go."""
    db.execute("DELETE FROM user_relevance")
    upsert_relevance(db, rows, run_id)


# --------------------------------------------------------------- reads for other areas

_JSON_AUDIENCE = ("keywords", "topics", "mentions", "influencers", "sample_posts", "active_hours", "tier_counts",
                  "centroid_terms")


def _audience_row(r: dict[str, Any]) -> dict[str, Any]:
    for k in _JSON_AUDIENCE:
        if k in r and isinstance(r[k], str):
            try:
                r[k] = json.loads(r[k])
            except ValueError:
                pass
    r["display_name"] = r.get("name") or r.get("auto_name") or f"audience {r['id']}"
    return r


def list_audiences(db: sqlite3.Connection, include_retired: bool = False) -> list[dict[str, Any]]:
    """All audiences, biggest first; JSON columns decoded; ``display_name`` = edited name or auto-name."""
    where = "" if include_retired else "WHERE status = 'active'"
    rows = dict_rows(db.execute(f"SELECT * FROM audiences {where} ORDER BY status = 'active' DESC, size DESC, id"))
    return [_audience_row(r) for r in rows]


def get_audience(db: sqlite3.Connection, audience_id: int) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT * FROM audiences WHERE id = ?", (audience_id,)))
    return _audience_row(rows[0]) if rows else None


def rename_audience(db: sqlite3.Connection, audience_id: int, name: str | None) -> bool:
    """Set (or with None/'' clear) the person-edited name. Re-runs never overwrite it."""
    cur = db.execute("UPDATE audiences SET name = ?, updated_at = ? WHERE id = ?",
                          (name or None, utcnow(), audience_id))
    return cur.rowcount == 1


def audience_history(db: sqlite3.Connection, audience_id: int) -> list[dict[str, Any]]:
    """[{run_id, size, share, joined, left, at}] oldest first."""
    return dict_rows(db.execute(
        "SELECT run_id, size, share, joined, left, at FROM audience_history WHERE audience_id = ? ORDER BY run_id",
        (audience_id,)))


def audience_members(db: sqlite3.Connection, audience_id: int, tier: str | None = None,
                     limit: int | None = None) -> list[dict[str, Any]]:
    """Members of an audience, best first (leader, engaged, potential; then score).

    Each dict: user_id, platform, uid, name, followers, verified, score (0..1
    closeness to the audience), tier, influence, activity, recency, relevance,
    tier_score, active_hours (24 ints), peak_hours (list of hours), x, y.
    """
    sql = ("SELECT m.user_id, u.platform, u.uid, u.name, u.followers, u.verified, m.score, m.tier,"
           " s.influence, s.activity, s.recency, s.relevance, s.tier_score, s.n_posts, s.active_hours, s.peak_hours,"
           " s.x, s.y FROM memberships m JOIN users u ON u.id = m.user_id LEFT JOIN user_stats s ON s.user_id = m.user_id"
           " WHERE m.audience_id = ?")
    args: list[Any] = [audience_id]
    if tier:
        sql += " AND m.tier = ?"
        args.append(tier)
    sql += (" ORDER BY CASE m.tier WHEN 'leader' THEN 0 WHEN 'engaged' THEN 1 ELSE 2 END,"
            " COALESCE(s.tier_score, m.score) DESC, m.user_id")
    if limit:
        sql += " LIMIT ?"
        args.append(int(limit))
    rows = dict_rows(db.execute(sql, args))
    for r in rows:
        for k in ("active_hours", "peak_hours"):
            r[k] = json.loads(r[k]) if r.get(k) else []
    return rows


def user_relevance(db: sqlite3.Connection, user_id: int) -> dict[str, tuple[float, str]]:
    """{target name: (score 0..1, explanation)} for one user (users.id); {} if not analysed."""
    return {t: (s, e) for t, s, e in db.execute(
        "SELECT target, score, explanation FROM user_relevance WHERE user_id = ?", (user_id,))}


def target_prospects(db: sqlite3.Connection, target: str, min_score: float = 0.0,
                     limit: int = 100) -> list[dict[str, Any]]:
    """Users most relevant to a seeded target audience, best first:
    user_id, uid, name, score, explanation, audience_id, tier."""
    return dict_rows(db.execute(
        "SELECT r.user_id, u.uid, u.name, r.score, r.explanation, m.audience_id, m.tier FROM user_relevance r"
        " JOIN users u ON u.id = r.user_id LEFT JOIN memberships m ON m.user_id = r.user_id"
        " WHERE r.target = ? AND r.score >= ? ORDER BY r.score DESC, r.user_id LIMIT ?",
        (target, min_score, limit)))


def user_stats(db: sqlite3.Connection, user_id: int) -> dict[str, Any] | None:
    """The user_stats row with JSON decoded, or None when the user was not analysed."""
    rows = dict_rows(db.execute("SELECT * FROM user_stats WHERE user_id = ?", (user_id,)))
    if not rows:
        return None
    r = rows[0]
    for k in ("active_hours", "peak_hours", "keywords"):
        r[k] = json.loads(r[k]) if r.get(k) else []
    return r


# --------------------------------------------------------------- stored model

def save_model(db: sqlite3.Connection, run_id: int, k: int, k_request: str, settings_key: str,
               n_users: int, n_posts: int, blob: bytes) -> None:
    db.execute("DELETE FROM analysis_models")
    db.execute(
        "INSERT INTO analysis_models (run_id, created_at, k, k_request, settings_key, n_users, n_posts, model)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (run_id, utcnow(), k, k_request, settings_key, n_users, n_posts, blob))


def load_model(db: sqlite3.Connection) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT * FROM analysis_models ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None


def note_incremental(db: sqlite3.Connection, model_id: int, changed_posts: int) -> None:
    db.execute("UPDATE analysis_models SET changed_posts = changed_posts + ?, incremental_runs = incremental_runs + 1"
                    " WHERE id = ?", (changed_posts, model_id))


def drop_model(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM analysis_models")


def unanalysed_user_ids(db: sqlite3.Connection) -> list[int]:
    """Users with posts the analysis has not seen yet (no user_stats row).
    Users it saw and left unassigned have a row (audience_id NULL)."""
    return [r[0] for r in db.execute(
        "SELECT DISTINCT p.user_id FROM posts p LEFT JOIN user_stats s ON s.user_id = p.user_id"
        " WHERE p.user_id IS NOT NULL AND s.user_id IS NULL")]


def unassigned_users(db: sqlite3.Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """Analysed users who fit no audience (user_stats.audience_id NULL), most
    relevant to a target first: user_id, platform, uid, name, n_posts,
    relevance, keywords (JSON decoded)."""
    sql = ("SELECT s.user_id, u.platform, u.uid, u.name, s.n_posts, s.relevance, s.keywords FROM user_stats s"
           " JOIN users u ON u.id = s.user_id WHERE s.audience_id IS NULL ORDER BY s.relevance DESC, s.user_id")
    rows = dict_rows(db.execute(sql + (" LIMIT ?" if limit else ""), (int(limit),) if limit else ()))
    for r in rows:
        r["keywords"] = json.loads(r["keywords"]) if r.get("keywords") else []
    return rows


def unassigned_count(db: sqlite3.Connection) -> int:
    """How many analysed users fit no audience."""
    return db.execute("SELECT COUNT(*) FROM user_stats WHERE audience_id IS NULL").fetchone()[0]


def owners_of_posts(db: sqlite3.Connection, post_ids: Sequence[int]) -> set[int]:
    out: set[int] = set()
    ids = list(post_ids)
    for chunk in chunked(ids, 900):
        out.update(r[0] for r in db.execute(
            "SELECT DISTINCT user_id FROM posts WHERE user_id IS NOT NULL AND id IN (" + ",".join("?" * len(chunk)) + ")",
            chunk))
    return out


def upsert_memberships(db: sqlite3.Connection, rows: Iterable[tuple[int, int | None, float, str]], run_id: int) -> None:
    """rows: (user_id, audience_id, score, tier) for some users; others keep
    theirs. audience_id None: the user fits no audience and is in none."""
    for u, a, s, t in rows:
        db.execute("DELETE FROM memberships WHERE user_id = ?", (u,))
        if a is None:
            continue
        db.execute("INSERT INTO memberships (user_id, audience_id, score, tier, run_id) VALUES (?, ?, ?, ?, ?)",
                        (u, a, float(s), t, run_id))


def upsert_user_stats(db: sqlite3.Connection, rows: Iterable[dict[str, Any]], run_id: int) -> None:
    now = utcnow()
    db.executemany(
        "INSERT OR REPLACE INTO user_stats (user_id, run_id, audience_id, n_posts, influence, activity, recency, relevance,"
        " tier_score, active_hours, peak_hours, keywords, x, y, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((r["user_id"], run_id, r.get("audience_id"), r["n_posts"], r["influence"], r["activity"], r["recency"],
          r["relevance"], r["tier_score"], _dumps(r["active_hours"]), _dumps(r["peak_hours"]),
          _dumps(r.get("keywords", [])), r["x"], r["y"], now) for r in rows),
    )


def upsert_relevance(db: sqlite3.Connection, rows: Iterable[tuple], run_id: int) -> None:
    """rows: (user_id, target, score, explanation, terms[, facts]); facts (0135) is what the explanation says, as JSON."""
    db.executemany(
        "INSERT OR REPLACE INTO user_relevance (user_id, target, score, explanation, terms, run_id, facts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((r[0], r[1], float(r[2]), r[3], _dumps(r[4]), run_id, _dumps(r[5]) if len(r) > 5 and r[5] else None)
         for r in rows),
    )


def refresh_audience_counts(db: sqlite3.Connection, run_id: int, before: dict[int, set[int]]) -> dict[int, tuple[int, int, int]]:
    """Recompute size, share and tier counts of active audiences from memberships
    and record history; returns {audience_id: (size, joined, left)}."""
    total = db.execute("SELECT COUNT(*) FROM memberships").fetchone()[0] or 1
    after = current_memberships(db)
    out = {}
    for aid in [r[0] for r in db.execute("SELECT id FROM audiences WHERE status = 'active'")]:
        members = after.get(aid, set())
        tiers = dict(db.execute("SELECT tier, COUNT(*) FROM memberships WHERE audience_id = ? GROUP BY tier", (aid,)).fetchall())
        tc = {t: int(tiers.get(t, 0)) for t in ("leader", "engaged", "potential")}
        size = len(members)
        db.execute("UPDATE audiences SET size = ?, share = ?, tier_counts = ?, updated_run = ?, updated_at = ? WHERE id = ?",
                        (size, round(size / total, 4), _dumps(tc), run_id, utcnow(), aid))
        old = before.get(aid, set())
        joined, left = len(members - old), len(old - members)
        record_history(db, aid, run_id, size, round(size / total, 4), joined, left)
        out[aid] = (size, joined, left)
    return out
