"""Per-user profiles from posts already cut: each user's terms and stats.

Why pure and apart from the reading: the analysis streams a million posts out
of storage one batch at a time; this module turns one user's rows into a term
row (words, ``#topics#``, ``@mentions``, bio words, ``tag:`` tags), an hour
histogram, total engagement and the last post time, so the arithmetic is the
same whoever feeds it and can be tested without a database.

A post row is a plain tuple (a million small objects would cost more than the
work), in the order storage reads them: ``POST_FIELDS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import scipy.sparse as sp

from nlp import activity, encode
from nlp.features import MENTION_PREFIX, TAG_PREFIX, TOPIC_PREFIX, TermCounter
from nlp.meaning import PostBest
from nlp.relevance import Relevance
from nlp.tokenize import Tokenizer

POST_FIELDS = ("user_id", "post_id", "tokens", "topics", "mentions", "created_at", "reposts", "comments", "likes",
               "clean", "topics_json")
HOUR_CACHE_MAX = 200_000      # distinct timestamps remembered (one timestamp recurs across many posts)


@dataclass
class Profiles:
    """Every profiled user's term counts and stats, row i = ``user_ids[i]``."""
    user_ids: list[int]
    counts: sp.csr_matrix | None      # None once the vectorizer holds its pruned copy (memory at 1M posts)
    terms: list[str]
    n_posts: np.ndarray
    hours: np.ndarray                 # users x 24
    engagement: np.ndarray            # sum of reposts+comments+likes
    last_post: list[datetime | None]   # each user's latest post (or last_seen), aware
    relevance: dict[str, list[Relevance]]
    total_posts: int
    semantic: np.ndarray | None = None   # users x dim sentence vectors (mean of their posts'), when used


def by_user(batch: Sequence[tuple]) -> Iterator[tuple[int, Sequence[tuple]]]:
    """The rows of one user at a time (the batch is ordered by user)."""
    start = 0
    while start < len(batch):
        uid, end = batch[start][0], start
        while end < len(batch) and batch[end][0] == uid:
            end += 1
        yield uid, batch[start:end]
        start = end


def post_topics(topics: str | None, topics_json: str | None) -> set[str]:
    """A post's #topics#: the tab-joined ones from its text, and those a platform or import listed."""
    tps = set(topics.split("\t")) if topics else set()
    if topics_json and topics_json != "[]":
        try:
            tps.update(t.lower() for t in json.loads(topics_json) if isinstance(t, str))
        except ValueError:
            pass
    tps.discard("")
    return tps


@dataclass
class _UserPosts:
    terms: list[str]
    hours: list[int]
    engagement: float
    last: str | None
    vectors: list[np.ndarray]
    texts: list[str]


class ProfileBuilder:
    """Adds users one at a time, then ``finish()`` -> :class:`Profiles`.

    ``vector_of(clean text) -> stored vector blob or None`` makes each user's
    mean sentence vector (and feeds ``post_best``, each user's posts closest to
    each target, skipping posts that contain one of that target's ``exclude``
    words).
    """

    def __init__(self, tokenizer: Tokenizer, tz: ZoneInfo, parse_time: Callable[[str | None], datetime | None],
                 min_posts: int = 1, vector_of: Callable[[str], bytes | None] | None = None,
                 post_best: PostBest | None = None, excludes: Sequence[Sequence[str]] = ()) -> None:
        self.tokenizer, self.tz, self.min_posts = tokenizer, tz, max(1, min_posts)
        self.parse_time = parse_time       # stored ISO text -> aware datetime (the stage passes config.times')
        self.vector_of, self.post_best, self.excludes = vector_of, post_best, list(excludes)
        self.means = encode.VectorMeans() if vector_of is not None else None
        self.counter = TermCounter()
        self.user_ids: list[int] = []
        self.n_posts: list[int] = []
        self.hours: list[list[int]] = []
        self.engagement: list[float] = []
        self.last_post: list[datetime | None] = []
        self.total = 0
        self._hour_cache: dict[str, int | None] = {}

    def add(self, uid: int, rows: Sequence[tuple], profile: Mapping[str, Any]) -> bool:
        """One user's post rows and stored profile (bio, tags, last_seen); False
        when the user has too few posts to profile."""
        if len(rows) < self.min_posts:
            return False
        own = self._posts(rows)
        bio = profile.get("bio") or ""
        if bio:
            own.terms.extend(self.tokenizer.tokenize(bio.lower()))
        own.terms.extend(TAG_PREFIX + str(t).lower() for t in profile.get("tags") or [] if t)
        self.counter.add(own.terms)
        self.user_ids.append(uid)
        if self.means is not None:
            self.means.add(own.vectors)
        self.n_posts.append(len(rows))
        self.hours.append(own.hours)
        self.engagement.append(own.engagement)
        self.last_post.append(self.parse_time(own.last or profile.get("last_seen")))
        if self.post_best is not None:
            self.post_best.add(own.vectors, own.texts, [[any(x in txt for x in ex) for ex in self.excludes]
                                                        for txt in own.texts])
        self.total += len(rows)
        return True

    def _posts(self, rows: Sequence[tuple]) -> _UserPosts:
        own = _UserPosts([], [0] * 24, 0.0, None, [], [])
        terms, hist = own.terms, own.hours
        for (_u, _pid, tokens, topics, mentions, created, rp, cm, lk, clean, topics_json) in rows:
            if self.vector_of is not None:
                blob = self.vector_of(clean or "")
                if blob is not None:
                    own.vectors.append(encode.from_blob(blob))
                    own.texts.append(clean)
            if tokens:
                terms.extend(tokens.split())
            if topics or topics_json:      # most posts have neither: skip building an empty set
                terms.extend(TOPIC_PREFIX + t for t in post_topics(topics, topics_json))
            if mentions:
                terms.extend(MENTION_PREFIX + m for m in mentions.split("\t") if m)
            if created:
                h = self._local_hour(created)
                if h is not None:
                    hist[h] += 1
                if own.last is None or created > own.last:
                    own.last = created
            own.engagement += (rp or 0) + (cm or 0) + (lk or 0)
        return own

    def _local_hour(self, created: str) -> int | None:
        """The post's hour in the campaign's zone, remembered per timestamp."""
        cache = self._hour_cache
        if created in cache:
            return cache[created]
        if len(cache) > HOUR_CACHE_MAX:
            cache.clear()
        h = cache[created] = activity.local_hour(self.parse_time(created), self.tz)
        return h

    def finish(self) -> Profiles:
        semantic = self.means.matrix() if self.means is not None else None
        return Profiles(self.user_ids, self.counter.matrix(), self.counter.terms(),
                        np.asarray(self.n_posts, dtype=np.int64),
                        np.asarray(self.hours, dtype=np.int64).reshape(-1, 24),
                        np.asarray(self.engagement, dtype=np.float64), self.last_post, {}, self.total, semantic)
