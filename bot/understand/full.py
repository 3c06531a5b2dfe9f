"""Everything after the token cache: a full re-clustering, or placing the changed users when little changed.

Why apart from ``bot.understand.run``: this is the part that needs NumPy,
SciPy and scikit-learn (about a second to import). ``run`` cuts words
first and imports this module on a thread meanwhile, so a fresh
``huaxiang analyze`` does not wait for the imports before its workers start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite3

from config import Settings
from nlp import encode, meaning, saved_model
from nlp.cluster import AudienceClusterer
from nlp.features import ProfileVectorizer
from nlp.profiles import Profiles
from nlp.tokenize import Runner, Tokenizer
from storage import analysis_runs as run_store
from storage import vectors as vector_store
from storage.db import transaction
from bot.errors import HuaxiangError
from bot.understand import relevance as prospects
from bot.understand.caches import (Progress, cached_vectors, choose_encoder, update_vector_cache,
                                   warn_on_encoder_change)
from bot.understand.incremental import run_incremental
from bot.understand.profiles import build_profiles
from bot.understand.results import AnalysisSummary, store_full_results

log = logging.getLogger(__name__)

MODEL_VERSION = 2              # 2: unassigned users, target queries in the model
INCREMENTAL_MAX_CHANGE = 0.05   # share of posts new/changed since the last full clustering
INCREMENTAL_MAX_RUNS = 24       # then re-cluster everyone anyway


def _settings_key(settings: Settings, tokenizer: Tokenizer, encoder: encode.SentenceEncoder | None = None) -> str:
    """What an incremental run must share with the stored model to reuse it."""
    parts = {"dict": tokenizer.fingerprint,
             "targets": [[a.name, a.seeds, a.brand_words, a.description, a.exclude] for a in settings.audiences],
             "encoder": encoder.name if encoder is not None else "words",
             "shares": [settings.analysis.leaders_share, settings.analysis.engaged_share],
             "min_posts": settings.analysis.min_posts, "version": MODEL_VERSION}
    return json.dumps(parts, ensure_ascii=False, sort_keys=True)


def analyse_tokenised(db: sqlite3.Connection, settings: Settings, run_id: int, k: int | str, asked_k: bool,
                      tokenizer: Tokenizer, cut: tuple[int, int, list[int]], timings: dict[str, float],
                      progress: Progress | None, full: bool | None, stop: threading.Event | None,
                      workers: Runner | None = None, profiles: Profiles | None = None,
                      settle: Callable[[], None] = lambda: None) -> AnalysisSummary:
    """With the token cache up to date (``cut``: tokenised, reused, ids of the
    posts cut), a full run or an incremental one (see ``run_analysis``).
    ``workers``: the cutting processes, when running, for the profiles;
    ``profiles``: everyone's word profiles when the cutting made them already,
    and ``settle()`` waits until the words it cut are stored (a run that
    clusters those profiles calls it after clustering, any other before it
    reads a post's words)."""
    tokenized, reused, cut_ids = cut
    encoder = choose_encoder(settings, tokenized + reused, cached_vectors(db))
    key = _settings_key(settings, tokenizer, encoder)
    warn_on_encoder_change(db, encoder)
    model_row = None if full else run_store.load_model(db)
    if model_row is not None and _can_increment(model_row, key, str(k), tokenized):
        settle()
        summary = run_incremental(db, settings, run_id, model_row, tokenizer, cut_ids, timings, progress,
                                  encoder, stop)
    else:
        if encoder is not None or profiles is None:
            settle()
        summary = FullRun(db, settings, run_id, tokenizer, k, key, timings, progress, encoder, stop, asked_k,
                          workers, profiles if encoder is None else None, settle).run()
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
class FullRun:
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
    workers: Runner | None = None      # the cutting processes (sum the users up), stopped after clustering
    made: Profiles | None = None        # word profiles the cutting made already (no sentence vectors used)
    settle: Callable[[], None] = lambda: None    # waits until the words the cutting made are stored

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
        prof = self.made or build_profiles(db, self.settings, self.tokenizer, self.progress, vectors=vectors,
                                           post_best=post_best, workers=self.workers)
        self.made = None
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
        t = time.perf_counter()
        self.settle()           # the workers stored the words they cut meanwhile, on the core clustering left idle
        if self.workers is not None:
            self.workers.close()
        timings["settle"] = time.perf_counter() - t
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
