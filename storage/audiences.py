"""Audiences and their members: descriptors, memberships, history.

Why ids outlive runs: each analysis matches its clusters to the stored
audiences by members and words, so a person's edited name, the history of
sizes and who joined or left stay with the audience; an audience not found
again is retired, not deleted.

Tables other areas read (see 0001_initial.sql and 0020_audiences.sql):
``memberships`` (user_id, audience_id, score, tier, run_id), ``audiences``
and ``audience_history``; per-user stats and relevance are in
``storage.user_results``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from config.times import utcnow
from storage.db import dict_rows

TIERS = ("leader", "engaged", "potential")


def compact_json(v: Any) -> str:
    """The JSON the analysis tables store (UTF-8 text as is, no spaces)."""
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------- written by the analysis

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
            vals.append(compact_json(v) if isinstance(v, (list, dict)) else v)
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


def record_history(db: sqlite3.Connection, audience_id: int, run_id: int, size: int, share: float,
                   joined: int, left: int) -> None:
    db.execute(
        "INSERT INTO audience_history (audience_id, run_id, size, share, joined, left, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (audience_id, run_id) DO UPDATE SET size = excluded.size, share = excluded.share,"
        " joined = excluded.joined, left = excluded.left",
        (audience_id, run_id, size, share, joined, left, utcnow()),
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
        tc = {t: int(tiers.get(t, 0)) for t in TIERS}
        size = len(members)
        db.execute("UPDATE audiences SET size = ?, share = ?, tier_counts = ?, updated_run = ?, updated_at = ? WHERE id = ?",
                   (size, round(size / total, 4), compact_json(tc), run_id, utcnow(), aid))
        old = before.get(aid, set())
        joined, left = len(members - old), len(old - members)
        record_history(db, aid, run_id, size, round(size / total, 4), joined, left)
        out[aid] = (size, joined, left)
    return out


def replace_memberships(db: sqlite3.Connection, rows: Iterable[tuple[int, int, float, str]], run_id: int) -> None:
    """rows: (user_id, audience_id, score, tier). Replaces all memberships: each user is in one audience."""
    db.execute("DELETE FROM memberships")
    db.executemany("INSERT INTO memberships (user_id, audience_id, score, tier, run_id) VALUES (?, ?, ?, ?, ?)",
                   ((u, a, float(s), t, run_id) for u, a, s, t in rows))


def upsert_memberships(db: sqlite3.Connection, rows: Iterable[tuple[int, int | None, float, str]], run_id: int) -> None:
    """rows: (user_id, audience_id, score, tier) for some users; others keep
    theirs. audience_id None: the user fits no audience and is in none."""
    for u, a, s, t in rows:
        db.execute("DELETE FROM memberships WHERE user_id = ?", (u,))
        if a is None:
            continue
        db.execute("INSERT INTO memberships (user_id, audience_id, score, tier, run_id) VALUES (?, ?, ?, ?, ?)",
                   (u, a, float(s), t, run_id))


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
