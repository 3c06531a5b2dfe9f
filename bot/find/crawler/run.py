"""A crawl: the configured queries once, each source in its own thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from config import Settings
from config.schema import QuerySettings, SourceSettings
from storage import crawl as store
from storage.db import database_path, opened, write_failure
from bot.errors import HuaxiangError
from bot.find.crawler.source_crawl import crawl_source, record_skip
from bot.find.crawler.summary import CrawlSummary, QueryRun

SourceResult = tuple[list[QueryRun], dict[str, Any] | None]


def run_crawl(db: sqlite3.Connection, settings: Settings, query_names: list[str] | None = None,
              stop: threading.Event | None = None, progress: Callable[..., Any] | None = None,
              transport: Any = None, **client_kw: Any) -> CrawlSummary:
    """Run the configured queries once (all enabled ones, or those named).

    Sources run concurrently (one thread and one DB connection each) so a
    slow, politely paced platform never holds up another; a source's own
    queries run one after another. ``stop`` set: the current page is
    finished and checkpointed, the run is recorded as interrupted, and the
    call returns. ``progress(1)`` is called per page and per author fetched.
    ``client_kw`` (clock, sleep, rng) goes to each ``PoliteClient``.
    A database that refuses writes (full disk, read-only file) raises
    ``StorageError`` naming the file.
    """
    queries = _select_queries(settings, query_names)
    summary = CrawlSummary()
    if not queries:
        return summary
    try:
        return _run_queries(db, settings, queries, summary, stop, progress, transport, client_kw)
    except sqlite3.DatabaseError as exc:
        # A full disk or a read-only file stops the crawl: what was committed is
        # kept (each page is one transaction) and the next crawl resumes from it.
        raise write_failure(db, exc) from None


def _select_queries(settings: Settings, query_names: list[str] | None) -> list[QuerySettings]:
    if query_names:
        known = {q.name: q for q in settings.queries}
        missing = [n for n in query_names if n not in known]
        if missing:
            names = ", ".join(sorted(known)) or "none configured"
            raise HuaxiangError(f"no query named {', '.join(missing)} (configured: {names})")
        return [known[n] for n in query_names]
    return [q for q in settings.queries if q.enabled]


def _run_queries(db: sqlite3.Connection, settings: Settings, queries: list[QuerySettings], summary: CrawlSummary,
                 stop: threading.Event | None, progress: Callable[..., Any] | None, transport: Any,
                 client_kw: dict[str, Any]) -> CrawlSummary:
    store.interrupt_stale_runs(db)
    by_source: dict[str, list[QuerySettings]] = {}
    for q in queries:
        by_source.setdefault(q.source, []).append(q)
    jobs = []
    for name, qs in by_source.items():
        try:
            src = settings.source(name)
        except KeyError:
            summary.runs += [record_skip(db, q, "failed", f"no [[sources]] entry is named {name!r}") for q in qs]
            continue
        jobs.append((src, qs))
    path = database_path(db)
    if len(jobs) <= 1 or not path:
        results = [crawl_source(db, settings, src, qs, stop, progress, transport, client_kw) for src, qs in jobs]
    else:
        results = _parallel(path, settings, jobs, stop, progress, transport, client_kw)
    for runs, paused in results:
        summary.runs += runs
        if paused and "unreachable" in paused:
            summary.unreachable.append(paused["unreachable"])
        elif paused:
            summary.paused_sources.append(paused)
    return summary


def _parallel(path: str, settings: Settings, jobs: list[tuple[SourceSettings, list[QuerySettings]]],
              stop: threading.Event | None, progress: Callable[..., Any] | None, transport: Any,
              client_kw: dict[str, Any]) -> list[SourceResult]:
    lock = threading.Lock()

    def safe_progress(n: int = 1) -> None:
        if progress is not None:
            with lock:
                progress(n)

    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(i: int, src: SourceSettings, qs: list[QuerySettings]) -> None:
        try:
            with opened(path, busy_timeout_ms=settings.database.busy_timeout_ms) as conn:
                results[i] = crawl_source(conn, settings, src, qs, stop, safe_progress, transport, client_kw)
        except BaseException as exc:  # surfaced in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, src, qs), name=f"crawl:{src.name}", daemon=True)
               for i, (src, qs) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
