"""Per-user profiles from posts already cut: each user's term row and stats, as matrices.

Why pure and apart from the reading: the analysis streams a million posts out
of storage one batch at a time; each user's rows are summed up by
``nlp.user_posts`` (words, ``#topics#``, ``@mentions``, bio words, ``tag:``
tags, an hour histogram, total engagement, the last post time), here or in
a worker process, and this module adds the summaries up in user order into a
term matrix and stat arrays, with each user's mean sentence vector when
vectors are used. The arithmetic is the same whoever feeds it and can be
tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import scipy.sparse as sp

from nlp import encode
from nlp.features import TermCounter
from nlp.meaning import PostBest
from nlp.relevance import Relevance
from nlp.tokenize import Tokenizer
from nlp.user_posts import POST_FIELDS, Summariser, SummaryChunk, UserSummary

CLEAN = POST_FIELDS.index("clean")


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
        self.summariser = Summariser(tokenizer, tz, parse_time)
        self.min_posts = max(1, min_posts)
        self.vector_of, self.post_best, self.excludes = vector_of, post_best, list(excludes)
        self.means = encode.VectorMeans() if vector_of is not None else None
        self.counter = TermCounter()
        self.user_ids: list[int] = []
        self.n_posts: list[int] = []
        self.hours: list[list[int]] = []
        self.engagement: list[float] = []
        self.last_post: list[datetime | None] = []
        self.total = 0

    def add(self, uid: int, rows: Sequence[tuple], profile: Mapping[str, Any]) -> bool:
        """One user's post rows and stored profile (bio, tags, last_seen); False
        when the user has too few posts to profile."""
        if len(rows) < self.min_posts:
            return False
        self.add_summary(uid, self.summariser.summarise(rows, profile))
        if self.means is not None or self.post_best is not None:
            self._add_vectors(rows)
        return True

    def add_summary(self, uid: int, summary: UserSummary) -> None:
        """One user already summed up (here or by a worker process); users are added in order."""
        self.counter.add_counts(summary.counts)
        self.user_ids.append(uid)
        self.n_posts.append(summary.n_posts)
        self.hours.append(summary.hours)
        self.engagement.append(summary.engagement)
        self.last_post.append(summary.last_post)
        self.total += summary.n_posts

    def add_chunk(self, chunk: SummaryChunk) -> None:
        """Users summed up by a worker process (``add_summary`` of each, in order, at less cost)."""
        self.counter.add_rows(chunk.terms, chunk.indptr, chunk.ids, chunk.counts)
        self.user_ids.extend(chunk.user_ids)
        self.n_posts.extend(chunk.n_posts)
        self.hours.extend(chunk.hours)
        self.engagement.extend(chunk.engagement)
        self.last_post.extend(chunk.last_post)
        self.total += sum(chunk.n_posts)

    def _add_vectors(self, rows: Sequence[tuple]) -> None:
        """The user's mean sentence vector and, with ``post_best``, their posts closest to each target."""
        vectors, texts = [], []
        for row in rows if self.vector_of is not None else ():
            clean = row[CLEAN]
            blob = self.vector_of(clean or "")
            if blob is not None:
                vectors.append(encode.from_blob(blob))
                texts.append(clean)
        if self.means is not None:
            self.means.add(vectors)
        if self.post_best is not None:
            self.post_best.add(vectors, texts, [[any(x in txt for x in ex) for ex in self.excludes] for txt in texts])

    def finish(self) -> Profiles:
        semantic = self.means.matrix() if self.means is not None else None
        return Profiles(self.user_ids, self.counter.matrix(), self.counter.terms(),
                        np.asarray(self.n_posts, dtype=np.int64),
                        np.asarray(self.hours, dtype=np.int64).reshape(-1, 24),
                        np.asarray(self.engagement, dtype=np.float64), self.last_post, {}, self.total, semantic)
