"""The author queue: profiles and recent posts of the authors a source's queries found.

Why a queue in the database: authors are marked pending in the same
transaction as the page that found them, and each is marked done in the
transaction that stores it, so a killed crawl fetches exactly the ones it
had not stored yet.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

from storage import crawl as store
from storage.db import transaction
from storage.posts import known_post_ids, upsert_posts, upsert_users
from storage.records import Post, User
from bot.find.crawler.attempts import Interrupted, SourceBlocked
from bot.find.crawler.context import SourceContext
from bot.find.crawler.pages import keep_stored
from bot.find.crawler.summary import QueryRun
from bot.find.errors import SourceError, UnreachableError, UnsupportedError

log = logging.getLogger(__name__)

MAX_AUTHOR_ATTEMPTS = 3
AUTHOR_WORKERS = 4        # concurrent author fetches when a source has no rate limit
AUTHOR_BATCH = 8          # authors stored per transaction

Fetched = tuple[str, list[User], list[Post]]


def fetch_authors(ctx: SourceContext, run: QueryRun, stats: Any, before: Any) -> None:
    """Profiles and recent posts of the authors this source has queued, within
    the budget; each author is stored with its done-mark."""
    # Authors found by another query that is part-way through its pass wait
    # for that query's own author step: fetched now, their timelines would
    # store posts before that query's remaining pages list them, and a post
    # a listing finds already stored gets no comment fetch. A crawl resumed
    # after a kill then stores what an uninterrupted one would.
    others = [q.name for q in ctx.settings.queries if q.source == ctx.src.name and q.name != run.query]
    held = store.queries_mid_pass(ctx.db, others)
    uids = store.pending_authors(ctx.db, ctx.src.name, ctx.src.author_budget, MAX_AUTHOR_ATTEMPTS, held)
    batch: list[Fetched] = []
    try:
        for uid, outcome in _results(ctx, uids):
            if ctx.attempts.stopped():
                raise Interrupted()
            fetched = _settle(ctx, run, uid, outcome)
            if fetched is None:
                continue
            batch.append(fetched)
            if len(batch) >= AUTHOR_BATCH:
                _store(ctx, run, batch, stats, before)
    finally:
        # What was fetched is kept even when the run stops or the source blocks.
        if batch:
            _store(ctx, run, batch, stats, before)


def _settle(ctx: SourceContext, run: QueryRun, uid: str, outcome: Any) -> Fetched | None:
    """One author's fetch outcome: to store, skipped (marked done or failed), or raised."""
    db, platform = ctx.db, ctx.source.platform
    if isinstance(outcome, (Interrupted, SourceBlocked, UnreachableError)):
        raise outcome
    if isinstance(outcome, UnsupportedError):
        with transaction(db):
            store.mark_author_done(db, platform, uid)
        return None
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
                ctx.attempts.run(f"timeline {uid}: full texts", lambda: ctx.source.expand_posts(fresh))
            keep_stored(db, platform, [p for p in posts if p.pid in known])
    except SourceError as exc:
        run.errors += 1
        log.warning("author %s: %s (will retry in a later run)", uid, exc)
        with transaction(db):
            store.mark_author_failed(db, platform, uid, str(exc), MAX_AUTHOR_ATTEMPTS)
        return None
    return uid, users, posts


def _fetch_one(ctx: SourceContext, uid: str) -> tuple[list[User], list[Post]]:
    """Profile and timeline pages of one author (network only; safe in a worker thread)."""
    profile = ctx.attempts.run(f"profile {uid}", lambda: ctx.source.user_profile(uid))
    posts: list[Post] = []
    users = [profile]
    cursor = None
    for _ in range(ctx.src.author_pages):
        page = ctx.attempts.run(f"timeline {uid}", lambda c=cursor: ctx.source.user_posts(uid, c),
                                accept=lambda p: p.skipped == 0)
        posts.extend(page.posts)
        users.extend(page.users)
        cursor = page.next_cursor
        if not cursor:
            break
    return users, posts


def _fetch_safe(ctx: SourceContext, uid: str) -> Any:
    try:
        return _fetch_one(ctx, uid)
    except Exception as exc:     # handed to the storing thread, which decides
        return exc


def _results(ctx: SourceContext, uids: list[str]) -> Iterator[tuple[str, Any]]:
    """Fetched authors in queue order. With limits off a few fetch at once
    (the platform works while we store); with a rate limit, one at a time."""
    limited = ctx.src.min_interval_s > 0 or ctx.src.jitter_s > 0
    if limited or len(uids) < 2:
        for uid in uids:
            yield uid, _fetch_safe(ctx, uid)
        return
    pool = ThreadPoolExecutor(max_workers=AUTHOR_WORKERS, thread_name_prefix=f"authors:{ctx.src.name}")
    try:
        window: deque[tuple[str, Future]] = deque()
        todo = iter(uids)
        for uid in islice(todo, AUTHOR_WORKERS * 2):
            window.append((uid, pool.submit(_fetch_safe, ctx, uid)))
        while window:
            uid, fut = window.popleft()
            yield uid, fut.result()
            nxt = next(todo, None)
            if nxt is not None and not ctx.attempts.stopped():
                window.append((nxt, pool.submit(_fetch_safe, ctx, nxt)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _store(ctx: SourceContext, run: QueryRun, batch: list[Fetched], stats: Any, before: Any) -> None:
    """A few authors per transaction, each with its done-mark (fewer commits, same kill-safety)."""
    db, platform = ctx.db, ctx.source.platform
    with transaction(db):
        for uid, users, posts in batch:
            uc = upsert_users(db, users)
            pc, uc2 = upsert_posts(db, posts, run_id=run.run_id)
            uc += uc2
            store.mark_author_done(db, platform, uid)
            run.add(pc, uc)
            run.authors += 1
        run.take_stats(stats, before)
        store.update_run(db, run.run_id, run.counts(), run.faults)
        store.mark_source_ok(db, ctx.src.name)
    for _ in batch:
        ctx.tick()
    batch.clear()
