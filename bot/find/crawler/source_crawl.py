"""One source's queries, run one after another through one polite client.

Why per source: the client paces requests per host and a blocked or
unreachable source skips its remaining queries, while other sources (in
their own threads) carry on.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from config import ConfigError, Settings
from config.schema import QuerySettings, SourceSettings
from storage import crawl as store
from storage.db import transaction
from storage.platforms import load_feed_state
from bot.errors import HuaxiangError
from bot.find.crawler.attempts import Attempts, Interrupted, SourceBlocked
from bot.find.crawler.authors import fetch_authors
from bot.find.crawler.context import SourceContext
from bot.find.crawler.pages import walk_pages
from bot.find.crawler.summary import QueryRun
from bot.find.errors import SourceError, UnreachableError, UnsupportedError
from bot.find.sources import local_platforms, open_source

log = logging.getLogger(__name__)


class _Outcome:
    """How the source's queries stopped early, if they did."""

    def __init__(self) -> None:
        self.blocked = False
        self.unreachable: str | None = None      # set when nothing answers: the other queries are skipped
        self.skipped_pause: dict[str, Any] | None = None   # the pause the remaining queries were skipped for


def crawl_source(db: sqlite3.Connection, settings: Settings, src: SourceSettings, queries: list[QuerySettings],
                 stop: threading.Event | None, progress: Callable[..., Any] | None, transport: Any,
                 client_kw: dict[str, Any]) -> tuple[list[QueryRun], dict[str, Any] | None]:
    """Run ``queries`` of ``src``; their runs, and the source's pause or unreachable line if any."""
    store.sync_source(db, src.name, src.platform, src.base_url)
    pause = store.source_pause(db, src.name)
    if pause:
        msg = f"source {src.name} is paused until {pause['paused_until']} ({pause['pause_reason']})"
        log.warning("%s; skipping its queries", msg)
        return [record_skip(db, q, "paused", msg) for q in queries], {"source": src.name, **pause}
    try:
        source = open_source(settings, src, transport=transport, **client_kw)
    except (ConfigError, HuaxiangError) as exc:
        return [record_skip(db, q, "failed", str(exc)) for q in queries], None
    if hasattr(source, "validators"):
        # Feed sources poll with conditional GET: hand them the ETag/Last-Modified
        # values of the last run so an unchanged feed costs a 304.
        source.validators.update(load_feed_state(db, src.name))
    ctx = SourceContext(db, settings, src, source, Attempts(src, source, stop, random.Random()), progress)
    outcome = _Outcome()
    try:
        runs = _run_all(ctx, queries, outcome)
    finally:
        source.http.close()
    if outcome.skipped_pause is not None:
        return runs, outcome.skipped_pause
    if outcome.unreachable:
        return runs, {"source": src.name, "unreachable": outcome.unreachable}
    blocked = store.source_pause(db, src.name) if outcome.blocked else None
    return runs, ({"source": src.name, **blocked} if blocked else None)


def _run_all(ctx: SourceContext, queries: list[QuerySettings], outcome: _Outcome) -> list[QueryRun]:
    runs: list[QueryRun] = []
    for i, q in enumerate(queries):
        if outcome.unreachable:
            return runs + [record_skip(ctx.db, rest, "failed", outcome.unreachable) for rest in queries[i:]]
        if outcome.blocked:
            pause = store.source_pause(ctx.db, ctx.src.name) or {}
            msg = f"source {ctx.src.name} paused until {pause.get('paused_until')} after blocking"
            outcome.skipped_pause = {"source": ctx.src.name, **pause}
            return runs + [record_skip(ctx.db, rest, "paused", msg) for rest in queries[i:]]
        if ctx.attempts.stopped():
            return runs + [record_skip(ctx.db, rest, "interrupted", "stopped before this query started")
                           for rest in queries[i:]]
        runs.append(run_query(ctx, q, outcome))
    return runs


def run_query(ctx: SourceContext, q: QuerySettings, outcome: _Outcome) -> QueryRun:
    """One query: its pages, then its authors; the run recorded whatever happens."""
    db = ctx.db
    run = QueryRun(query=q.name, source=q.source)
    store.sync_query(db, q.name, q.source, q.kind, q.value)
    with transaction(db):          # the run row and its lock appear together
        run.run_id = store.start_run(db, q.name, q.source)
        holder = store.acquire_query_lock(db, q.name, run.run_id)
    if holder is not None:
        run.status = "skipped"
        run.error = f"another crawl of this query is running (pid {holder['pid']} on {holder['host']})"
        store.finish_run(db, run.run_id, run.status, run.error)
        return run
    stats = ctx.source.http.stats
    before = stats.snapshot()
    try:
        run.status = walk_pages(ctx, q, run, stats, before)
        if run.status in ("ok", "partial") and ctx.src.fetch_authors:
            fetch_authors(ctx, run, stats, before)
    except Interrupted:
        run.status = "interrupted"
    except SourceBlocked as blocked:
        run.status, run.error = "blocked", ctx.attempts.pause(db, blocked.error)
        outcome.blocked = True
    except UnreachableError as exc:
        run.status, run.error = "failed", unreachable_message(ctx.src, exc)
        outcome.unreachable = run.error
    except UnsupportedError as exc:
        run.status, run.error = "failed", str(exc)
    except SourceError as exc:
        run.status, run.error = "partial", f"{getattr(exc, 'kind', 'error')}: {exc}"
    except BaseException as exc:       # a crash (or Ctrl-C): record it, keep the checkpoint, re-raise
        run.status = "interrupted" if not isinstance(exc, Exception) else "failed"
        run.error = f"{type(exc).__name__}: {exc}"
        _close_run(db, run, stats, before)
        raise
    _close_run(db, run, stats, before)
    return run


def _close_run(db: sqlite3.Connection, run: QueryRun, stats: Any, before: Any) -> None:
    run.take_stats(stats, before)
    try:
        store.update_run(db, run.run_id, run.counts(), run.faults)
        store.finish_run(db, run.run_id, run.status, run.error)
        store.set_query_status(db, run.query, run.run_id, run.status)
        store.release_query_lock(db, run.query, run.run_id)
    except sqlite3.Error as exc:  # the database itself is the problem (full, read-only): said once, by the caller
        log.warning("could not record the end of crawl run %s: %s", run.run_id, exc)
    except Exception:  # never mask the original problem
        log.exception("could not record the end of crawl run %s", run.run_id)
    level = logging.WARNING if run.status in ("blocked", "failed") else logging.INFO
    log.log(level, "query %s: %s, %d requests, %d pages, %d new posts, %d new users, faults %s%s",
            run.query, run.status, run.requests, run.pages, run.new_posts, run.new_users, run.faults or "{}",
            f" ({run.error})" if run.error else "")


def record_skip(db: sqlite3.Connection, q: QuerySettings, status: str, error: str) -> QueryRun:
    """A query that did not run (source paused, failed or stopped), recorded as a run."""
    run = QueryRun(query=q.name, source=q.source, status=status, error=error)
    store.sync_query(db, q.name, q.source, q.kind, q.value)
    run.run_id = store.start_run(db, q.name, q.source)
    store.finish_run(db, run.run_id, status, error)
    store.set_query_status(db, q.name, run.run_id, status)
    return run


def unreachable_message(src: SourceSettings, exc: UnreachableError) -> str:
    """What went wrong and what to do, in one line. For a loopback sandbox: how to start it."""
    msg = f"source {src.name}: {exc}"
    parts = urlsplit(exc.url)
    if src.platform in local_platforms() and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        port = parts.port or 80
        return f"{msg}; is the sandbox running? start it with `huaxiang sandbox serve --port {port}`"
    return f"{msg}; check the source's base_url and that the host is reachable"
