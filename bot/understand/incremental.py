"""An incremental analysis: new and changed users placed into the stored clustering.

Why: an hourly run that re-clustered a million users because a thousand
posts arrived would cost minutes and shuffle audiences for nothing. Everyone
else keeps their audience, score and tier; audience descriptors (keywords,
samples) are refreshed by the next full run, which ``bot.understand.run``
orders once enough has changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlite3

from config import Settings
from nlp import encode, meaning, saved_model, tiers
from nlp.cluster import assign, distinctiveness, project_2d
from nlp.profiles import Profiles
from nlp.tokenize import Tokenizer
from storage import analysis_input as input_store
from storage import analysis_runs as run_store
from storage import audiences as audience_store
from storage import vectors as vector_store
from storage.db import transaction
from bot.understand import relevance as prospects
from bot.understand.caches import Progress, update_vector_cache
from bot.understand.profiles import build_profiles
from bot.understand.results import AnalysisSummary, current_audiences, signals_of, store_placements


def run_incremental(db: sqlite3.Connection, settings: Settings, run_id: int, model_row: dict[str, Any],
                    tokenizer: Tokenizer, cut_ids: Sequence[int], timings: dict[str, float],
                    progress: Progress | None, encoder: encode.SentenceEncoder | None = None,
                    stop: threading.Event | None = None) -> AnalysisSummary:
    """Place the owners of the posts cut in this run (and users never analysed) into the stored audiences."""
    t = time.perf_counter()
    affected = sorted(input_store.owners_of_posts(db, cut_ids) | set(input_store.unanalysed_user_ids(db)))
    vectors, embedded = None, 0
    if encoder is not None and affected:
        embedded, keys = update_vector_cache(db, encoder, progress, user_ids=affected, stop=stop)
        vectors = vector_store.load_vectors(db, encoder.name, keys)
    targets = prospects.targets_of(settings)
    sem_q = prospects.sentence_queries(targets, encoder if vectors is not None else None)[0]
    post_best = meaning.PostBest(sem_q) if sem_q is not None else None
    prof = build_profiles(db, settings, tokenizer, progress, only_users=affected, vectors=vectors,
                          post_best=post_best) if affected else None
    del vectors
    timings["profiles"] = time.perf_counter() - t
    t = time.perf_counter()
    before = audience_store.current_memberships(db)
    summary = AnalysisSummary(run_id=run_id, n_users=0, n_posts=0, k=int(model_row["k"]), mode="incremental",
                              embedded=embedded)
    with transaction(db):
        if prof is not None and prof.user_ids:
            summary.placed = _place(db, run_id, prof, model_row["model"], targets, post_best)
        counts = audience_store.refresh_audience_counts(db, run_id, before)
        run_store.note_incremental(db, model_row["id"], len(cut_ids))
    timings["assign"] = time.perf_counter() - t
    summary.audiences = current_audiences(db, counts)
    summary.n_users = sum(a.size for a in summary.audiences)
    summary.n_posts = input_store.count_posts(db)
    return summary


def _place(db: sqlite3.Connection, run_id: int, prof: Profiles, blob: bytes,
           targets: Sequence[meaning.TargetQuery], post_best: meaning.PostBest | None) -> int:
    """Assign these users by the stored model and store what that makes of
    them; the full run's lines decide tiers and who fits no audience."""
    vec, data = saved_model.load(blob)
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
    prof.relevance = prospects.score_new(targets, data, Z, C, vec.terms_, post_best)
    sig = signals_of(db, prof, scores, data)
    tier_of = tiers.tiers_by_lines(sig.tier_score, labels, data["leader_min"], data["engaged_min"])
    aud_ids = data["audience_ids"]
    audience_of = [None if unassigned[i] else int(aud_ids[c]) for i, c in enumerate(labels)]
    store_placements(db, run_id, prof, sig, audience_of, scores, tier_of, C, vec.terms_, vec.idf_,
                     project_2d(Z, data["projection"]))
    return len(prof.user_ids)
