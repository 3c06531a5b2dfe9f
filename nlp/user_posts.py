"""One user's post rows summed up in plain Python: term counts, active hours, engagement, latest post.

Why apart from ``nlp.profiles``: this part needs no NumPy, so the analysis's
word-cutting workers (forked before NumPy and scikit-learn are loaded) can
sum users up beside the main process, which only adds the summaries into
matrices (``nlp.profiles.ProfileBuilder``). Both paths run this same code,
so a profile is the same whichever process summed it.

A post row is a plain tuple (a million small objects would cost more than the
work), in the order storage reads them: ``POST_FIELDS``.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import filterfalse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nlp import activity
from nlp.tokenize import Tokenizer

POST_FIELDS = ("user_id", "post_id", "tokens", "topics", "mentions", "created_at", "reposts", "comments", "likes",
               "clean", "topics_json")
# A profile's marked terms, beside plain words: they cluster well and read well.
TOPIC_PREFIX = "#"
MENTION_PREFIX = "@"
TAG_PREFIX = "tag:"          # the user's self-chosen tags
HOUR_CACHE_MAX = 200_000      # distinct timestamps remembered (one timestamp recurs across many posts)


@dataclass
class UserSummary:
    """What a profile needs of one user's posts and stored row."""
    n_posts: int
    counts: Counter[str]          # terms in first-seen order: words, #topics, @mentions, bio words, tag:s
    hours: list[int]              # 24 counts, the campaign's zone
    engagement: float             # sum of reposts + comments + likes
    last_post: datetime | None    # latest post (or the stored last_seen), aware


@dataclass
class SummaryChunk:
    """Many users' summaries in compact form, as a worker process sends them back.

    Row r's terms are ``terms[ids[k]]`` with ``counts[k]`` for k in
    ``indptr[r]:indptr[r+1]``; ``terms`` holds each term once, in first-seen
    order. Why not the summaries themselves: one dict per user costs the
    receiving process a lookup per (user, term) pair to read back, this a
    lookup per distinct term of the chunk (``TermCounter.add_rows``).
    """
    user_ids: list[int]
    n_posts: list[int]
    hours: list[list[int]]
    engagement: list[float]
    last_post: list[datetime | None]
    terms: list[str]
    indptr: array           # "q"
    ids: array              # "i"
    counts: array           # "f"

    @classmethod
    def of(cls, summaries: Sequence[tuple[int, UserSummary]]) -> SummaryChunk:
        vocab: dict[str, int] = {}
        indptr, ids, counts = array("q", [0]), array("i"), array("f")
        for _uid, s in summaries:
            new = list(filterfalse(vocab.__contains__, s.counts))
            vocab.update(zip(new, range(len(vocab), len(vocab) + len(new))))
            ids.extend(map(vocab.__getitem__, s.counts))
            counts.extend(s.counts.values())
            indptr.append(len(ids))
        return cls([u for u, _s in summaries], [s.n_posts for _u, s in summaries], [s.hours for _u, s in summaries],
                   [s.engagement for _u, s in summaries], [s.last_post for _u, s in summaries], list(vocab),
                   indptr, ids, counts)


def by_user(batch: Sequence[tuple]) -> Iterator[tuple[int, Sequence[tuple]]]:
    """The rows of one user at a time (the batch is ordered by user)."""
    start = 0
    while start < len(batch):
        uid, end = batch[start][0], start
        while end < len(batch) and batch[end][0] == uid:
            end += 1
        yield uid, batch[start:end]
        start = end


def post_topics(topics: str | None, topics_json: str | None) -> list[str]:
    """A post's #topics#, each once: the tab-joined ones from its text, then
    those a platform or import listed. In that order, not a set's: a set's
    order follows the per-process string hash, and the order terms are first
    seen in decides the matrix columns, so results would change from one run
    to the next."""
    tps = topics.split("\t") if topics else []
    if topics_json and topics_json != "[]":
        try:
            tps += [t.lower() for t in json.loads(topics_json) if isinstance(t, str)]
        except ValueError:
            pass
    return [t for t in dict.fromkeys(tps) if t]


class Summariser:
    """``summarise(rows, stored user row) -> UserSummary``, one user at a time."""

    def __init__(self, tokenizer: Tokenizer, tz: ZoneInfo,
                 parse_time: Callable[[str | None], datetime | None]) -> None:
        self.tokenizer, self.tz = tokenizer, tz
        self.parse_time = parse_time       # stored ISO text -> aware datetime (the stage passes config.times')
        self._hour_cache: dict[str, int | None] = {}

    def summarise(self, rows: Sequence[tuple], profile: Mapping[str, Any]) -> UserSummary:
        terms: list[str] = []
        hist = [0] * 24
        engagement, last = 0.0, None
        for (_u, _pid, tokens, topics, mentions, created, rp, cm, lk, _clean, topics_json) in rows:
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
                if last is None or created > last:
                    last = created
            engagement += (rp or 0) + (cm or 0) + (lk or 0)
        bio = profile.get("bio") or ""
        if bio:
            terms.extend(self.tokenizer.tokenize(bio.lower()))
        terms.extend(TAG_PREFIX + str(t).lower() for t in profile.get("tags") or [] if t)
        return UserSummary(len(rows), Counter(terms), hist, engagement,
                           self.parse_time(last or profile.get("last_seen")))

    def _local_hour(self, created: str) -> int | None:
        """The post's hour in the campaign's zone, remembered per timestamp."""
        cache = self._hour_cache
        if created in cache:
            return cache[created]
        if len(cache) > HOUR_CACHE_MAX:
            cache.clear()
        h = cache[created] = activity.local_hour(self.parse_time(created), self.tz)
        return h
