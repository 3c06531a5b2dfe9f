"""One query's pass over its feed, a page per transaction.

Why passes and checkpoints: each query walks its feed newest-first until it
reaches the newest post the previous complete pass saw (or the end, or its
page budget). Every page's posts, users, queued authors and the cursor that
marks the page done are committed in ONE transaction, so a crawl killed at
any instant resumes from the last committed page: nothing lost, nothing
duplicated. A second crawl with nothing new costs one request per query.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from config.schema import QuerySettings
from storage import crawl as store
from storage.db import transaction
from storage.platforms import save_feed_state
from storage.posts import known_post_ids, upsert_posts, upsert_users
from storage.records import Post
from bot.find.crawler.attempts import SourceBlocked
from bot.find.crawler.context import SourceContext
from bot.find.crawler.summary import QueryRun
from bot.find.errors import SourceError, UnreachableError, UnsupportedError
from bot.find.sources.base import Page

log = logging.getLogger(__name__)


@dataclass
class PassState:
    """Where a query's pass stands (its checkpoint in ``queries``)."""

    cursor: str | None
    stop_at: str | None          # the newest post id the last complete pass saw
    pass_newest: str | None
    pass_pages: int


def newer(a: str, b: str) -> bool:
    """Is post id ``a`` newer than ``b``? Numeric ids compare as numbers."""
    if a.isascii() and b.isascii() and a.isdigit() and b.isdigit():   # "²".isdigit() is True, int("²") fails
        return int(a) > int(b)
    return a > b


def feed_posts(page: Page) -> list[Post]:
    """The page's own feed items, without retweeted originals embedded in them."""
    originals = {p.repost_of for p in page.posts if p.repost_of}
    return [p for p in page.posts if p.pid not in originals and p.kind == "post"]


def keep_stored(db: sqlite3.Connection, platform: str, posts: list[Post]) -> None:
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


def walk_pages(ctx: SourceContext, q: QuerySettings, run: QueryRun, stats: Any, before: Any) -> str:
    """Fetch and commit pages until the pass ends; "ok" or "interrupted"."""
    row = store.query_state(ctx.db, q.name)
    state = PassState(row["cursor"], row["newest_id"], row["pass_newest_id"], row["pass_pages"] if row["cursor"] else 0)
    while True:
        if ctx.attempts.stopped():
            return "interrupted"
        what = f"query {q.name} ({q.kind} {q.value!r}) page {state.cursor or 'first'}"
        page = ctx.attempts.run(what, lambda: ctx.source.fetch(q.kind, q.value, state.cursor),
                                accept=lambda p: p.skipped == 0)
        feed = feed_posts(page)
        reached = _reached(ctx, q, page, feed, state.stop_at)
        known = known_post_ids(ctx.db, ctx.source.platform, [p.pid for p in page.posts])
        _expand_new(ctx, q, [p for p in page.posts if p.pid not in known])
        keep_stored(ctx.db, ctx.source.platform, [p for p in page.posts if p.pid in known])
        comments = _comments(ctx, [p for p in feed if p.pid not in known])
        for pid in ([] if q.kind == "tag" else [p.pid for p in feed]):
            if state.pass_newest is None or newer(pid, state.pass_newest):
                state.pass_newest = pid
        state.pass_pages += 1
        # The pass ends where the last one began, at the end of the feed, or
        # when its page budget is spent (the next run starts from the top).
        done = reached or page.next_cursor is None or not (page.posts or page.users) or state.pass_pages >= q.max_pages
        _commit_page(ctx, q, run, page, feed, comments, done, state, stats, before)
        ctx.tick()
        if done:
            return "ok"
        state.cursor = page.next_cursor


def _reached(ctx: SourceContext, q: QuerySettings, page: Page, feed: list[Post], stop_at: str | None) -> bool:
    """Incremental stop: this query reached where its last pass began, or
    everything on the page is something *this query* already found."""
    platform = ctx.source.platform
    if q.kind == "tag":
        seen = store.query_known_uids(ctx.db, platform, q.name, [u.uid for u in page.users])
        return bool(page.users) and all(u.uid in seen for u in page.users)
    seen = store.query_known_pids(ctx.db, platform, q.name, [p.pid for p in feed])
    return (bool(stop_at) and any(not newer(p.pid, stop_at) for p in feed)) or \
        (bool(feed) and all(p.pid in seen for p in feed))


def _expand_new(ctx: SourceContext, q: QuerySettings, new_posts: list[Post]) -> None:
    """Full texts of posts not stored yet (a re-crawl of known pages costs nothing)."""
    if not new_posts:
        return
    try:
        ctx.attempts.run(f"query {q.name}: full texts", lambda: ctx.source.expand_posts(new_posts))
    except (UnsupportedError, SourceBlocked, UnreachableError):
        raise
    except SourceError as exc:    # retried already: keep the listing's text rather than stall the query
        log.warning("query %s: %s; kept the truncated text", q.name, exc)


def _comments(ctx: SourceContext, posts: list[Post]) -> list[Post]:
    """Comments of new posts, fetched before the page commits (so they share its transaction)."""
    pages = ctx.src.comment_pages
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
                page = ctx.attempts.run(f"comments on {post.pid}",
                                        lambda c=cursor: ctx.source.post_comments(post.pid, c),
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


def _commit_page(ctx: SourceContext, q: QuerySettings, run: QueryRun, page: Page, feed: list[Post],
                 comments: list[Post], done: bool, state: PassState, stats: Any, before: Any) -> None:
    """The page's posts, users, queued authors and checkpoint in one transaction."""
    db, platform = ctx.db, ctx.source.platform
    run.pages += 1
    run.skipped += page.skipped
    newest_at = max((p.created_at for p in feed if p.created_at), default=None) if done else None
    with transaction(db):
        pc, uc = upsert_posts(db, page.posts + comments, query=q.name, run_id=run.run_id)
        if page.users:
            uc += upsert_users(db, page.users)
            store.link_users(db, platform, q.name, [u.uid for u in page.users], run.run_id)
        if ctx.src.fetch_authors:
            authors = [u.uid for u in page.users] + [p.uid for p in feed]
            store.mark_authors_pending(db, platform, ctx.src.name, q.name, authors)
        store.checkpoint_query(db, q.name, None if done else page.next_cursor, state.pass_newest, done, newest_at)
        if hasattr(ctx.source, "validators"):
            save_feed_state(db, ctx.src.name, ctx.source.validators, ctx.source.changed)
        run.add(pc, uc)
        run.take_stats(stats, before)
        store.update_run(db, run.run_id, run.counts(), run.faults)
        store.mark_source_ok(db, ctx.src.name)
