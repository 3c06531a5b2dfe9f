"""``huaxiang status [--json]``: is the service running, what ran, what runs next,
what failed, what waits in the queue, which sources are paused, how big the file is."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite3
from rich.table import Table

from config import Settings
from config.times import UTC, parse_stored, to_stored
from storage import service as store
from storage import reporting
from bot.context import Context


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show the service, job runs, queue, paused sources and database size",
                       description="Show whether `huaxiang run` is running (lock holder pid and heartbeat), the last "
                                   "and next run of each job, recent errors, queue counts by state, paused sources "
                                   "with their cool-down, and the database size.")
    p.add_argument("--json", action="store_true", help="print the same facts as one JSON object")
    p.set_defaults(func=run)


def database_size(db_path: str | Path) -> int:
    """Bytes on disk, counting the WAL and shared-memory files beside it."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


def _queue_counts(db: sqlite3.Connection) -> dict[str, int]:
    try:
        from storage.engagement import queue_counts
    except ImportError:
        return store.queue_counts_by_status(db)
    return dict(queue_counts(db))


def _paused_sources(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Sources in a cool-down now (the crawler's own reader when it is installed)."""
    try:
        from storage.crawl import source_health
    except ImportError:
        rows = store.paused_sources(db)
    else:
        rows = [dict(r) for r in source_health(db)]
    return [r for r in rows if r.get("paused_now", r.get("status", "ok") != "ok")]


def collect_status(db: sqlite3.Connection, db_path: str | Path, settings: Settings,
                   now: datetime | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (also for the review page)."""
    from bot.service.jobs import job_specs
    from bot.service.scheduler import due_at_start, first_fire_after, schedule_timezone
    from bot.service.lock import service_holder

    now = now or datetime.now(UTC)
    holder = service_holder(db, db_path)
    specs = job_specs(settings)
    last = store.last_runs(db)
    published = store.load_schedule(db) if holder.running else {}
    tz = schedule_timezone(settings)
    finished = {j: parse_stored(at) for j, at in store.last_finished_starts(db).items()}
    owed = {s.id for s in due_at_start(specs, finished, now, tz)}
    jobs = []
    for spec in specs:
        run = last.get(spec.id)
        if holder.running:
            nxt = (published.get(spec.id) or {}).get("next_run_at")
        elif spec.id in owed:
            nxt = "at start"
        else:
            nxt = to_stored(first_fire_after(spec.schedule, finished[spec.id], tz))
        jobs.append({
            "job": spec.id, "kind": spec.kind, "schedule": spec.schedule,
            "last_started": run and run["started_at"], "last_ended": run and run["ended_at"],
            "last_status": run and run["status"], "last_counts": run["counts"] if run else {},
            "last_error": run and run["error"], "next_run": nxt,
        })
    configured = {s.id for s in specs}
    for job, run in last.items():  # jobs run before but no longer configured
        if job not in configured:
            jobs.append({"job": job, "kind": run["kind"], "schedule": "(not configured)", "last_started": run["started_at"],
                         "last_ended": run["ended_at"], "last_status": run["status"], "last_counts": run["counts"],
                         "last_error": run["error"], "next_run": None})
    return {
        "database": {"path": str(db_path), "bytes": database_size(db_path)},
        "service": {"running": holder.running, "pid": holder.pid, "host": holder.host, "started_at": holder.started_at,
                    "heartbeat_at": holder.heartbeat_at,
                    "heartbeat_age_s": None if holder.heartbeat_age_s is None else round(holder.heartbeat_age_s, 1)},
        "jobs": jobs,
        "errors": store.last_errors(db),
        "queue": _queue_counts(db),
        "paused_sources": _paused_sources(db),
        "audiences": _audience_counts(db),
    }


def _audience_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Active and mixed audiences, and analysed users who fit none (unassigned)."""
    if not reporting.has_table(db, "audiences"):
        return {"active": 0, "mixed": 0, "analysed_users": 0, "unassigned": 0}
    active, n_mixed = reporting.active_audience_counts(db)
    una = reporting.unassigned_summary(db, sample=0)
    return {"active": int(active or 0), "mixed": int(n_mixed or 0), "analysed_users": una["analysed"],
            "unassigned": una["users"]}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run(args: argparse.Namespace, ctx: Context) -> int:
    st = collect_status(ctx.db, ctx.db_path, ctx.settings)
    if args.json:
        # soft_wrap: never break a long error string across lines (the output must stay valid JSON)
        ctx.console.print(json.dumps(st, ensure_ascii=False, default=str, indent=2), markup=False, highlight=False,
                          soft_wrap=True)
        return 0
    out = ctx.console
    svc = st["service"]
    if svc["running"]:
        hb = "" if svc["heartbeat_age_s"] is None else f", heartbeat {svc['heartbeat_age_s']:.0f}s ago"
        who = f"pid {svc['pid']} on {svc['host']}, since {svc['started_at']}{hb}" if svc["pid"] else "holder unknown"
        out.print(f"service: running ({who})", markup=False)
    elif svc["pid"]:
        out.print(f"service: not running (last holder pid {svc['pid']} on {svc['host']} stopped without "
                  f"releasing; last heartbeat {svc['heartbeat_at']}; the next `huaxiang run` takes over)", markup=False)
    else:
        out.print("service: not running (start it with `huaxiang run`)", markup=False)
    out.print(f"database: {st['database']['path']} ({_size(st['database']['bytes'])})", markup=False)

    table = Table(title="jobs", title_justify="left", show_lines=False)
    for col in ("job", "schedule", "last run", "status", "next run", "last error"):
        table.add_column(col, overflow="fold")
    for j in st["jobs"]:
        err = (j["last_error"] or "")[:80]
        table.add_row(j["job"], j["schedule"], j["last_started"] or "never", j["last_status"] or "-",
                      j["next_run"] or "-", err)
    out.print(table)

    if st["errors"]:
        out.print("recent errors:", markup=False)
        for e in st["errors"]:
            out.print(f"  {e['started_at']} {e['job']} {e['status']}: {e['error']}", markup=False, highlight=False)
    au = st["audiences"]
    out.print(f"audiences: {au['active']} active" + (f" ({au['mixed']} mixed)" if au["mixed"] else "")
              + f"; {au['analysed_users']} users analysed, {au['unassigned']} unassigned (fit no audience)",
              markup=False)
    q = st["queue"]
    busy = {k: v for k, v in q.items() if v}
    out.print("queue: " + (", ".join(f"{k} {v}" for k, v in busy.items()) if busy else "empty"), markup=False)
    if st["paused_sources"]:
        out.print("paused sources:", markup=False)
        for s in st["paused_sources"]:
            blocks = s.get("consecutive_blocks")
            out.print(f"  {s.get('name')}: {s.get('status', 'paused')} until {s.get('paused_until') or '?'}"
                      f" ({s.get('pause_reason') or 'blocked'}"
                      + (f", {blocks} block(s) in a row" if blocks else "") + ")", markup=False, highlight=False)
    else:
        out.print("paused sources: none", markup=False)
    return 0
