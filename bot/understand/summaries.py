"""Summing users up in the word-cutting worker processes, for the profiles.

Why in the workers: the main process would otherwise read every post again
after the cutting and count its terms (half a second per 100,000 posts, on
one core, while the workers sit idle). Each worker sums up a slice of the
users through its own connection; the main process only adds the summaries,
in user order, into the term matrix.

Two ways: after the cutting, the workers read the users' stored words back
(``summarise_users_at``); and in a first analysis, when no post has words
yet, each worker cuts and sums up whole users in one pass and stores the
words once all are cut (``cut_and_summarise_at``, ``store_held_at``, driven
by :class:`FirstCut`), so nothing is read twice. This module stays light
(no NumPy): the workers were forked before NumPy was loaded, and these
steps need none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite3

from config import Settings
from config.times import parse_stored
from nlp.tokenize import Runner, Tokenizer, process_chunk, worker_tokenizer
from nlp.user_posts import Summariser, SummaryChunk, UserSummary, by_user
from storage import analysis_input as input_store
from storage import tokens as token_store
from storage.db import database_path, opened, transaction
from storage.tokens import text_hash
from bot.understand.caches import Progress, cut_and_store_at

if TYPE_CHECKING:     # NumPy: loaded on a thread while the workers cut
    from nlp.profiles import ProfileBuilder, Profiles

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Shanghai"


def campaign_zone(settings: Settings) -> ZoneInfo:
    """The zone active hours are counted in ([engagement].timezone, else China's)."""
    try:
        return ZoneInfo(settings.engagement.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


_HELD: list[list[tuple]] = []      # in a worker process: token rows cut and not stored yet, a list per chunk
HOLD_MAX_ROWS = 60_000              # per worker (about 20 MB): beyond it the oldest rows are stored at once


def _store_oldest(db: sqlite3.Connection) -> int:
    rows = _HELD.pop(0)
    with transaction(db):
        token_store.store_tokens(db, rows)
    return len(rows)


def user_chunks(posts_per_user: Sequence[tuple[int, int]], posts_per_chunk: int) -> list[list[int]]:
    """Consecutive users in chunks of about ``posts_per_chunk`` posts (a user is
    never split): the workers' shares come out even however many posts each
    user has."""
    chunks: list[list[int]] = []
    current: list[int] = []
    n = 0
    for uid, count in posts_per_user:
        current.append(uid)
        n += count
        if n >= posts_per_chunk:
            chunks.append(current)
            current, n = [], 0
    if current:
        chunks.append(current)
    return chunks


def summarise_users_at(path: str, zone: ZoneInfo, min_posts: int, user_ids: Sequence[int]) -> SummaryChunk:
    """Worker step: these users' summaries (those with at least ``min_posts``
    posts), in user order, from their stored words, read through this
    process's own connection."""
    summariser = Summariser(worker_tokenizer(), zone, partial(parse_stored, naive=zone))
    out: list[tuple[int, UserSummary]] = []
    with opened(path, migrate=False) as db:
        for batch in input_store.iter_user_posts(db, user_ids=user_ids, texts=False):
            stored = input_store.user_profiles(db, sorted({r[0] for r in batch}))
            for uid, rows in by_user(batch):
                if len(rows) >= min_posts:
                    out.append((uid, summariser.summarise(rows, stored.get(uid, {}))))
    return SummaryChunk.of(out)


def cut_and_summarise_at(path: str, zone: ZoneInfo, min_posts: int,
                         user_ids: Sequence[int]) -> tuple[SummaryChunk, list[int]]:
    """Worker step of a first analysis: cut all these users' posts and sum
    the users up from the words just cut. Returns the summaries and the ids
    of the posts cut; the token rows stay in this worker until
    ``store_held_at`` (the store would otherwise take cores the cutting
    needs, while the clustering later leaves one idle), the latest
    ``HOLD_MAX_ROWS`` of them on a large corpus."""
    summariser = Summariser(worker_tokenizer(), zone, partial(parse_stored, naive=zone))
    with opened(path, migrate=False) as db:
        posts = input_store.user_posts_to_cut(db, user_ids)
        stored = input_store.user_profiles(db, sorted({p[0] for p in posts}))
        cut = process_chunk([p[2] or "" for p in posts])
        _HELD.append([(p[1], p[3], text_hash(p[2] or ""), *c) for p, c in zip(posts, cut)])
        while sum(map(len, _HELD)) > HOLD_MAX_ROWS:      # a large corpus: store the oldest now, memory stays bounded
            _store_oldest(db)
    # The rows iter_user_posts would read back (nlp.user_posts.POST_FIELDS), without the cleaned text.
    rows = [(p[0], p[1], c[0], c[2], c[3], p[4], p[5], p[6], p[7], None, p[8]) for p, c in zip(posts, cut)]
    out = [(uid, summariser.summarise(rs, stored.get(uid, {}))) for uid, rs in by_user(rows) if len(rs) >= min_posts]
    return SummaryChunk.of(out), [p[1] for p in posts]


def store_held_at(path: str) -> int:
    """Worker step, once in every worker (``Runner.each_worker``): store the
    token rows this worker holds, at the lowest priority, so the writing
    takes the core the clustering leaves idle. Returns how many rows."""
    try:
        os.nice(19)
    except OSError:             # pragma: no cover - not allowed here: store at the usual priority
        pass
    n = 0
    with opened(path, migrate=False) as db:
        while _HELD:
            n += _store_oldest(db)
    return n


def add_chunks(builder: ProfileBuilder, chunks: Sequence[SummaryChunk]) -> None:
    for chunk in chunks:
        builder.add_chunk(chunk)


class FirstCut:
    """A first analysis's cutting, whole users at a time, with the profiles
    made on the way (``profiles`` once called; words only).

    The workers store the words they cut only after all are cut, at the
    lowest priority (``settle()`` waits for that; call it before reading
    any post's words). A run killed before then loses only cut words, which
    the next run cuts again.

    ``numeric_ready()`` says whether NumPy and the profile builder are
    loaded (a thread loads them while the workers cut). Until then the
    summaries wait here, compact: waiting for the import instead would
    stall the workers.
    """

    def __init__(self, db: sqlite3.Connection, settings: Settings, tokenizer: Tokenizer,
                 numeric_ready: Callable[[], bool], progress: Progress | None = None) -> None:
        self.db, self.settings, self.tokenizer = db, settings, tokenizer
        self.numeric_ready, self.progress = numeric_ready, progress
        self.profiles: Profiles | None = None
        self._writes: list = []

    def __call__(self, runner: Runner, pending: Sequence[int]) -> list[int]:
        """Cut every pending post (they are all the posts there are); returns the ids cut."""
        path = database_path(self.db)
        counts = input_store.posts_per_user(self.db)
        zone = campaign_zone(self.settings)
        step = partial(cut_and_summarise_at, path, zone, self.settings.analysis.min_posts)
        builder, waiting, done = None, [], []
        for chunk, ids in runner.stream(step, user_chunks(counts, runner.chunk_size(len(pending)))):
            done += ids
            waiting.append(chunk)
            if builder is None and self.numeric_ready():
                builder = self._builder(zone)
            if builder is not None:
                add_chunks(builder, waiting)
                waiting.clear()
            if self.progress:
                self.progress("tokenise", len(ids), len(pending))
        builder = builder or self._builder(zone)
        add_chunks(builder, waiting)
        self.profiles = builder.finish()
        self._writes = runner.each_worker(partial(store_held_at, path))
        rest = sorted(set(pending).difference(done))          # posts of no known user
        return done + (runner.run(partial(cut_and_store_at, path), rest) if rest else [])

    def settle(self) -> None:
        """Wait until the workers have stored the words they cut (before
        anything reads them). Words that could not be stored are only a
        cache: the next analysis cuts those posts again."""
        writes, self._writes = self._writes, []
        try:
            stored = sum(w.get() for w in writes)
        except Exception as exc:    # noqa: BLE001 - a worker that died or a full disk: the audiences still stand
            log.warning("the words cut in this analysis could not all be stored (%s); the next analysis cuts"
                        " those posts again", exc)
            return
        if writes:
            log.debug("the cutting workers stored %d posts' words", stored)

    def _builder(self, zone: ZoneInfo) -> ProfileBuilder:
        from nlp.profiles import ProfileBuilder

        return ProfileBuilder(self.tokenizer, zone, partial(parse_stored, naive=zone), self.settings.analysis.min_posts)
