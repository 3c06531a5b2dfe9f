"""The crawler: run configured queries against their sources, incrementally.

Why passes and checkpoints: each query walks its feed newest-first until it
reaches the newest post the previous complete pass saw (or the end, or its
page budget). Every page's posts, users, queued authors and the cursor that
marks the page done are committed in ONE transaction, so a crawl killed at
any instant resumes from the last committed page: nothing lost, nothing
duplicated. A second crawl with nothing new costs one request per query.

Why pause instead of retry: a platform that answers 418/432/403, a captcha
or a login redirect is telling us to stop. The crawler backs off a few times
(exponential with jitter, honouring Retry-After), then pauses the whole
source with a growing cool-down recorded in ``sources``; other sources carry on.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from dataclasses import dataclass, field
from typing import Any, TypeVar


from config import ConfigError, Settings
from config.schema import QuerySettings, SourceSettings
from storage import crawl as store
from storage.db import database_path, opened, transaction, write_failure
from storage.platforms import load_feed_state, save_feed_state
from storage.posts import known_post_ids, upsert_posts, upsert_users
from storage.records import Post, UpsertCounts, User
from bot.errors import HuaxiangError
from bot.find.http import UnreachableError
from bot.find.sources.base import (BlockedError, Page, PayloadError, SessionExpiredError, Source, SourceError, UnsupportedError,
                              open_source)

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_AUTHOR_ATTEMPTS = 3
AUTHOR_WORKERS = 4        # concurrent author fetches when a source has no rate limit
AUTHOR_BATCH = 8          # authors stored per transaction


@dataclass
class QueryRun:
    """What one query's run did; also the row in ``crawl_runs``."""

    query: str
    source: str
    status: str = "ok"        # ok | partial | blocked | paused | interrupted | failed | skipped
    run_id: int | None = None
    requests: int = 0
    bytes: int = 0
    pages: int = 0
    new_posts: int = 0
    updated_posts: int = 0
    new_users: int = 0
    updated_users: int = 0
    authors: int = 0
    errors: int = 0
    skipped: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("requests", "bytes", "pages", "new_posts", "updated_posts", "new_users",
                                              "updated_users", "authors", "errors", "skipped")}


@dataclass
class CrawlSummary:
    runs: list[QueryRun] = field(default_factory=list)
    paused_sources: list[dict[str, Any]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)     # one line per source nothing answered for

    def as_counts(self) -> dict[str, int]:
        out: dict[str, int] = Counter()
        out["queries"] = len(self.runs)
        for r in self.runs:
            for k, v in r.counts().items():
                out[k] += v
            out[f"status_{r.status}"] += 1
        out["paused_sources"] = len(self.paused_sources)
        return dict(out)


class _Interrupted(Exception):
    pass


class _SourceBlocked(Exception):
    def __init__(self, error: BlockedError):
        super().__init__(str(error))
        self.error = error


def _newer(a: str, b: str) -> bool:
    """Is post id ``a`` newer than ``b``? Numeric ids compare as numbers."""
    if a.isascii() and b.isascii() and a.isdigit() and b.isdigit():   # "²".isdigit() is True, int("²") fails
        return int(a) > int(b)
    return a > b


def _feed_posts(page: Page) -> list[Post]:
    """The page's own feed items, without retweeted originals embedded in them."""
    originals = {p.repost_of for p in page.posts if p.repost_of}
    return [p for p in page.posts if p.pid not in originals and p.kind == "post"]


def _keep_stored(db: sqlite3.Connection, platform: str, posts: list[Post]) -> None:
    """Known posts keep their stored full text and group: a listing shows long
    posts truncated and a timeline does not say which super-topic a post is in."""
    if not posts:
        return
    stored = store.stored_post_fields(db, platform, [p.pid for p in posts])
    for p in posts:
        old = stored.get(p.pid)
        if old is None:
            continue
        if isinstance(p.raw, dict) and p.raw.get("isLongText"):
            p.text, p.topics, p.mentions = old["text"], old["topics"], old["mentions"]
        if p.group_id is None:
            p.group_id = old["group_id"]


class _SourceCrawl:
    """One source's queries, run one after another through one polite client."""

    def __init__(self, db: sqlite3.Connection, settings: Settings, src: SourceSettings, source: Source,
                 stop: threading.Event | None, progress: Callable[..., Any] | None, rng: random.Random):
        self.db = db
        self.settings = settings
        self.src = src
        self.source = source
        self.stop = stop
        self.progress = progress
        self.rng = rng
        self.blocked = False
        self.unreachable: str | None = None      # set when nothing answers: the source's other queries are skipped

    # -- waiting and retrying ------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.stop is not None:
            if self.stop.wait(seconds):
                raise _Interrupted()
        else:
            getattr(self.source.http, "sleep", time.sleep)(seconds)

    def _attempt(self, what: str, fn: Callable[[], T], accept: Callable[[T], bool] | None = None) -> T:
        """Call ``fn`` with bounded retries: backoff on errors, pause on persistent blocking.

        ``accept`` may reject a result (e.g. a page with malformed items) to get
        one more try; the last result is kept when tries run out.
        """
        tries = self.src.page_retries
        for attempt in range(tries + 1):
            if self.stop is not None and self.stop.is_set():
                raise _Interrupted()
            last = attempt == tries
            try:
                result = fn()
            except (UnsupportedError, UnreachableError):
                raise
            except BlockedError as exc:
                log.warning("%s: blocked by the platform (%s): %s", what, exc.kind, exc)
                too_long = exc.retry_after is not None and exc.retry_after > self.src.max_backoff_s
                if last or too_long or isinstance(exc, SessionExpiredError):
                    raise _SourceBlocked(exc) from None
                delay = exc.retry_after if exc.retry_after is not None else self._backoff(attempt)
                self._sleep(delay)
                continue
            except SourceError as exc:
                log.warning("%s: %s (%s)", what, exc, getattr(exc, "kind", "error"))
                if last:
                    raise
                self._sleep(self._backoff(attempt))
                continue
            if accept is None or accept(result) or last:
                return result
            log.info("%s: malformed items on the page, fetching it again", what)
            self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        base = self.src.backoff_s * (2 ** attempt)
        return min(self.src.max_backoff_s, base + self.rng.uniform(0, base * 0.25))

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(1)

    # -- one query ---------------------------------------------------------------
    def run_query(self, q: QuerySettings) -> QueryRun:
        db = self.db
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
        stats = self.source.http.stats
        before = stats.snapshot()
        try:
            run.status = self._pages(q, run, stats, before)
            if run.status in ("ok", "partial") and self.src.fetch_authors:
                self._authors(run, stats, before)
        except _Interrupted:
            run.status = "interrupted"
        except _SourceBlocked as blocked:
            run.status = "blocked"
            run.error = self._pause(blocked.error)
        except UnreachableError as exc:
            run.status, run.error = "failed", unreachable_message(self.src, exc)
            self.unreachable = run.error
        except UnsupportedError as exc:
            run.status, run.error = "failed", str(exc)
        except SourceError as exc:
            run.status, run.error = "partial", f"{getattr(exc, 'kind', 'error')}: {exc}"
        except BaseException as exc:       # a crash (or Ctrl-C): record it, keep the checkpoint, re-raise
            run.status = "interrupted" if not isinstance(exc, Exception) else "failed"
            run.error = f"{type(exc).__name__}: {exc}"
            self._close_run(run, stats, before)
            raise
        self._close_run(run, stats, before)
        return run

    def _close_run(self, run: QueryRun, stats: Any, before: Any) -> None:
        self._take_stats(run, stats, before)
        db = self.db
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

    def _take_stats(self, run: QueryRun, stats: Any, before: Any) -> None:
        delta = stats.since(before)
        run.requests, run.bytes, run.errors = delta.requests, delta.bytes, delta.errors
        run.faults = dict(sorted(delta.faults.items()))

    def _pause(self, error: BlockedError) -> str:
        # An expired session stays paused until someone signs in again (`huaxiang login` lifts the pause).
        floor = self.src.max_cooldown_s if isinstance(error, SessionExpiredError) else error.retry_after
        until = store.pause_source(self.db, self.src.name, f"{error.kind}: {error}", self.src.block_cooldown_s,
                                   self.src.max_cooldown_s, floor)
        self.blocked = True
        log.warning("source %s paused until %s: %s persisted after %d retries", self.src.name, until, error.kind,
                    self.src.page_retries)
        return f"{error.kind}: {error} - source paused until {until}"

    def _fetch_page(self, q: QuerySettings, cursor: str | None) -> Page:
        what = f"query {q.name} ({q.kind} {q.value!r}) page {cursor or 'first'}"
        return self._attempt(what, lambda: self.source.fetch(q.kind, q.value, cursor), accept=lambda p: p.skipped == 0)

    def _pages(self, q: QuerySettings, run: QueryRun, stats: Any, before: Any) -> str:
        db = self.db
        platform = self.source.platform
        state = store.query_state(db, q.name)
        cursor = state["cursor"]
        stop_at = state["newest_id"]
        pass_newest = state["pass_newest_id"]
        pass_pages = state["pass_pages"] if cursor else 0
        while True:
            if self.stop is not None and self.stop.is_set():
                return "interrupted"
            page = self._fetch_page(q, cursor)
            feed = _feed_posts(page)
            # Incremental stop: this query reached where its last pass began, or
            # everything on the page is something *this query* already found.
            known = known_post_ids(db, platform, [p.pid for p in page.posts])
            if q.kind == "tag":
                seen = store.query_known_uids(db, platform, q.name, [u.uid for u in page.users])
                reached = bool(page.users) and all(u.uid in seen for u in page.users)
                fresh_ids: list[str] = []
            else:
                seen = store.query_known_pids(db, platform, q.name, [p.pid for p in feed])
                reached = (bool(stop_at) and any(not _newer(p.pid, stop_at) for p in feed)) or \
                          (bool(feed) and all(p.pid in seen for p in feed))
                fresh_ids = [p.pid for p in feed]
            new_posts = [p for p in page.posts if p.pid not in known]
            if new_posts:
                try:
                    self._attempt(f"query {q.name}: full texts", lambda: self.source.expand_posts(new_posts))
                except (UnsupportedError, _SourceBlocked, UnreachableError):
                    raise
                except SourceError as exc:    # retried already: keep the listing's text rather than stall the query
                    log.warning("query %s: %s; kept the truncated text", q.name, exc)
            _keep_stored(db, platform, [p for p in page.posts if p.pid in known])
            comments = self._comments(q, [p for p in feed if p.pid not in known])
            for pid in fresh_ids:
                if pass_newest is None or _newer(pid, pass_newest):
                    pass_newest = pid
            pass_pages += 1
            # The pass ends where the last one began, at the end of the feed, or
            # when its page budget is spent (the next run starts from the top).
            done = reached or page.next_cursor is None or not (page.posts or page.users) or pass_pages >= q.max_pages
            run.pages += 1
            run.skipped += page.skipped
            newest_at = max((p.created_at for p in feed if p.created_at), default=None) if done else None
            with transaction(db):
                pc, uc = upsert_posts(db, page.posts + comments, query=q.name, run_id=run.run_id)
                if page.users:
                    uc += upsert_users(db, page.users)
                    store.link_users(db, platform, q.name, [u.uid for u in page.users], run.run_id)
                if self.src.fetch_authors:
                    authors = [u.uid for u in page.users] + [p.uid for p in feed]
                    store.mark_authors_pending(db, platform, self.src.name, q.name, authors)
                store.checkpoint_query(db, q.name, None if done else page.next_cursor, pass_newest, done, newest_at)
                if hasattr(self.source, "validators"):
                    save_feed_state(db, self.src.name, self.source.validators, self.source.changed)
                self._count(run, pc, uc)
                self._take_stats(run, stats, before)
                store.update_run(db, run.run_id, run.counts(), run.faults)
                store.mark_source_ok(db, self.src.name)
            self._tick()
            if done:
                return "ok"
            cursor = page.next_cursor

    def _comments(self, q: QuerySettings, posts: list[Post]) -> list[Post]:
        """Comments of new posts, fetched before the page commits (so they share its transaction)."""
        pages = self.src.comment_pages
        out: list[Post] = []
        if pages <= 0:
            return out
        for post in posts:
            if not post.comments:
                continue
            cursor = None
            for _ in range(pages):
                try:
                    # A page with a malformed comment is fetched again, as listing pages are:
                    # accepting it would lose that comment for good (the post is then known).
                    page = self._attempt(f"comments on {post.pid}", lambda c=cursor: self.source.post_comments(post.pid, c),
                                         accept=lambda p: p.skipped == 0)
                except UnsupportedError:
                    return out
                except UnreachableError:
                    raise
                except SourceError as exc:
                    log.info("comments on %s: given up (%s)", post.pid, exc)
                    break
                out.extend(page.posts)
                cursor = page.next_cursor
                if not cursor:
                    break
        return out

    def _fetch_author(self, uid: str) -> tuple[list[User], list[Post]]:
        """Profile and timeline pages of one author (network only; safe in a worker thread)."""
        profile = self._attempt(f"profile {uid}", lambda: self.source.user_profile(uid))
        posts: list[Post] = []
        users = [profile]
        cursor = None
        for _ in range(self.src.author_pages):
            page = self._attempt(f"timeline {uid}", lambda c=cursor: self.source.user_posts(uid, c),
                                 accept=lambda p: p.skipped == 0)
            posts.extend(page.posts)
            users.extend(page.users)
            cursor = page.next_cursor
            if not cursor:
                break
        return users, posts

    def _fetch_author_safe(self, uid: str) -> Any:
        try:
            return self._fetch_author(uid)
        except Exception as exc:     # handed to the storing thread, which decides
            return exc

    def _author_results(self, uids: list[str]) -> Iterator[tuple[str, Any]]:
        """Fetched authors in queue order. With limits off a few fetch at once
        (the platform works while we store); with a rate limit, one at a time."""
        limited = self.src.min_interval_s > 0 or self.src.jitter_s > 0
        if limited or len(uids) < 2:
            for uid in uids:
                yield uid, self._fetch_author_safe(uid)
            return
        pool = ThreadPoolExecutor(max_workers=AUTHOR_WORKERS, thread_name_prefix=f"authors:{self.src.name}")
        try:
            window: deque[tuple[str, Future]] = deque()
            todo = iter(uids)
            for uid in islice(todo, AUTHOR_WORKERS * 2):
                window.append((uid, pool.submit(self._fetch_author_safe, uid)))
            while window:
                uid, fut = window.popleft()
                yield uid, fut.result()
                nxt = next(todo, None)
                if nxt is not None and not (self.stop is not None and self.stop.is_set()):
                    window.append((nxt, pool.submit(self._fetch_author_safe, nxt)))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _authors(self, run: QueryRun, stats: Any, before: Any) -> None:
        """Profiles and recent posts of the authors this source has queued, within
        the budget; each author is stored in its own transaction with its done-mark."""
        db = self.db
        platform = self.source.platform
        # Authors found by another query that is part-way through its pass wait
        # for that query's own author step: fetched now, their timelines would
        # store posts before that query's remaining pages list them, and a post
        # a listing finds already stored gets no comment fetch. A crawl resumed
        # after a kill then stores what an uninterrupted one would.
        others = [q.name for q in self.settings.queries if q.source == self.src.name and q.name != run.query]
        held = store.queries_mid_pass(db, others)
        uids = store.pending_authors(db, self.src.name, self.src.author_budget, MAX_AUTHOR_ATTEMPTS, held)
        batch: list[tuple[str, list[User], list[Post]]] = []
        try:
            for uid, outcome in self._author_results(uids):
                if self.stop is not None and self.stop.is_set():
                    raise _Interrupted()
                if isinstance(outcome, (_Interrupted, _SourceBlocked, UnreachableError)):
                    raise outcome
                if isinstance(outcome, UnsupportedError):
                    with transaction(db):
                        store.mark_author_done(db, platform, uid)
                    continue
                if isinstance(outcome, Exception) and not isinstance(outcome, SourceError):
                    raise outcome
                try:
                    if isinstance(outcome, Exception):
                        raise outcome
                    users, posts = outcome
                    if posts:
                        known = known_post_ids(db, platform, [p.pid for p in posts])
                        fresh = [p for p in posts if p.pid not in known]
                        if fresh:
                            self._attempt(f"timeline {uid}: full texts", lambda: self.source.expand_posts(fresh))
                        _keep_stored(db, platform, [p for p in posts if p.pid in known])
                except SourceError as exc:
                    run.errors += 1
                    log.warning("author %s: %s (will retry in a later run)", uid, exc)
                    with transaction(db):
                        store.mark_author_failed(db, platform, uid, str(exc), MAX_AUTHOR_ATTEMPTS)
                    continue
                batch.append((uid, users, posts))
                if len(batch) >= AUTHOR_BATCH:
                    self._store_authors(run, batch, stats, before)
        finally:
            # What was fetched is kept even when the run stops or the source blocks.
            if batch:
                self._store_authors(run, batch, stats, before)

    def _store_authors(self, run: QueryRun, batch: list[tuple[str, list[User], list[Post]]], stats: Any,
                       before: Any) -> None:
        """A few authors per transaction, each with its done-mark (fewer commits, same kill-safety)."""
        db = self.db
        platform = self.source.platform
        with transaction(db):
            for uid, users, posts in batch:
                uc = upsert_users(db, users)
                pc, uc2 = upsert_posts(db, posts, run_id=run.run_id)
                uc += uc2
                store.mark_author_done(db, platform, uid)
                self._count(run, pc, uc)
                run.authors += 1
            self._take_stats(run, stats, before)
            store.update_run(db, run.run_id, run.counts(), run.faults)
            store.mark_source_ok(db, self.src.name)
        for _ in batch:
            self._tick()
        batch.clear()

    @staticmethod
    def _count(run: QueryRun, pc: UpsertCounts, uc: UpsertCounts) -> None:
        run.new_posts += pc.new
        run.updated_posts += pc.updated
        run.new_users += uc.new
        run.updated_users += uc.updated


def _select_queries(settings: Settings, query_names: list[str] | None) -> list[QuerySettings]:
    if query_names:
        known = {q.name: q for q in settings.queries}
        missing = [n for n in query_names if n not in known]
        if missing:
            names = ", ".join(sorted(known)) or "none configured"
            raise HuaxiangError(f"no query named {', '.join(missing)} (configured: {names})")
        return [known[n] for n in query_names]
    return [q for q in settings.queries if q.enabled]


def _record_skip(db: sqlite3.Connection, q: QuerySettings, status: str, error: str) -> QueryRun:
    run = QueryRun(query=q.name, source=q.source, status=status, error=error)
    store.sync_query(db, q.name, q.source, q.kind, q.value)
    run.run_id = store.start_run(db, q.name, q.source)
    store.finish_run(db, run.run_id, status, error)
    store.set_query_status(db, q.name, run.run_id, status)
    return run


def _crawl_source(db: sqlite3.Connection, settings: Settings, src: SourceSettings, queries: list[QuerySettings],
                  stop: threading.Event | None, progress: Callable[..., Any] | None, transport: Any,
                  client_kw: dict[str, Any]) -> tuple[list[QueryRun], dict[str, Any] | None]:
    store.sync_source(db, src.name, src.platform, src.base_url)
    pause = store.source_pause(db, src.name)
    if pause:
        msg = f"source {src.name} is paused until {pause['paused_until']} ({pause['pause_reason']})"
        log.warning("%s; skipping its queries", msg)
        return [_record_skip(db, q, "paused", msg) for q in queries], {"source": src.name, **pause}
    try:
        source = open_source(settings, src, transport=transport, **client_kw)
    except (ConfigError, HuaxiangError) as exc:
        return [_record_skip(db, q, "failed", str(exc)) for q in queries], None
    if hasattr(source, "validators"):
        # Feed sources poll with conditional GET: hand them the ETag/Last-Modified
        # values of the last run so an unchanged feed costs a 304.
        source.validators.update(load_feed_state(db, src.name))
    runs: list[QueryRun] = []
    crawl = _SourceCrawl(db, settings, src, source, stop, progress, random.Random())
    try:
        for i, q in enumerate(queries):
            if crawl.unreachable:
                runs += [_record_skip(db, rest, "failed", crawl.unreachable) for rest in queries[i:]]
                break
            if crawl.blocked:
                pause = store.source_pause(db, src.name) or {}
                msg = f"source {src.name} paused until {pause.get('paused_until')} after blocking"
                runs += [_record_skip(db, rest, "paused", msg) for rest in queries[i:]]
                return runs, {"source": src.name, **pause}
            if stop is not None and stop.is_set():
                runs += [_record_skip(db, rest, "interrupted", "stopped before this query started") for rest in queries[i:]]
                break
            runs.append(crawl.run_query(q))
    finally:
        source.http.close()
    blocked = store.source_pause(db, src.name) if crawl.blocked else None
    if crawl.unreachable:
        return runs, {"source": src.name, "unreachable": crawl.unreachable}
    return runs, ({"source": src.name, **blocked} if blocked else None)


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
            summary.runs += [_record_skip(db, q, "failed", f"no [[sources]] entry is named {name!r}") for q in qs]
            continue
        jobs.append((src, qs))
    path = database_path(db)
    if len(jobs) <= 1 or not path:
        results = [_crawl_source(db, settings, src, qs, stop, progress, transport, client_kw) for src, qs in jobs]
    else:
        results = _parallel(path, settings, jobs, stop, progress, transport, client_kw)
    for runs, paused in results:
        summary.runs += runs
        if paused and "unreachable" in paused:
            summary.unreachable.append(paused["unreachable"])
        elif paused:
            summary.paused_sources.append(paused)
    return summary


def unreachable_message(src: SourceSettings, exc: UnreachableError) -> str:
    """What went wrong and what to do, in one line. For a loopback sandbox: how to start it."""
    from urllib.parse import urlsplit

    msg = f"source {src.name}: {exc}"
    parts = urlsplit(exc.url)
    if src.platform == "sandbox" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        port = parts.port or 80
        return f"{msg}; is the sandbox running? start it with `huaxiang sandbox serve --port {port}`"
    return f"{msg}; check the source's base_url and that the host is reachable"


def _parallel(path: str, settings: Settings, jobs: list, stop: threading.Event | None,
              progress: Callable[..., Any] | None, transport: Any, client_kw: dict[str, Any]) -> list:
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
                results[i] = _crawl_source(conn, settings, src, qs, stop, safe_progress, transport, client_kw)
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
