"""Per-user results of the analysis: stats (influence, activity, tiers' score,
active hours, keywords, map position) and relevance to each seeded target.

Why apart from the audiences: a user's stats and relevance exist whether or
not the user fits an audience (``audience_id`` NULL: unassigned), and the
planner, the report and ``audiences show`` read them per user.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from storage.audiences import compact_json
from config.times import utcnow
from storage.db import dict_rows


def replace_user_stats(db: sqlite3.Connection, rows: Iterable[dict[str, Any]], run_id: int) -> None:
    """Everyone's stats from a full run: the old rows go, these come."""
    db.execute("DELETE FROM user_stats")
    upsert_user_stats(db, rows, run_id)


def upsert_user_stats(db: sqlite3.Connection, rows: Iterable[dict[str, Any]], run_id: int) -> None:
    now = utcnow()
    db.executemany(
        "INSERT OR REPLACE INTO user_stats (user_id, run_id, audience_id, n_posts, influence, activity, recency, relevance,"
        " tier_score, active_hours, peak_hours, keywords, x, y, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((r["user_id"], run_id, r.get("audience_id"), r["n_posts"], r["influence"], r["activity"], r["recency"],
          r["relevance"], r["tier_score"], compact_json(r["active_hours"]), compact_json(r["peak_hours"]),
          compact_json(r.get("keywords", [])), r["x"], r["y"], now) for r in rows),
    )


def replace_relevance(db: sqlite3.Connection, rows: Iterable[tuple], run_id: int) -> None:
    """rows: (user_id, target, score, explanation, terms[, facts]); the old rows go."""
    db.execute("DELETE FROM user_relevance")
    upsert_relevance(db, rows, run_id)


def upsert_relevance(db: sqlite3.Connection, rows: Iterable[tuple], run_id: int) -> None:
    """rows: (user_id, target, score, explanation, terms[, facts]); facts (0135) is what the explanation says, as JSON."""
    db.executemany(
        "INSERT OR REPLACE INTO user_relevance (user_id, target, score, explanation, terms, run_id, facts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((r[0], r[1], float(r[2]), r[3], compact_json(r[4]), run_id, compact_json(r[5]) if len(r) > 5 and r[5] else None)
         for r in rows),
    )


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


def unassigned_count(db: sqlite3.Connection) -> int:
    """How many analysed users fit no audience."""
    return db.execute("SELECT COUNT(*) FROM user_stats WHERE audience_id IS NULL").fetchone()[0]
