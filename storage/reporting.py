"""Reads for exports and the report, and the export log.

Why one module of plain reads: exports and the HTML report look at tables
that other areas own (audiences, crawl runs, the queue). Keeping every query
here means a schema change shows up in one file, and the report code above it
works on plain dicts. Tables added by later migrations may be absent in an
older file; readers check and return nothing rather than fail, so the report
can say "no data yet".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any


from config.times import utcnow
from storage.db import chunked, dict_rows, iter_dict_rows, marks

TIERS = ("leader", "engaged", "potential")


def loads(value: Any, default: Any) -> Any:
    """JSON columns written by other areas; a damaged value reads as the default."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return default


def has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)).fetchone()
    return row is not None


def table_columns(db: sqlite3.Connection, name: str) -> set[str]:
    if not has_table(db, name):
        return set()
    return {r[1] for r in db.execute(f'PRAGMA table_info("{name}")')}


# ---------------------------------------------------------------- audiences

def list_audiences(db: sqlite3.Connection, include_retired: bool = False) -> list[dict[str, Any]]:
    where = "" if include_retired else "WHERE status = 'active'"
    cur = db.execute(
        "SELECT id, auto_name, name, COALESCE(NULLIF(name, ''), NULLIF(auto_name, ''), 'audience ' || id) AS label,"
        " status, size, share, keywords, topics, mentions, influencers, sample_posts, active_hours, tier_counts,"
        f" created_run, updated_run, created_at, updated_at FROM audiences {where} ORDER BY size DESC, id"
    )
    return dict_rows(cur)


def find_audience(db: sqlite3.Connection, ref: str | int) -> dict[str, Any] | None:
    """An audience by id, by the name a person gave it, or by its auto-name.

    Names are matched exactly first, then case-insensitively, so ``健身人群``
    and ``Fitness`` both work; a number is an id.
    """
    text = str(ref).strip()
    cols = ("SELECT id, auto_name, name, COALESCE(NULLIF(name, ''), NULLIF(auto_name, ''), 'audience ' || id) AS label,"
            " status, size, share, keywords, topics, updated_run FROM audiences")
    if text.isascii() and text.isdigit() and len(text) <= 18:   # '²'.isdigit() is True; ids fit SQLite's integer
        rows = dict_rows(db.execute(cols + " WHERE id = ?", (int(text),)))
        if rows:
            return rows[0]
    for clause in ("name = ?1", "auto_name = ?1", "lower(name) = lower(?1)", "lower(auto_name) = lower(?1)"):
        rows = dict_rows(db.execute(cols + f" WHERE {clause} ORDER BY status = 'active' DESC, id DESC", (text,)))
        if rows:
            return rows[0]
    return None


def audience_members(
    db: sqlite3.Connection,
    audience_id: int,
    tiers: Sequence[str] | None = None,
    min_relevance: float | None = None,
    active_since: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Members with their profile fields, best first.

    ``membership_score`` is how well the user fits this audience (the
    cluster fit; the planner filters on the same number); ``relevance`` is
    the user's best relevance to a seeded target and ``relevance_target``
    that target. ``active_since`` is an
    ISO time; SQLite's julianday() honours the offsets stored with each time,
    so +08:00 and UTC compare correctly. Per-user analysis figures (influence,
    the user's own keywords, relevance to the seeded target) come along when
    the analysis stored them.
    """
    stats = has_table(db, "user_stats")
    extra = (", s.influence, s.activity, s.relevance AS relevance, s.keywords AS user_keywords"
             if stats else ", NULL AS influence, NULL AS activity, NULL AS relevance, '[]' AS user_keywords")
    if stats and has_table(db, "user_relevance"):
        extra += (", (SELECT r.target FROM user_relevance r WHERE r.user_id = u.id ORDER BY r.score DESC, r.target"
                  " LIMIT 1) AS relevance_target")
    else:
        extra += ", NULL AS relevance_target"
    sql = [
        "SELECT u.id AS user_row, u.platform, u.uid, u.name, u.bio, u.tags, u.followers, u.following, u.posts_count,"
        " u.verified, u.verified_reason, u.gender, u.location, u.profile_url, u.first_seen, u.last_seen,"
        " u.verified_type, u.ip_location, u.birthday, u.education, u.company, u.registered_at, u.is_bot,"
        " u.counts_floor,"
        f" m.score AS membership_score, m.tier, m.run_id{extra}"
        " FROM memberships m JOIN users u ON u.id = m.user_id"
        + (" LEFT JOIN user_stats s ON s.user_id = u.id" if stats else "")
        + " WHERE m.audience_id = ?"
    ]
    args: list[Any] = [audience_id]
    if tiers:
        sql.append(" AND m.tier IN (" + marks(len(tiers)) + ")")
        args.extend(tiers)
    if min_relevance is not None:
        sql.append(" AND m.score >= ?")
        args.append(min_relevance)
    if active_since is not None:
        sql.append(" AND u.last_seen IS NOT NULL AND julianday(u.last_seen) >= julianday(?)")
        args.append(active_since)
    sql.append(" ORDER BY m.score DESC, u.id")
    if limit is not None:
        sql.append(" LIMIT ?")
        args.append(limit)
    return dict_rows(db.execute("".join(sql), args))


def membership_rows(db: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every membership with the user's platform id as imported (the export contract).
    Unassigned users (who fit no audience) have no membership, so no row."""
    cur = db.execute(
        "SELECT u.platform, u.uid AS user_id, u.name, m.audience_id, m.score AS membership_score, m.tier, m.run_id"
        " FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY m.audience_id, m.score DESC, u.id"
    )
    return iter_dict_rows(cur)


def membership_run_ids(db: sqlite3.Connection, audience_id: int | None = None) -> list[int]:
    if audience_id is None:
        cur = db.execute("SELECT DISTINCT run_id FROM memberships WHERE run_id IS NOT NULL ORDER BY run_id")
    else:
        cur = db.execute("SELECT DISTINCT run_id FROM memberships WHERE audience_id = ? AND run_id IS NOT NULL"
                              " ORDER BY run_id", (audience_id,))
    return [int(r[0]) for r in cur]


def user_post_texts(db: sqlite3.Connection, user_rows: Sequence[int], per_user: int = 50) -> dict[int, list[str]]:
    """Recent post texts per user (for per-member keywords when the analysis stored none)."""
    out: dict[int, list[str]] = {}
    ids = list(user_rows)
    for chunk in chunked(ids):
        cur = db.execute(
            "SELECT user_id, text FROM (SELECT user_id, text, row_number() OVER"
            " (PARTITION BY user_id ORDER BY created_at DESC) AS n FROM posts WHERE user_id IN ("
            + marks(len(chunk)) + ")) WHERE n <= ?",
            (*chunk, per_user),
        )
        for uid, text in cur:
            out.setdefault(uid, []).append(text or "")
    return out


# ---------------------------------------------------------------- runs

def analysis_run(db: sqlite3.Connection, run_id: int | None = None) -> dict[str, Any] | None:
    """One analysis run, or the newest one that finished (else the newest at all)."""
    if run_id is not None:
        rows = dict_rows(db.execute("SELECT id, started_at, ended_at, status, k, n_users, n_posts FROM analysis_runs"
                                     " WHERE id = ?", (run_id,)))
        return rows[0] if rows else None
    rows = dict_rows(db.execute(
        "SELECT id, started_at, ended_at, status, k, n_users, n_posts FROM analysis_runs"
        " ORDER BY ended_at IS NULL, id DESC LIMIT 1"))
    return rows[0] if rows else None


# ---------------------------------------------------------------- queue and audit

_QUEUE_EXTRA = ("explanation", "approved_by", "approved_at", "sent_at", "send_mode", "remote_id", "attempts",
                "last_error", "target", "target_relevance", "draft_reason", "explanation_facts")


def queue_rows(db: sqlite3.Connection, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The engagement queue joined with what a person needs to act by hand:
    the target's name and profile, the post's link and text, the draft."""
    cols = table_columns(db, "queue")
    # Columns the engagement area added (0030): who approved, when it went out, what failed.
    extra = "".join(f", q.{c}" if c in cols else f", NULL AS {c}" for c in _QUEUE_EXTRA)
    uid = "COALESCE(tu.uid, q.target_uid)" if "target_uid" in cols else "tu.uid"
    pid = "COALESCE(p.pid, q.post_pid)" if "post_pid" in cols else "p.pid"
    sql = (
        "SELECT q.id, q.status, q.kind, q.platform, q.source, q.audience_id,"
        " COALESCE(NULLIF(a.name, ''), NULLIF(a.auto_name, '')) AS audience,"
        f" {uid} AS target_uid, tu.name AS target_name, tu.profile_url AS target_url,"
        f" {pid} AS post_pid, p.url AS post_url, p.text AS post_text,"
        " q.template, q.variant, q.text AS draft, q.score, q.reason, q.scheduled_at, q.expires_at,"
        f" q.created_at, q.updated_at{extra}"
        " FROM queue q LEFT JOIN users tu ON tu.id = q.target_user_id LEFT JOIN posts p ON p.id = q.post_id"
        " LEFT JOIN audiences a ON a.id = q.audience_id"
    )
    args: list[Any] = []
    if statuses:
        sql += " WHERE q.status IN (" + marks(len(statuses)) + ")"
        args.extend(statuses)
    sql += " ORDER BY q.scheduled_at IS NULL, q.scheduled_at, q.score DESC, q.id"
    return dict_rows(db.execute(sql, args))


def audit_rows(db: sqlite3.Connection, since: str | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT id, at, actor, action, item_id, from_status, to_status, text_before, text_after, detail"
           " FROM audit_log")
    args: list[Any] = []
    if since is not None:
        sql += " WHERE julianday(at) >= julianday(?)"
        args.append(since)
    sql += " ORDER BY id"
    return dict_rows(db.execute(sql, args))


# ---------------------------------------------------------------- export log

def record_export(
    db: sqlite3.Connection,
    what: str,
    fmt: str,
    path: str,
    rows: int,
    filters: dict[str, Any],
    subject: str | None = None,
    analysis_run_id: int | None = None,
    pseudonymised: bool = False,
    sha256: str | None = None,
) -> int:
    cur = db.execute(
        "INSERT INTO export_log (at, what, subject, format, path, rows, filters, analysis_run_id, pseudonymised, sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (utcnow(), what, subject, fmt, path, rows, json.dumps(filters, ensure_ascii=False, sort_keys=True),
         analysis_run_id, int(pseudonymised), sha256),
    )
    return int(cur.lastrowid)


def export_log(db: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return dict_rows(db.execute("SELECT * FROM export_log ORDER BY id DESC LIMIT ?", (limit,)))


# ---------------------------------------------------------------- report: overview and audiences

def overview_counts(db: sqlite3.Connection) -> dict[str, int]:
    out = {}
    for key, sql in (("users", "SELECT COUNT(*) FROM users"), ("posts", "SELECT COUNT(*) FROM posts"),
                     ("audiences", "SELECT COUNT(*) FROM audiences WHERE status = 'active'"),
                     ("members", "SELECT COUNT(DISTINCT user_id) FROM memberships"),
                     ("crawl_runs", "SELECT COUNT(*) FROM crawl_runs"), ("queue", "SELECT COUNT(*) FROM queue")):
        out[key] = int(db.execute(sql).fetchone()[0])
    return out


def map_points(db: sqlite3.Connection, limit: int = 5000) -> list[dict[str, Any]]:
    """Users with map coordinates, each with its audience and influence.

    Beyond ``limit`` a sample: users in a fixed scrambled order of their ids
    (a multiplicative hash), so the picture keeps every audience's shape, is
    the same between two renders of the same data, and never aliases with
    however ids happen to be assigned.
    """
    if not has_table(db, "user_stats"):
        return []
    cur = db.execute(
        "SELECT s.user_id, s.x, s.y, s.influence, CASE WHEN a.status = 'active' THEN s.audience_id END AS audience_id"
        " FROM user_stats s LEFT JOIN audiences a ON a.id = s.audience_id WHERE s.x IS NOT NULL AND s.y IS NOT NULL"
        " ORDER BY (s.user_id * 2654435761) % 4294967291, s.user_id LIMIT ?",
        (limit,),
    )
    return dict_rows(cur)


def size_history(db: sqlite3.Connection) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if not has_table(db, "audience_history"):
        return out
    for r in iter_dict_rows(db.execute(
            "SELECT audience_id, run_id, size, joined, left, at FROM audience_history ORDER BY audience_id, run_id")):
        out.setdefault(r["audience_id"], []).append(r)
    return out


def tier_counts(db: sqlite3.Connection) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for aid, tier, n in db.execute(
            "SELECT audience_id, COALESCE(tier, 'untiered'), COUNT(*) FROM memberships GROUP BY 1, 2"):
        out.setdefault(aid, {})[tier] = n
    return out


def top_influencers(db: sqlite3.Connection, audience_id: int, n: int = 10) -> list[dict[str, Any]]:
    """The members with most influence (analysis figure when stored, else followers)."""
    stats = has_table(db, "user_stats")
    infl = "s.influence" if stats else "NULL"
    join = " LEFT JOIN user_stats s ON s.user_id = u.id" if stats else ""
    cur = db.execute(
        f"SELECT u.platform, u.uid, u.name, u.followers, u.verified, m.tier, m.score, {infl} AS influence"
        f" FROM memberships m JOIN users u ON u.id = m.user_id{join} WHERE m.audience_id = ?"
        f" ORDER BY {infl} IS NULL, {infl} DESC, u.followers IS NULL, u.followers DESC, u.id LIMIT ?",
        (audience_id, n),
    )
    return dict_rows(cur)


def audience_topics(db: sqlite3.Connection, audience_id: int, n: int = 10) -> list[tuple[str, int]]:
    """Topics (#话题#) members' posts carry most."""
    cur = db.execute(
        "SELECT t.value, COUNT(*) AS c FROM memberships m JOIN posts p ON p.user_id = m.user_id, json_each(p.topics) t"
        " WHERE m.audience_id = ? AND json_valid(p.topics) AND t.type = 'text' GROUP BY t.value ORDER BY c DESC, t.value"
        " LIMIT ?",
        (audience_id, n),
    )
    return [(r[0], int(r[1])) for r in cur]


def audience_post_times(db: sqlite3.Connection, audience_id: int, limit: int = 50_000) -> list[str]:
    cur = db.execute(
        "SELECT p.created_at FROM memberships m JOIN posts p ON p.user_id = m.user_id"
        " WHERE m.audience_id = ? AND p.created_at IS NOT NULL ORDER BY p.id DESC LIMIT ?",
        (audience_id, limit),
    )
    return [r[0] for r in cur]


# ---------------------------------------------------------------- report: crawl

# What a query found: the posts it listed (post_queries), and for queries that list
# people (a tag query) or whose authors were fetched, those people and their posts
# (user_queries, crawl_authors). The crawl's own run counts include both, so the
# report must too: a tag query lists users, never posts, and showed 0 / 0.
_FOUND_PER_QUERY = """
WITH found_posts AS (
    SELECT pq.query AS query, pq.post_id AS post_id FROM post_queries pq
    UNION SELECT uq.query, p.id FROM user_queries uq JOIN posts p ON p.platform = uq.platform AND p.uid = uq.uid
    UNION SELECT ca.query, p.id FROM crawl_authors ca JOIN posts p ON p.platform = ca.platform AND p.uid = ca.uid
          WHERE ca.query IS NOT NULL
), found_users AS (
    SELECT f.query AS query, p.user_id AS user_id FROM found_posts f JOIN posts p ON p.id = f.post_id
    WHERE p.user_id IS NOT NULL
    UNION SELECT uq.query, u.id FROM user_queries uq JOIN users u ON u.platform = uq.platform AND u.uid = uq.uid
)
SELECT q.query, (SELECT COUNT(*) FROM found_posts f WHERE f.query = q.query) AS posts,
       (SELECT COUNT(*) FROM found_users f WHERE f.query = q.query) AS users
FROM (SELECT query FROM found_posts UNION SELECT query FROM found_users) q
"""


def crawl_by_query(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per query: posts and distinct users it found, runs, errors, blocks and fault kinds."""
    found = {r["query"]: r for r in iter_dict_rows(db.execute(_FOUND_PER_QUERY))}
    runs = {r["query"]: r for r in iter_dict_rows(db.execute(
        "SELECT COALESCE(query, '(none)') AS query, COUNT(*) AS runs, SUM(errors) AS errors,"
        " SUM(status = 'blocked') AS blocked, SUM(status IN ('failed', 'partial', 'interrupted')) AS failed,"
        " SUM(requests) AS requests, MAX(started_at) AS last_run, json_group_array(faults) AS faults"
        " FROM crawl_runs GROUP BY 1"))}
    out = []
    for q in sorted(set(found) | set(runs)):
        f, r = found.get(q, {}), runs.get(q, {})
        faults: dict[str, int] = {}
        for item in loads(r.get("faults"), []):
            for kind, n in (loads(item, {}) or {}).items():
                if isinstance(n, (int, float)):
                    faults[str(kind)] = faults.get(str(kind), 0) + int(n)
        out.append({"query": q, "posts": int(f.get("posts") or 0), "users": int(f.get("users") or 0),
                    "runs": int(r.get("runs") or 0), "errors": int(r.get("errors") or 0),
                    "blocked": int(r.get("blocked") or 0), "failed": int(r.get("failed") or 0),
                    "requests": int(r.get("requests") or 0), "last_run": r.get("last_run"), "faults": faults})
    out.sort(key=lambda r: (-r["posts"], r["query"]))
    return out


def _day(column: str) -> str:
    """SQL for the local calendar day of a stored UTC time; the offset is the ``?`` parameter
    (e.g. '+480 minutes', the campaign zone's current offset)."""
    return f"substr(datetime({column}, ?), 1, 10)"


def crawl_by_day(db: sqlite3.Connection, days: int = 60, offset: str = "+0 minutes") -> list[dict[str, Any]]:
    """New posts and new users stored per local day (``offset`` from UTC), the last ``days`` days with data."""
    posts = dict(db.execute(f"SELECT {_day('first_seen')} AS d, COUNT(*) FROM posts GROUP BY d", (offset,)))
    users = dict(db.execute(f"SELECT {_day('first_seen')} AS d, COUNT(*) FROM users GROUP BY d", (offset,)))
    all_days = sorted(set(posts) | set(users))[-days:]
    return [{"day": d, "posts": int(posts.get(d, 0)), "users": int(users.get(d, 0))} for d in all_days]


def crawl_query_days(db: sqlite3.Connection, days: int = 60, offset: str = "+0 minutes") -> list[dict[str, Any]]:
    """Posts found per query per local day (by the day the post was first stored)."""
    cur = db.execute(
        f"SELECT pq.query, {_day('p.first_seen')} AS day, COUNT(*) AS posts FROM post_queries pq"
        " JOIN posts p ON p.id = pq.post_id GROUP BY 1, 2 ORDER BY 2", (offset,))
    rows = dict_rows(cur)
    keep = set(sorted({r["day"] for r in rows})[-days:])
    return [r for r in rows if r["day"] in keep]


def crawl_problem_runs(db: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    return dict_rows(db.execute(
        "SELECT id, query, source, started_at, status, errors, faults, error FROM crawl_runs"
        " WHERE status NOT IN ('ok', 'running') OR errors > 0 ORDER BY id DESC LIMIT ?", (limit,)))


def source_health(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Each source's live state: paused after blocks, until when and why."""
    cols = table_columns(db, "sources")
    extra = "".join(f", {c}" if c in cols else f", NULL AS {c}" for c in ("last_ok_at", "last_blocked_at"))
    return dict_rows(db.execute(
        f"SELECT name, platform, status, paused_until, pause_reason, consecutive_blocks{extra} FROM sources ORDER BY name"))


# ---------------------------------------------------------------- report: campaign

def queue_status_counts(db: sqlite3.Connection) -> dict[str, int]:
    return {s: int(n) for s, n in db.execute("SELECT status, COUNT(*) FROM queue GROUP BY status ORDER BY 2 DESC")}


def actions_per_day(db: sqlite3.Connection, offset: str = "+0 minutes") -> list[dict[str, Any]]:
    """Queue items created, approved and sent per local day (``offset`` from UTC)."""
    cols = table_columns(db, "queue")
    parts = [f"SELECT {_day('created_at')} AS day, 'proposed' AS what FROM queue"]
    if "approved_at" in cols:
        parts.append(f"SELECT {_day('approved_at')}, 'approved' FROM queue WHERE approved_at IS NOT NULL")
    if "sent_at" in cols:
        parts.append(f"SELECT {_day('sent_at')}, 'sent' FROM queue WHERE sent_at IS NOT NULL AND status = 'sent'")
    cur = db.execute("SELECT day, what, COUNT(*) AS n FROM (" + " UNION ALL ".join(parts) + ") GROUP BY 1, 2 ORDER BY 1",
                          (offset,) * len(parts))
    return dict_rows(cur)


def response_by_period(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Sent actions and those that got a response (reply, like, follow-back), per
    ISO week of sending, audience, template and variant."""
    if not has_table(db, "outcomes") or "sent_at" not in table_columns(db, "queue"):
        return []
    cur = db.execute(
        "SELECT strftime('%Y-W%W', q.sent_at) AS period,"
        " COALESCE(NULLIF(a.name, ''), NULLIF(a.auto_name, ''), CASE WHEN q.audience_id IS NULL THEN '(groups)'"
        " ELSE 'audience ' || q.audience_id END) AS audience,"
        " COALESCE(q.template, '') AS template, COALESCE(q.variant, 0) AS variant, COUNT(*) AS sent,"
        " SUM(EXISTS (SELECT 1 FROM outcomes o WHERE o.item_id = q.id AND o.kind IN ('reply', 'like', 'follow_back')))"
        " AS responded FROM queue q LEFT JOIN audiences a ON a.id = q.audience_id"
        " WHERE q.status = 'sent' AND q.sent_at IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
    return dict_rows(cur)


def user_details(db: sqlite3.Connection, uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Account type and profile details (migration 0090) of these users, by uid.

    Why by uid alone: influencer lists carry uids; a uid shared by two platforms
    is vanishingly rare and the first row wins.
    """
    out: dict[str, dict[str, Any]] = {}
    uids = [u for u in dict.fromkeys(str(u) for u in uids if u is not None)]
    for chunk in chunked(uids):
        for rec in iter_dict_rows(db.execute(
                "SELECT uid, platform, followers, verified, verified_type, ip_location, location, is_bot, counts_floor"
                " FROM users WHERE uid IN (" + marks(len(chunk)) + ") ORDER BY id", chunk)):
            out.setdefault(rec["uid"], rec)
    return out


# --------------------------------------------------------------- targets and unassigned users

def target_names(db: sqlite3.Connection) -> list[str]:
    """Targets the last analysis scored users against."""
    if not has_table(db, "user_relevance"):
        return []
    return [r[0] for r in db.execute("SELECT DISTINCT target FROM user_relevance ORDER BY target")]


def prospect_rows(db: sqlite3.Connection, target: str, min_relevance: float | None = None,
                  limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Every user scored for ``target``, most relevant first: user_id (platform
    id), name, relevance, why, audience_id/audience/tier/membership_score
    (empty for an unassigned user), profile_url, platform, followers, last_seen."""
    sql = ("SELECT u.uid AS user_id, u.name, r.score AS relevance, r.explanation AS why, r.facts AS why_facts, m.audience_id,"
           " COALESCE(a.name, a.auto_name) AS audience, m.tier, m.score AS membership_score, u.profile_url,"
           " u.platform, u.followers, u.last_seen FROM user_relevance r JOIN users u ON u.id = r.user_id"
           " LEFT JOIN memberships m ON m.user_id = r.user_id LEFT JOIN audiences a ON a.id = m.audience_id"
           " WHERE r.target = ?")
    args: list[Any] = [target]
    if min_relevance is not None:
        sql += " AND r.score >= ?"
        args.append(min_relevance)
    sql += " ORDER BY r.score DESC, u.id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    return iter_dict_rows(db.execute(sql, args))


def relevance_run_ids(db: sqlite3.Connection, target: str) -> list[int]:
    return [int(r[0]) for r in db.execute(
        "SELECT DISTINCT run_id FROM user_relevance WHERE target = ? AND run_id IS NOT NULL ORDER BY run_id", (target,))]


def active_audience_counts(db: sqlite3.Connection) -> tuple[int, int]:
    """(active audiences, of them flagged mixed); 0 mixed before migration 0100."""
    mixed = "SUM(mixed = 1)" if "mixed" in table_columns(db, "audiences") else "0"
    active, n_mixed = db.execute(f"SELECT COUNT(*), {mixed} FROM audiences WHERE status = 'active'").fetchone()
    return int(active or 0), int(n_mixed or 0)


def unassigned_summary(db: sqlite3.Connection, sample: int = 10) -> dict[str, Any]:
    """Users the analysis saw but placed in no audience (they fit none): how
    many, their share of analysed users, and the most target-relevant few
    (uid, name, n_posts, relevance, keywords) for the report."""
    if not has_table(db, "user_stats"):
        return {"users": 0, "analysed": 0, "share": 0.0, "sample": []}
    analysed, una = db.execute("SELECT COUNT(*), SUM(audience_id IS NULL) FROM user_stats").fetchone()
    rows = dict_rows(db.execute(
        "SELECT u.platform, u.uid, u.name, s.n_posts, s.relevance, s.keywords FROM user_stats s JOIN users u"
        " ON u.id = s.user_id WHERE s.audience_id IS NULL ORDER BY s.relevance DESC, s.user_id LIMIT ?", (sample,)))
    for r in rows:
        r["keywords"] = loads(r["keywords"], [])
    una = int(una or 0)
    return {"users": una, "analysed": int(analysed or 0), "share": round(una / analysed, 4) if analysed else 0.0,
            "sample": rows}


def target_links(db: sqlite3.Connection, min_relevance: float = 0.5) -> list[dict[str, Any]]:
    """Per seeded target: users scoring at least ``min_relevance``, how many of
    them are unassigned, and the audiences whose members it describes best
    (audiences.target) - the report's "prospects" section reads this."""
    out = []
    for t in target_names(db):
        n, una = db.execute(
            "SELECT COUNT(*), SUM(m.user_id IS NULL) FROM user_relevance r LEFT JOIN memberships m"
            " ON m.user_id = r.user_id WHERE r.target = ? AND r.score >= ?", (t, min_relevance)).fetchone()
        auds = dict_rows(db.execute(
            "SELECT id, COALESCE(name, auto_name) AS name, size, target_score FROM audiences WHERE status = 'active'"
            " AND target = ? ORDER BY target_score DESC", (t,)))
        out.append({"target": t, "prospects": int(n or 0), "unassigned_prospects": int(una or 0), "audiences": auds})
    return out


def keyword_post_shares(db: sqlite3.Connection, audience_id: int, words: Sequence[str],
                        limit: int = 20_000) -> dict[str, float]:
    """Share of the audience's (newest ``limit``) member posts that contain each word: a weight
    for keywords stored without one."""
    texts = [r[0] or "" for r in db.execute(
        "SELECT p.text FROM memberships m JOIN posts p ON p.user_id = m.user_id WHERE m.audience_id = ?"
        " ORDER BY p.id DESC LIMIT ?", (audience_id, limit))]
    if not texts:
        return {}
    return {w: sum(1 for t in texts if w in t) / len(texts) for w in words}


def audience_prospects(db: sqlite3.Connection, audience_id: int) -> dict[str, Any]:
    """The seeded targets an audience serves (its best target and every target its members are
    relevant to) and its prospects per tier."""
    row = db.execute("SELECT target, target_score FROM audiences WHERE id = ?", (audience_id,)).fetchone()
    targets = [(t, round(s or 0.0, 3), n) for t, s, n in db.execute(
        "SELECT ur.target, AVG(ur.score), COUNT(*) FROM memberships m JOIN user_relevance ur ON ur.user_id = m.user_id"
        " WHERE m.audience_id = ? AND ur.score > 0 GROUP BY ur.target ORDER BY AVG(ur.score) DESC", (audience_id,))]
    tiers = {t: n for t, n in db.execute(
        "SELECT COALESCE(tier, 'potential'), COUNT(*) FROM memberships WHERE audience_id = ? GROUP BY 1", (audience_id,))}
    return {"target": row[0] if row else None, "target_score": row[1] if row else None, "targets": targets,
            "tiers": tiers}
