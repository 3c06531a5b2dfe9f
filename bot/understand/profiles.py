"""Streaming stored posts into per-user profiles (``nlp.profiles`` does the arithmetic).

Why streamed by user: a million posts never sit in memory at once; storage
hands over batches that never split a user, with the users' stored rows
(bio, tags, followers) read alongside each batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import sqlite3

from config import Settings
from config.times import parse_stored
from nlp import meaning
from nlp.profiles import ProfileBuilder, Profiles
from nlp.tokenize import Runner, Tokenizer
from nlp.user_posts import by_user
from storage import analysis_input as input_store
from storage.db import database_path
from storage.tokens import text_hash
from bot.understand.caches import Progress
from bot.understand.summaries import campaign_zone, summarise_users_at, user_chunks
from bot.understand.relevance import targets_of


def build_profiles(db: sqlite3.Connection, settings: Settings, tokenizer: Tokenizer,
                   progress: Progress | None = None, only_users: Sequence[int] | None = None,
                   vectors: dict[str, bytes] | None = None, post_best: meaning.PostBest | None = None,
                   workers: Runner | None = None) -> Profiles:
    """Each user's term row and stats (all users, or just ``only_users``);
    with ``vectors`` (text key -> stored sentence vector) also each user's
    mean sentence vector, and with ``post_best`` each user's posts closest to
    each target. Relevance to the targets is filled in after clustering
    (``bot.understand.relevance``).

    With ``workers`` running (the word-cutting processes of this analysis),
    they read and sum up the users and this process only adds the sums; the
    sentence-vector parts need this process's vectors, so with vectors, or
    for a few users, everything is done here.
    """
    excludes = [t.exclude for t in targets_of(settings)] if post_best is not None else []
    vector_of = (lambda clean: vectors.get(text_hash(clean))) if vectors is not None else None
    zone = campaign_zone(settings)
    builder = ProfileBuilder(tokenizer, zone, partial(parse_stored, naive=zone), settings.analysis.min_posts, vector_of,
                             post_best, excludes)
    path = database_path(db)
    if workers is not None and workers.parallel and path and vectors is None and only_users is None:
        step = partial(summarise_users_at, path, zone, builder.min_posts)
        counts = input_store.posts_per_user(db)
        chunks = user_chunks(counts, workers.chunk_size(sum(n for _u, n in counts)))
        for chunk in workers.stream(step, chunks):
            builder.add_chunk(chunk)
            if progress:
                progress("profiles", sum(chunk.n_posts), None)
        return builder.finish()
    for batch in input_store.iter_user_posts(db, user_ids=only_users, texts=vectors is not None):
        profiles = input_store.user_profiles(db, sorted({r[0] for r in batch}))
        for uid, rows in by_user(batch):
            builder.add(uid, rows, profiles.get(uid, {}))
        if progress:
            progress("profiles", len(batch), None)
    return builder.finish()
