"""All SQL for engagement: the queue, its audit log, opt-outs, the blocklist,
the send log and outcomes.

Why one module: the rules in ``bot.engage.policy`` and the state machine in
``bot.engage.queue_ops`` must read exactly the same numbers the review page and the
report show, so every count is defined once, here. Callers own transactions
(``storage.db.transaction``); nothing here commits on its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from storage.db import chunked, dict_rows, marks


# Statuses that reserve a touch when planning (something is or will be said).
PLANNED_STATUSES = ("pending", "approved", "sending", "sent", "unknown")
# Statuses that mean a request reached (or may have reached) the platform.
TOUCH_STATUSES = ("sending", "sent", "unknown")
OPEN_STATUSES = ("pending", "approved")
# done / dismissed: a follow suggestion a person settled by hand (migration-free: status is free text).
ALL_STATUSES = ("pending", "approved", "rejected", "expired", "sending", "sent", "failed", "unknown", "cancelled",
                "done", "dismissed")
# Items a reviewer can no longer change (finished, or in the sender's hands): read-only on the page and API.
READONLY_STATUSES = ("rejected", "expired", "sent", "failed", "cancelled", "done", "dismissed", "unknown", "sending")


@dataclass
class QueueItem:
    id: int
    kind: str
    status: str
    source: str | None
    platform: str | None
    post_id: int | None
    target_user_id: int | None
    audience_id: int | None
    template: str | None
    variant: int | None
    text: str | None
    score: float | None
    reason: str | None
    scheduled_at: str | None
    expires_at: str | None
    dedupe_key: str | None
    created_at: str
    updated_at: str | None
    target_uid: str | None
    post_pid: str | None
    text_key: str | None
    approved_by: str | None
    approved_at: str | None
    reviewed_by: str | None
    sent_at: str | None
    remote_id: str | None
    attempts: int
    send_mode: str | None
    last_error: str | None
    explanation: str | None
    target: str | None = None               # 0080: the declared target the action serves
    target_relevance: float | None = None   # 0080: the user's relevance to it when planned
    draft_reason: str | None = None         # 0080: JSON, why the draft reads as it does
    explanation_facts: str | None = None    # 0135: JSON, the facts the explanation is rendered from


_ITEM_COLUMNS = tuple(f.name for f in fields(QueueItem))
_UPDATABLE = frozenset(_ITEM_COLUMNS) - {"id", "created_at", "dedupe_key"}


def _in(values: Sequence[Any]) -> str:
    """``(?, ?, ?)`` for ``IN`` over these values."""
    return f"({marks(len(values))})"


# -- queue items -----------------------------------------------------------

def insert_item(db, values: dict[str, Any]) -> int | None:
    """Insert a planned item; None when its dedupe key already exists (re-planning is idempotent)."""
    cols = [c for c in values if c in _ITEM_COLUMNS and c != "id"]
    sql = (f"INSERT INTO queue ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
           " ON CONFLICT (dedupe_key) DO NOTHING")
    cur = db.execute(sql, [values[c] for c in cols])
    return int(cur.lastrowid) if cur.rowcount else None


def get_item(db, item_id: int) -> QueueItem | None:
    row = db.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM queue WHERE id = ?", (item_id,)).fetchone()
    return QueueItem(*row) if row else None


def update_item(db, item_id: int, values: dict[str, Any]) -> None:
    bad = set(values) - _UPDATABLE
    if bad:
        raise ValueError(f"not updatable queue columns: {sorted(bad)}")
    sets = ", ".join(f"{c} = ?" for c in values)
    db.execute(f"UPDATE queue SET {sets} WHERE id = ?", (*values.values(), item_id))


def items_with_status(db, statuses: Sequence[str], order: str = "id") -> list[QueueItem]:
    order_sql = {"id": "id", "scheduled": "scheduled_at, id"}[order]
    cur = db.execute(
        f"SELECT {', '.join(_ITEM_COLUMNS)} FROM queue WHERE status IN {_in(statuses)} ORDER BY {order_sql}", tuple(statuses))
    return [QueueItem(*r) for r in cur]


def due_items(db, now_iso: str) -> list[QueueItem]:
    """Approved items whose scheduled time has come, earliest first."""
    cur = db.execute(
        f"SELECT {', '.join(_ITEM_COLUMNS)} FROM queue WHERE status = 'approved'"
        " AND (scheduled_at IS NULL OR scheduled_at <= ?) ORDER BY scheduled_at, id", (now_iso,))
    return [QueueItem(*r) for r in cur]


def pending_past_expiry(db, now_iso: str) -> list[int]:
    cur = db.execute(
        "SELECT id FROM queue WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at < ? ORDER BY id", (now_iso,))
    return [r[0] for r in cur]


def open_items_for_user(db, platform: str, uid: str) -> list[int]:
    cur = db.execute(
        f"SELECT id FROM queue WHERE platform = ? AND target_uid = ? AND status IN {_in(OPEN_STATUSES)} ORDER BY id",
        (platform, uid, *OPEN_STATUSES))
    return [r[0] for r in cur]


_LIST_SELECT = """
SELECT q.id, q.kind, q.status, q.source, q.platform, q.template, q.variant, q.text, q.score, q.reason,
       q.explanation, q.scheduled_at, q.expires_at, q.created_at, q.updated_at, q.approved_by, q.approved_at,
       q.reviewed_by, q.sent_at, q.remote_id, q.attempts, q.last_error, q.target_uid, q.post_pid, q.audience_id,
       q.target, q.target_relevance, q.draft_reason, q.target_user_id, q.explanation_facts,
       COALESCE(a.name, NULLIF(a.auto_name, ''), CASE WHEN q.audience_id IS NULL THEN '(groups)' ELSE 'audience ' || q.audience_id END) AS audience,
       m.tier AS tier, m.score AS relevance, a.target AS audience_target,
       ur.score AS target_relevance_stored, ur.explanation AS relevance_explanation, ur.terms AS relevance_terms,
       ur.facts AS relevance_facts,
       u.name AS user_name, u.bio AS user_bio, u.followers AS user_followers, u.location AS user_location,
       u.verified AS user_verified, u.verified_reason AS user_verified_reason, u.profile_url AS user_url,
       p.text AS post_text, p.created_at AS post_created_at, p.likes AS post_likes, p.comments AS post_comments,
       p.reposts AS post_reposts, p.url AS post_url, p.topics AS post_topics, p.group_id AS post_group
FROM queue q
LEFT JOIN posts p ON p.id = q.post_id
LEFT JOIN users u ON u.id = q.target_user_id
LEFT JOIN audiences a ON a.id = q.audience_id
LEFT JOIN memberships m ON m.user_id = q.target_user_id AND m.audience_id = q.audience_id
LEFT JOIN user_relevance ur ON ur.user_id = q.target_user_id AND ur.target = a.target
"""


SORTS = {
    "audience": "audience, q.score DESC, q.id",
    "score": "q.score DESC, q.id",
    "time": "COALESCE(p.created_at, q.created_at) DESC, q.id DESC",
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _item_filters(status: str | None, audience: str | None, kind: str | None, search: str | None,
                  since: str | None, until: str | None) -> tuple[str, list[Any]]:
    where, args = [], []
    if status:
        where.append("q.status = ?")
        args.append(status)
    if kind:
        where.append("q.kind = ?")
        args.append(kind)
    if audience:
        where.append("(a.name = ? OR a.auto_name = ? OR CAST(q.audience_id AS TEXT) = ?"
                     " OR (q.audience_id IS NULL AND ? = '(groups)'))")
        args += [audience, audience, audience, audience]
    if search:
        like = f"%{_escape_like(search)}%"
        where.append("(p.text LIKE ? ESCAPE '\\' OR q.text LIKE ? ESCAPE '\\' OR u.name LIKE ? ESCAPE '\\')")
        args += [like, like, like]
    if since:
        where.append("julianday(COALESCE(p.created_at, q.created_at)) >= julianday(?)")
        args.append(since)
    if until:
        where.append("julianday(COALESCE(p.created_at, q.created_at)) < julianday(?)")
        args.append(until)
    return (" WHERE " + " AND ".join(where) if where else ""), args


def list_items(db, status: str | None = None, audience: str | None = None, kind: str | None = None,
               limit: int = 1000, *, offset: int = 0, sort: str = "audience", search: str | None = None,
               since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """Queue rows with the context a reviewer needs (post, profile, tier).

    ``search`` looks in the post, the draft and the person's name; ``since``/``until``
    (UTC ISO) bound the post's time; ``sort`` is audience (grouped), score or time.
    """
    where, args = _item_filters(status, audience, kind, search, since, until)
    sql = _LIST_SELECT + where + f" ORDER BY {SORTS.get(sort, SORTS['audience'])} LIMIT ? OFFSET ?"
    return dict_rows(db.execute(sql, (*args, limit, max(0, offset))))


def count_items(db, status: str | None = None, audience: str | None = None, kind: str | None = None, *,
                search: str | None = None, since: str | None = None, until: str | None = None) -> int:
    """How many rows ``list_items`` would return without a limit (the page's "of N")."""
    where, args = _item_filters(status, audience, kind, search, since, until)
    sql = "SELECT COUNT(*) FROM (" + _LIST_SELECT + where + ")"
    return int(db.execute(sql, args).fetchone()[0])


def thread_comments(db, platform: str | None, post_pid: str | None, limit: int = 5) -> list[dict[str, Any]]:
    """The most-liked stored comments on a post (the conversation a reply joins)."""
    if not post_pid:
        return []
    return dict_rows(db.execute(
        "SELECT c.pid, c.uid, COALESCE(u.name, c.uid) AS user_name, c.text, c.likes, c.created_at FROM posts c"
        " LEFT JOIN users u ON u.id = c.user_id WHERE c.kind = 'comment' AND c.platform = ? AND c.parent_pid = ?"
        " ORDER BY COALESCE(c.likes, 0) DESC, c.id LIMIT ?", (platform, post_pid, limit)))


def recent_posts_of(db, user_id: int | None, exclude_pid: str | None = None, limit: int = 3) -> list[dict[str, Any]]:
    """The person's newest stored posts besides the one the item answers (by users.id: indexed)."""
    if not user_id:
        return []
    return dict_rows(db.execute(
        "SELECT pid, text, created_at, likes, comments, reposts FROM posts WHERE user_id = ?"
        " AND kind = 'post' AND pid != ? ORDER BY created_at DESC, id DESC LIMIT ?",
        (user_id, exclude_pid or "", limit)))


def last_audit(db, item_id: int) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT * FROM audit_log WHERE item_id = ? ORDER BY id DESC LIMIT 1", (item_id,)))
    return rows[0] if rows else None


def item_detail(db, item_id: int) -> dict[str, Any] | None:
    rows = dict_rows(db.execute(_LIST_SELECT + " WHERE q.id = ?", (item_id,)))
    return rows[0] if rows else None


def queue_row(db, item_id: int) -> dict[str, Any]:
    """Every column of one queue row, including ones later migrations add (read with ``.get``)."""
    rows = dict_rows(db.execute("SELECT * FROM queue WHERE id = ?", (item_id,)))
    return rows[0] if rows else {}


def audience_names(db) -> list[str]:
    cur = db.execute(
        "SELECT DISTINCT COALESCE(a.name, NULLIF(a.auto_name, ''), 'audience ' || a.id) FROM queue q"
        " JOIN audiences a ON a.id = q.audience_id ORDER BY 1")
    return [r[0] for r in cur]


def queue_counts(db) -> dict[str, int]:
    """Items per status (every status present, zeros included)."""
    counts = {s: 0 for s in ALL_STATUSES}
    for status, n in db.execute("SELECT status, COUNT(*) FROM queue GROUP BY status"):
        counts[status] = n
    return counts


# -- audit log -------------------------------------------------------------

def append_audit(db, at: str, actor: str, action: str, item_id: int | None, from_status: str | None = None,
                 to_status: str | None = None, text_before: str | None = None, text_after: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
    db.execute(
        "INSERT INTO audit_log (at, actor, action, item_id, from_status, to_status, text_before, text_after, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (at, actor, action, item_id, from_status, to_status, text_before, text_after,
         json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)),
    )


def audit_for(db, item_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    if item_id is None:
        cur = db.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
    else:
        cur = db.execute("SELECT * FROM audit_log WHERE item_id = ? ORDER BY id", (item_id,))
    return dict_rows(cur)


# -- counts the policy rules are built on -----------------------------------

def count_user_touches(db, platform: str, uid: str, since_iso: str, statuses: Sequence[str],
                       exclude_id: int | None = None) -> int:
    """Items to this user whose touch time (sent, else scheduled, else created) is at or after ``since``."""
    return db.execute(
        f"SELECT COUNT(*) FROM queue WHERE platform = ? AND target_uid = ? AND kind != 'follow'"
        f" AND status IN {_in(statuses)} AND COALESCE(sent_at, scheduled_at, created_at) >= ? AND id != ?",
        (platform, uid, *statuses, since_iso, exclude_id or -1)).fetchone()[0]


def count_post_items(db, post_id: int, statuses: Sequence[str], exclude_id: int | None = None) -> int:
    return db.execute(
        f"SELECT COUNT(*) FROM queue WHERE post_id = ? AND kind != 'follow' AND status IN {_in(statuses)} AND id != ?",
        (post_id, *statuses, exclude_id or -1)).fetchone()[0]


def count_actions_between(db, start_iso: str, end_iso: str, statuses: Sequence[str], source: str | None,
                          exclude_id: int | None = None) -> int:
    """Actions of one sending account whose touch time falls in [start, end)."""
    return db.execute(
        f"SELECT COUNT(*) FROM queue WHERE kind != 'follow' AND status IN {_in(statuses)}"
        " AND COALESCE(source, '') = ? AND COALESCE(sent_at, scheduled_at, created_at) >= ?"
        " AND COALESCE(sent_at, scheduled_at, created_at) < ? AND id != ?",
        (*statuses, source or "", start_iso, end_iso, exclude_id or -1)).fetchone()[0]


def last_send_started(db, source: str | None) -> str | None:
    """When the newest request of this account started (the spacing rule's anchor)."""
    return db.execute(
        f"SELECT MAX(sent_at) FROM queue WHERE status IN {_in(TOUCH_STATUSES)} AND COALESCE(source, '') = ?",
        (*TOUCH_STATUSES, source or "")).fetchone()[0]


def neighbour_times(db, source: str | None, at_iso: str, statuses: Sequence[str],
                    exclude_id: int | None = None) -> tuple[str | None, str | None]:
    """The nearest planned/sent action times of this account at-or-before and after ``at``."""
    base = (f"FROM queue WHERE kind != 'follow' AND status IN {_in(statuses)} AND COALESCE(source, '') = ?"
            " AND COALESCE(sent_at, scheduled_at) IS NOT NULL AND id != ?")
    args = (*statuses, source or "", exclude_id or -1)
    conn = db
    before = conn.execute(f"SELECT MAX(COALESCE(sent_at, scheduled_at)) {base} AND COALESCE(sent_at, scheduled_at) <= ?",
                          (*args, at_iso)).fetchone()[0]
    after = conn.execute(f"SELECT MIN(COALESCE(sent_at, scheduled_at)) {base} AND COALESCE(sent_at, scheduled_at) > ?",
                         (*args, at_iso)).fetchone()[0]
    return before, after


def count_text_uses(db, text_key: str, since_iso: str, statuses: Sequence[str], exclude_id: int | None = None) -> int:
    return db.execute(
        f"SELECT COUNT(*) FROM queue WHERE text_key = ? AND status IN {_in(statuses)}"
        " AND COALESCE(sent_at, scheduled_at, created_at) >= ? AND id != ?",
        (text_key, *statuses, since_iso, exclude_id or -1)).fetchone()[0]


# -- opt-outs and blocklist --------------------------------------------------

def is_opted_out(db, platform: str, uid: str) -> bool:
    """Opted out by word (optouts) or by profile: a bio carrying #nobot (users.nobot, migration 0050)."""
    return db.execute(
        "SELECT 1 FROM optouts WHERE platform = ? AND uid = ?"
        " UNION ALL SELECT 1 FROM users WHERE platform = ? AND uid = ? AND nobot = 1 LIMIT 1",
        (platform, uid, platform, uid)).fetchone() is not None


def add_optout(db, platform: str, uid: str, origin: str, evidence: str, evidence_id: str | None, actor: str,
               at: str) -> bool:
    """True when newly added; an existing opt-out keeps its first evidence."""
    cur = db.execute(
        "INSERT INTO optouts (platform, uid, origin, evidence, evidence_id, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (platform, uid) DO NOTHING", (platform, uid, origin, evidence, evidence_id, actor, at))
    return cur.rowcount > 0


def remove_optout(db, platform: str, uid: str) -> bool:
    return db.execute("DELETE FROM optouts WHERE platform = ? AND uid = ?", (platform, uid)).rowcount > 0


def list_optouts(db) -> list[dict[str, Any]]:
    return dict_rows(db.execute("SELECT * FROM optouts ORDER BY at DESC"))


def in_blocklist_table(db, platform: str, uid: str) -> bool:
    return db.execute("SELECT 1 FROM blocklist WHERE platform = ? AND uid = ?", (platform, uid)).fetchone() is not None


def add_block(db, platform: str, uid: str, reason: str, actor: str, at: str) -> bool:
    cur = db.execute(
        "INSERT INTO blocklist (platform, uid, reason, actor, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (platform, uid, reason, actor, at))
    return cur.rowcount > 0


def remove_block(db, platform: str, uid: str) -> bool:
    return db.execute("DELETE FROM blocklist WHERE platform = ? AND uid = ?", (platform, uid)).rowcount > 0


def list_blocks(db) -> list[dict[str, Any]]:
    return dict_rows(db.execute("SELECT * FROM blocklist ORDER BY at DESC"))


def resolve_user(db, platform: str | None, who: str) -> tuple[str, str] | None:
    """(platform, uid) for a uid or a screen name; None when unknown."""
    conn = db
    args: tuple = (who, who)
    sql = "SELECT platform, uid FROM users WHERE (uid = ? OR name = ?)"
    if platform:
        sql += " AND platform = ?"
        args += (platform,)
    row = conn.execute(sql + " ORDER BY uid = ? DESC LIMIT 1", (*args, who)).fetchone()
    return (row[0], row[1]) if row else None


# -- send log ---------------------------------------------------------------

def start_send_log(db, item_id: int, attempt: int, mode: str, key: str, at: str, text: str) -> int:
    cur = db.execute(
        "INSERT INTO send_log (item_id, attempt, mode, idempotency_key, started_at, text) VALUES (?, ?, ?, ?, ?, ?)",
        (item_id, attempt, mode, key, at, text))
    return int(cur.lastrowid)


def finish_send_log(db, log_id: int, status: str, at: str, remote_id: str | None = None, error: str | None = None) -> None:
    db.execute("UPDATE send_log SET status = ?, ended_at = ?, remote_id = ?, error = ? WHERE id = ?",
                      (status, at, remote_id, error, log_id))


def last_send_log(db, item_id: int) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT * FROM send_log WHERE item_id = ? ORDER BY id DESC LIMIT 1", (item_id,)))
    return rows[0] if rows else None


def send_log_for(db, item_id: int) -> list[dict[str, Any]]:
    return dict_rows(db.execute("SELECT * FROM send_log WHERE item_id = ? ORDER BY id", (item_id,)))


# -- leases (one sender at a time) ------------------------------------------

def meta_get(db, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def meta_set(db, key: str, value: str) -> None:
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      (key, value))


def meta_delete(db, key: str) -> None:
    db.execute("DELETE FROM meta WHERE key = ?", (key,))


# -- planner candidates -------------------------------------------------------

def audience_candidates(db, since_iso: str, tiers: Sequence[str], min_relevance: float) -> list[dict[str, Any]]:
    """Recent top-level posts by members of active audiences, with membership and profile.
    Their reposts are left out: what a repost says is mostly someone else's post."""
    tiers = tuple(tiers) or ("leader", "engaged", "potential")
    sql = f"""
    SELECT p.id AS post_id, p.platform, p.pid, p.uid, p.text, p.created_at, p.topics, p.likes, p.comments,
           p.reposts, p.group_id, p.url AS post_url,
           u.id AS user_id, u.name AS user_name, u.followers, u.verified,
           m.audience_id, m.score AS relevance, m.tier,
           COALESCE(a.name, NULLIF(a.auto_name, ''), 'audience ' || a.id) AS audience, a.auto_name,
           a.keywords AS audience_keywords, a.active_hours AS audience_active_hours, a.target AS audience_target,
           us.influence AS stat_influence, us.relevance AS stat_relevance, us.active_hours AS stat_active_hours,
           ur.score AS target_relevance, ur.explanation AS relevance_explanation, ur.facts AS relevance_facts
    FROM posts p
    JOIN users u ON u.id = p.user_id
    JOIN memberships m ON m.user_id = u.id
    JOIN audiences a ON a.id = m.audience_id AND a.status = 'active'
    LEFT JOIN user_stats us ON us.user_id = u.id
    LEFT JOIN user_relevance ur ON ur.user_id = u.id AND ur.target = a.target
    WHERE p.kind = 'post' AND p.repost_of IS NULL AND p.created_at IS NOT NULL
      AND julianday(p.created_at) >= julianday(?)
      AND COALESCE(m.tier, 'potential') IN {_in(tiers)} AND m.score >= ?
    ORDER BY p.id, m.score DESC
    """
    return dict_rows(db.execute(sql, (since_iso, *tiers, min_relevance)))


def group_candidates(db, since_iso: str) -> list[dict[str, Any]]:
    """Recent posts in configured groups (found by a group query, or carrying a group id)."""
    sql = """
    SELECT p.id AS post_id, p.platform, p.pid, p.uid, p.text, p.created_at, p.topics, p.likes, p.comments,
           p.reposts, p.group_id, p.url AS post_url,
           u.id AS user_id, u.name AS user_name, u.followers, u.verified,
           COALESCE(p.group_id, (SELECT q.value FROM post_queries pq JOIN queries q ON q.name = pq.query
                                 WHERE pq.post_id = p.id AND q.kind = 'group' LIMIT 1)) AS group_name
    FROM posts p
    LEFT JOIN users u ON u.id = p.user_id
    WHERE p.kind = 'post' AND p.repost_of IS NULL AND p.created_at IS NOT NULL
      AND julianday(p.created_at) >= julianday(?)
      AND (p.group_id IS NOT NULL OR EXISTS (SELECT 1 FROM post_queries pq JOIN queries q ON q.name = pq.query
                                             WHERE pq.post_id = p.id AND q.kind = 'group'))
    ORDER BY p.id
    """
    return dict_rows(db.execute(sql, (since_iso,)))


def target_relevance(db, user_ids: Sequence[int]) -> dict[int, dict[str, tuple[float, str | None, str | None]]]:
    """user id -> {target name: (relevance, explanation, facts JSON)} from the analysis (user_relevance)."""
    out: dict[int, dict[str, tuple[float, str | None, str | None]]] = {}
    ids = sorted(set(user_ids))
    for chunk in chunked(ids):
        for uid, target, score, why, facts in db.execute(
                f"SELECT user_id, target, score, explanation, facts FROM user_relevance WHERE user_id IN {_in(chunk)}",
                chunk):
            out.setdefault(uid, {})[target] = (float(score or 0.0), why, facts)
    return out


def post_clean_texts(db, post_ids: Sequence[int]) -> dict[int, str]:
    """post id -> the cleaned text the analysis embedded (post_tokens.clean), to find its sentence vector."""
    out: dict[int, str] = {}
    ids = sorted(set(post_ids))
    for chunk in chunked(ids):
        out.update(db.execute(f"SELECT post_id, clean FROM post_tokens WHERE post_id IN {_in(chunk)}", chunk))
    return out


def pending_count(db) -> int:
    """Items waiting for a person (what the planner's budget tops up)."""
    return db.execute("SELECT COUNT(*) FROM queue WHERE status = 'pending'").fetchone()[0]


def user_post_times(db, user_id: int) -> list[str]:
    """When this user posted (ISO strings, newest 200).

    The planner derives active hours from these rather than from an analysis
    table so scheduling works before any analysis has run.
    """
    cur = db.execute(
        "SELECT created_at FROM posts WHERE user_id = ? AND created_at IS NOT NULL ORDER BY id DESC LIMIT 200", (user_id,))
    return [r[0] for r in cur]


# -- outcomes ----------------------------------------------------------------

def sent_items(db, since_iso: str) -> list[QueueItem]:
    cur = db.execute(
        f"SELECT {', '.join(_ITEM_COLUMNS)} FROM queue WHERE status = 'sent' AND sent_at >= ? ORDER BY id", (since_iso,))
    return [QueueItem(*r) for r in cur]


def sent_item_by_remote_id(db, remote_ids: Iterable[str]) -> dict[str, int]:
    ids = [r for r in remote_ids if r]
    out: dict[str, int] = {}
    for chunk in chunked(ids):
        for rid, item_id in db.execute(
                f"SELECT remote_id, id FROM queue WHERE remote_id IN {_in(chunk)}", tuple(chunk)):
            out[rid] = item_id
    return out


def stored_comments_on(db, pids: Sequence[str]) -> list[dict[str, Any]]:
    """Comments the crawler stored whose parent is one of these posts (or our comments)."""
    out: list[dict[str, Any]] = []
    pids = [p for p in pids if p]
    for chunk in chunked(pids):
        out += dict_rows(db.execute(
            f"SELECT platform, pid, uid, text, parent_pid, raw FROM posts WHERE kind = 'comment'"
            f" AND parent_pid IN {_in(chunk)} ORDER BY id", tuple(chunk)))
    return out


def add_outcome(db, item_id: int, kind: str, remote_id: str, from_uid: str | None, text: str | None, at: str) -> bool:
    cur = db.execute(
        "INSERT INTO outcomes (item_id, kind, remote_id, from_uid, text, at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (item_id, kind, remote_id) DO NOTHING", (item_id, kind, remote_id or "", from_uid, text, at))
    return cur.rowcount > 0


def outcomes_for(db, item_id: int) -> list[dict[str, Any]]:
    return dict_rows(db.execute("SELECT * FROM outcomes WHERE item_id = ? ORDER BY id", (item_id,)))


def variant_stats(db) -> dict[tuple[int | None, str, int], tuple[int, int]]:
    """(audience_id, template, variant) -> (sent, responded). A response is any
    reply, like or follow-back; an opt-out is never a response."""
    sql = """
    SELECT q.audience_id, q.template, q.variant, COUNT(*),
           SUM(EXISTS (SELECT 1 FROM outcomes o WHERE o.item_id = q.id AND o.kind IN ('reply', 'like', 'follow_back')))
    FROM queue q WHERE q.status = 'sent' AND q.template IS NOT NULL
    GROUP BY q.audience_id, q.template, q.variant
    """
    return {(a, t, v if v is not None else 0): (n, r or 0) for a, t, v, n, r in db.execute(sql)}


def response_rates(db) -> list[dict[str, Any]]:
    """Actions and responses per audience and template variant (the report's table).

    Keys: audience, template, variant, kind, sent, responded, replies, likes,
    follow_backs, optouts, rate (responded / sent, 0 when nothing was sent).
    """
    sql = """
    SELECT COALESCE(a.name, NULLIF(a.auto_name, ''), CASE WHEN q.audience_id IS NULL THEN '(groups)'
                    ELSE 'audience ' || q.audience_id END) AS audience,
           COALESCE(q.template, '') AS template, COALESCE(q.variant, 0) AS variant, q.kind,
           COUNT(*) AS sent,
           SUM(EXISTS (SELECT 1 FROM outcomes o WHERE o.item_id = q.id AND o.kind IN ('reply', 'like', 'follow_back'))) AS responded,
           SUM((SELECT COUNT(*) FROM outcomes o WHERE o.item_id = q.id AND o.kind = 'reply')) AS replies,
           SUM((SELECT COUNT(*) FROM outcomes o WHERE o.item_id = q.id AND o.kind = 'like')) AS likes,
           SUM((SELECT COUNT(*) FROM outcomes o WHERE o.item_id = q.id AND o.kind = 'follow_back')) AS follow_backs,
           SUM((SELECT COUNT(*) FROM outcomes o WHERE o.item_id = q.id AND o.kind = 'optout')) AS optouts
    FROM queue q LEFT JOIN audiences a ON a.id = q.audience_id
    WHERE q.status = 'sent'
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    """
    out = dict_rows(db.execute(sql))
    for r in out:
        r["rate"] = round(r["responded"] / r["sent"], 4) if r["sent"] else 0.0
    return out


def post_text_and_time(db: sqlite3.Connection, post_id: int | None) -> tuple[str, str | None]:
    """(text, created_at) of the post an action answers; ("", None) when there is none."""
    row = db.execute("SELECT text, created_at FROM posts WHERE id = ?", (post_id,)).fetchone() \
        if post_id else None
    return (row[0] or "", row[1]) if row else ("", None)


def top_pending_actions(db: sqlite3.Connection, n: int = 5) -> list[tuple[int, str, str | None, str | None, float | None]]:
    """The best-scored pending replies and reposts: (id, kind, user name, draft, score)."""
    return db.execute(
        "SELECT q.id, q.kind, u.name, q.text, q.score FROM queue q LEFT JOIN users u ON u.id = q.target_user_id"
        " WHERE q.status = 'pending' AND q.kind != 'follow' ORDER BY q.score DESC LIMIT ?", (n,)).fetchall()
