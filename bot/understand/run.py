"""One analysis run: stored posts -> token cache -> profiles -> audiences -> stored results.

Why this shape: ``nlp/`` stays pure (text and matrices in, numbers out) and
``storage/`` holds every SQL statement; the understand stage only moves data
between them, streaming so a million posts fit in memory. A run re-clusters
everyone (``full``) or, when little changed, places the changed users into
the stored clustering (``bot.understand.incremental``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite3

from config import Settings
from nlp import encode, meaning, saved_model
from nlp.cluster import AudienceClusterer
from nlp.features import ProfileVectorizer
from nlp.tokenize import TOKENIZER_VERSION, Tokenizer
from storage import analysis_runs as run_store
from storage import vectors as vector_store
from storage.db import transaction
from bot.errors import HuaxiangError
from bot.understand import relevance as prospects
from bot.understand.caches import (AnalysisInterrupted, Progress, build_tokenizer, cached_vectors, choose_encoder,
                                   update_token_cache, update_vector_cache, warn_on_encoder_change)
from bot.understand.incremental import run_incremental
from bot.understand.profiles import build_profiles
from bot.understand.results import AnalysisSummary, store_full_results

log = logging.getLogger(__name__)

MODEL_VERSION = 2              # 2: unassigned users, target queries in the model
INCREMENTAL_MAX_CHANGE = 0.05   # share of posts new/changed since the last full clustering
INCREMENTAL_MAX_RUNS = 24       # then re-cluster everyone anyway


def _k_request(settings: Settings, k: int | str | None) -> int | str:
    """--k (or [analysis].k) as 'auto' or a whole number, with a clear error otherwise."""
    k = settings.analysis.k if k is None else k
    if isinstance(k, str) and k != "auto":
        try:
            k = int(k)
        except ValueError:
            raise HuaxiangError(f"--k must be 'auto' or a whole number, got {k!r}") from None
    if isinstance(k, int) and k < 1:
        raise HuaxiangError(f"--k must be 1 or more, got {k}")
    return k


def _settings_key(settings: Settings, tokenizer: Tokenizer, encoder: encode.SentenceEncoder | None = None) -> str:
    """What an incremental run must share with the stored model to reuse it."""
    parts = {"dict": tokenizer.fingerprint,
             "targets": [[a.name, a.seeds, a.brand_words, a.description, a.exclude] for a in settings.audiences],
             "encoder": encoder.name if encoder is not None else "words",
             "shares": [settings.analysis.leaders_share, settings.analysis.engaged_share],
             "min_posts": settings.analysis.min_posts, "version": MODEL_VERSION}
    return json.dumps(parts, ensure_ascii=False, sort_keys=True)


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
    k = _k_request(settings, k)
    timings: dict[str, float] = {}
    with transaction(db):
        run_id = run_store.start_analysis_run(db, {"k": k, "tokenizer": TOKENIZER_VERSION})
    try:
        summary = _analyse(db, settings, run_id, k, asked_k, timings, progress, full, stop)
        summary.seconds = time.perf_counter() - t0
        summary.timings = timings
        with transaction(db):
            run_store.finish_analysis_run(db, run_id, "ok", k=summary.k, n_users=summary.n_users,
                                      n_posts=summary.n_posts,
                                      metrics={"k_scores": summary.k_scores, "timings": timings, "mode": summary.mode,
                                               "tokenized": summary.tokenized, "reused": summary.reused,
                                               "encoder": summary.encoder, "embedded": summary.embedded})
        return summary
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, AnalysisInterrupted) else "failed"
        with transaction(db):
            run_store.finish_analysis_run(db, run_id, status, metrics={"error": str(exc)[:500]})
        raise


def _analyse(db: sqlite3.Connection, settings: Settings, run_id: int, k: int | str, asked_k: bool,
             timings: dict[str, float], progress: Progress | None, full: bool | None,
             stop: threading.Event | None) -> AnalysisSummary:
    """Bring the token cache up to date, then a full or an incremental run."""
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(settings, db)
    tokenized, reused, cut_ids = update_token_cache(db, tokenizer, progress)
    timings["tokens"] = time.perf_counter() - t0
    encoder = choose_encoder(settings, tokenized + reused, cached_vectors(db))
    key = _settings_key(settings, tokenizer, encoder)
    warn_on_encoder_change(db, encoder)
    model_row = None if full else run_store.load_model(db)
    if model_row is not None and _can_increment(model_row, key, str(k), tokenized):
        summary = run_incremental(db, settings, run_id, model_row, tokenizer, cut_ids, timings, progress,
                                  encoder, stop)
    else:
        summary = _FullRun(db, settings, run_id, tokenizer, k, key, timings, progress, encoder, stop, asked_k).run()
    summary.tokenized, summary.reused = tokenized, reused
    summary.encoder = "words" if encoder is None else f"words + {encoder.name}"
    return summary


def _can_increment(model_row: dict[str, Any], key: str, k_request: str, tokenized: int) -> bool:
    if model_row["settings_key"] != key or model_row["k_request"] != k_request:
        return False
    if model_row["incremental_runs"] >= INCREMENTAL_MAX_RUNS:
        return False
    changed = model_row["changed_posts"] + tokenized
    return changed <= INCREMENTAL_MAX_CHANGE * max(model_row["n_posts"], 1)


@dataclass
class _FullRun:
    """Everyone re-clustered: vectors, profiles, clustering, relevance, stored results and model."""
    db: sqlite3.Connection
    settings: Settings
    run_id: int
    tokenizer: Tokenizer
    k: int | str
    key: str
    timings: dict[str, float]
    progress: Progress | None
    encoder: encode.SentenceEncoder | None
    stop: threading.Event | None
    asked_k: bool

    def _vectors(self) -> tuple[dict[str, bytes] | None, int]:
        """(every embeddable text's stored vector by key, how many were embedded now), or (None, 0) for words alone."""
        if self.encoder is None:
            return None, 0
        t = time.perf_counter()
        embedded, keys = update_vector_cache(self.db, self.encoder, self.progress, stop=self.stop)
        with transaction(self.db):
            vector_store.drop_other_vectors(self.db, self.encoder.name)
            vector_store.prune_vectors(self.db, self.encoder.name, keys)
        vectors = vector_store.load_vectors(self.db, self.encoder.name)
        self.timings["vectors"] = time.perf_counter() - t
        return vectors, embedded

    def _k_for(self, n: int) -> int | str:
        """The k asked for, or n when fewer users than that were found."""
        k = self.k
        if isinstance(k, int) and k > n:
            if self.asked_k:       # one audience per user is not what anyone asking for k audiences wants
                raise HuaxiangError(f"--k {k}: there are only {n} users to cluster; choose 2 to {max(n, 2)}, or auto")
            log.warning("[analysis].k = %d but only %d users to cluster: making %d audiences", k, n, n)
            return n
        return k

    def run(self) -> AnalysisSummary:
        db, timings = self.db, self.timings
        vectors, embedded = self._vectors()
        t = time.perf_counter()
        targets = prospects.targets_of(self.settings)
        sem_queries = prospects.sentence_queries(targets, self.encoder if vectors is not None else None)
        post_best = meaning.PostBest(sem_queries[0]) if sem_queries[0] is not None else None
        prof = build_profiles(db, self.settings, self.tokenizer, self.progress, vectors=vectors, post_best=post_best)
        del vectors
        timings["profiles"] = time.perf_counter() - t
        n = len(prof.user_ids)
        if n == 0:
            raise HuaxiangError("nothing to analyse: no stored posts yet (run `huaxiang import FILE` or crawl first)")
        t = time.perf_counter()
        vec = ProfileVectorizer(subword_weight=saved_model.SUBWORD_WEIGHT)
        X = vec.fit_transform(prof.counts, prof.terms)
        prof.counts = None      # the pruned copy in vec.counts_ is all that is needed from here (memory at 1M posts)
        k = self._k_for(n)
        model = AudienceClusterer(k=k).fit(X, prof.semantic)
        timings["cluster"] = time.perf_counter() - t
        if self.progress:
            self.progress("cluster", 1, 1)
        t = time.perf_counter()
        prof.relevance, scored = prospects.score_all(db, targets, self.tokenizer, vec, model, prof.user_ids,
                                                     post_best, sem_queries)
        del post_best
        timings["relevance"] = time.perf_counter() - t
        t = time.perf_counter()
        summary, extra = store_full_results(db, self.settings, self.run_id, prof, vec.counts_, vec.terms_, vec.idf_,
                                            model)
        extra.update(scored.blob())
        self._save_model(model, vec, k, n, prof.total_posts, extra)
        timings["store"] = time.perf_counter() - t
        summary.k_scores = dict(model.k_choice_.scores)
        summary.mode = "full"
        summary.embedded = embedded
        return summary

    def _save_model(self, model: AudienceClusterer, vec: ProfileVectorizer, k: int | str, n_users: int,
                    n_posts: int, extra: dict[str, np.ndarray]) -> None:
        """Keep the fitted model for incremental runs (none when there were too few users to fit one)."""
        with transaction(self.db):
            if model.components_ is not None:
                extra["semantic_weight"] = np.array([model.semantic_weight_])
                run_store.save_model(self.db, self.run_id, model.k_, str(k), self.key, n_users, n_posts,
                                 saved_model.dump(vec, model, extra))
            else:
                run_store.drop_model(self.db)
