"""SQL for the background service: job runs, the lock row, the published
schedule, and the small reads ``huaxiang status`` needs.

Why history lives here and not in an APScheduler job store: the schedule is
configuration (rebuilt at every start), while what actually ran is data we
must keep, query and show; a pickled job store would mix the two and break
whenever a job function moves.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


from config.times import utcnow
from storage.db import dict_rows, transaction

JOB_STATUSES = ("running", "ok", "partial", "failed", "interrupted")


# -- job runs -------------------------------------------------------------

def start_job_run(db: sqlite3.Connection, job: str, kind: str, trigger: str, pid: int, now: str | None = None) -> int:
    cur = db.execute(
        "INSERT INTO job_runs (job, kind, trigger, started_at, status, pid) VALUES (?, ?, ?, ?, 'running', ?)",
        (job, kind, trigger, now or utcnow(), pid),
    )
    return int(cur.lastrowid)


def finish_job_run(db: sqlite3.Connection, run_id: int, status: str, counts: dict[str, Any] | None = None,
                   error: str | None = None, now: str | None = None) -> None:
    if status not in JOB_STATUSES or status == "running":
        raise ValueError(f"bad final job status {status!r}")
    db.execute(
        "UPDATE job_runs SET ended_at = ?, status = ?, counts = ?, error = ? WHERE id = ?",
        (now or utcnow(), status, json.dumps(counts or {}, ensure_ascii=False, sort_keys=True, default=str), error, run_id),
    )


def interrupt_running_jobs(db: sqlite3.Connection, reason: str, pid: int | None = None, now: str | None = None) -> int:
    """Close runs left 'running' by a process that is gone (or, with pid, by that process)."""
    sql = "UPDATE job_runs SET status = 'interrupted', ended_at = ?, error = COALESCE(error, ?) WHERE status = 'running'"
    args: tuple = (now or utcnow(), reason)
    if pid is not None:
        sql += " AND pid = ?"
        args += (pid,)
    return db.execute(sql, args).rowcount


def job_runs(db: sqlite3.Connection, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Most recent first."""
    if job is None:
        cur = db.execute("SELECT * FROM job_runs ORDER BY id DESC LIMIT ?", (limit,))
    else:
        cur = db.execute("SELECT * FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?", (job, limit))
    out = dict_rows(cur)
    for r in out:
        r["counts"] = json.loads(r["counts"] or "{}")
    return out


def last_runs(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """The latest run of each job, keyed by job id."""
    cur = db.execute(
        "SELECT r.* FROM job_runs r JOIN (SELECT job, MAX(id) AS id FROM job_runs GROUP BY job) m ON m.id = r.id"
    )
    out = {}
    for r in dict_rows(cur):
        r["counts"] = json.loads(r["counts"] or "{}")
        out[r["job"]] = r
    return out


def last_finished_starts(db: sqlite3.Connection) -> dict[str, str]:
    """When each job last started a run that finished (ok, partial or failed).

    Interrupted runs do not count: a crawl stopped by shutdown left a cursor
    to resume, so its slot is still owed and catch-up runs it at start.
    """
    return {j: s for j, s in db.execute(
        "SELECT job, MAX(started_at) FROM job_runs WHERE status IN ('ok', 'partial', 'failed') GROUP BY job")}


def last_errors(db: sqlite3.Connection, limit: int = 5) -> list[dict[str, Any]]:
    cur = db.execute(
        "SELECT job, started_at, ended_at, status, error FROM job_runs"
        " WHERE status IN ('failed', 'partial', 'interrupted') AND error IS NOT NULL ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return dict_rows(cur)


# -- the lock row -----------------------------------------------------------

def read_lock(db: sqlite3.Connection) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT pid, host, token, started_at, heartbeat_at FROM service_lock WHERE id = 1"))
    return rows[0] if rows else None


def claim_lock(db: sqlite3.Connection, pid: int, host: str, token: str,
               may_take: Callable[[dict[str, Any]], bool], now: str | None = None) -> dict[str, Any] | None:
    """Write our row unless a live holder has it. Returns the blocking row, or None when claimed.

    Read and write happen in one IMMEDIATE transaction so two starters cannot
    both decide the row is theirs.
    """
    now = now or utcnow()
    with transaction(db) as conn:
        row = read_lock(db)
        if row is not None and row["token"] != token and not may_take(row):
            return row
        conn.execute(
            "INSERT INTO service_lock (id, pid, host, token, started_at, heartbeat_at) VALUES (1, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, token = excluded.token,"
            " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
            (pid, host, token, now, now),
        )
    return None


def heartbeat_lock(db: sqlite3.Connection, token: str, now: str | None = None) -> bool:
    """Refresh our heartbeat; False means someone else holds the row now."""
    cur = db.execute("UPDATE service_lock SET heartbeat_at = ? WHERE id = 1 AND token = ?", (now or utcnow(), token))
    return cur.rowcount == 1


def release_lock(db: sqlite3.Connection, token: str) -> bool:
    return db.execute("DELETE FROM service_lock WHERE id = 1 AND token = ?", (token,)).rowcount == 1


# -- the published schedule -------------------------------------------------

def save_schedule(db: sqlite3.Connection, jobs: Iterable[tuple[str, str, str, str | None]], now: str | None = None) -> None:
    """Replace the schedule with (job, kind, schedule, next_run_at) rows."""
    now = now or utcnow()
    with transaction(db) as conn:
        conn.execute("DELETE FROM service_jobs")
        conn.executemany(
            "INSERT INTO service_jobs (job, kind, schedule, next_run_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            [(j, k, s, n, now) for j, k, s, n in jobs],
        )


def load_schedule(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    return {r["job"]: r for r in dict_rows(db.execute("SELECT * FROM service_jobs"))}


def clear_schedule(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM service_jobs")


# -- small reads for status (used only when the owning area's reader is absent) --

def queue_counts_by_status(db: sqlite3.Connection) -> dict[str, int]:
    return {s: n for s, n in db.execute("SELECT status, COUNT(*) FROM queue GROUP BY status ORDER BY status")}


def paused_sources(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return dict_rows(db.execute(
        "SELECT name, platform, status, paused_until, pause_reason, consecutive_blocks FROM sources"
        " WHERE status != 'ok' OR paused_until IS NOT NULL ORDER BY name"
    ))
