"""Summing users up in the word-cutting worker processes, for the profiles.

Why in the workers: once the posts are cut, the analysis's workers are idle
while the main process would read every post again and count its terms
(half a second per 100,000 posts, on one core). Each worker reads and sums
up a slice of the users through its own connection; the main process only
adds the summaries, in user order, into the term matrix. This module stays
light (no NumPy): the workers were forked before it was loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from zoneinfo import ZoneInfo

from config.times import parse_stored
from nlp.tokenize import worker_tokenizer
from nlp.user_posts import Summariser, SummaryChunk, UserSummary, by_user
from storage import analysis_input as input_store
from storage.db import opened

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
    posts), in user order, read through this process's own connection."""
    summariser = Summariser(worker_tokenizer(), zone, partial(parse_stored, naive=zone))
    out: list[tuple[int, UserSummary]] = []
    with opened(path, migrate=False) as db:
        for batch in input_store.iter_user_posts(db, user_ids=user_ids, texts=False):
            stored = input_store.user_profiles(db, sorted({r[0] for r in batch}))
            for uid, rows in by_user(batch):
                if len(rows) >= min_posts:
                    out.append((uid, summariser.summarise(rows, stored.get(uid, {}))))
    return SummaryChunk.of(out)
