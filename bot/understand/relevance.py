"""Relevance of every analysed user to each seeded target, by meaning.

Why here: ``nlp.meaning`` does the arithmetic on matrices; this module
feeds it what one analysis run has (the fitted vocabulary and LSA, the
users' joined embedding, the sentence encoder, the users' closest posts),
reads the matching posts of the best users for their explanation and hands
back one ``Relevance`` per user and target, the shape ``user_relevance``
stores. What a later incremental run needs to score new users the same way
(the expanded queries, the calibration) goes into the stored model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlite3

from config import Settings
from nlp import encode, meaning
from nlp.features import ProfileVectorizer, TermCounter
from nlp.relevance import Relevance
from nlp.tokenize import Tokenizer
from storage import analysis_input as input_store

log = logging.getLogger(__name__)

EXPLAIN_POSTS_MAX = 3000      # users per target whose matching posts are looked up (words only)
EXPLAIN_MIN_SCORE = 0.3


def targets_of(settings: Settings) -> list[meaning.TargetQuery]:
    """The configured targets that say anything (seeds or a description)."""
    out = []
    for a in settings.audiences:
        seeds = list(a.seeds) + list(a.brand_words)
        if seeds or a.description:
            out.append(meaning.TargetQuery(a.name, seeds, a.description, list(a.exclude)))
    return out


def sentence_queries(targets: Sequence[meaning.TargetQuery],
                     encoder: encode.SentenceEncoder | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(targets x dim query vectors, targets x dim exclude vectors or zero rows), or (None, None) without a model."""
    if encoder is None or not targets:
        return None, None
    q = np.asarray(encoder.encode([t.text() for t in targets]), dtype=np.float32)
    ex_texts = ["、".join(t.exclude) for t in targets]
    ex = np.zeros_like(q)
    have = [i for i, t in enumerate(ex_texts) if t]
    if have:
        ex[have] = np.asarray(encoder.encode([ex_texts[i] for i in have]), dtype=np.float32)
    return q, ex


def _words_row(words: Sequence[str], vec: ProfileVectorizer):
    tc = TermCounter()
    tc.add(words)
    return vec.reindex(tc.matrix(), tc.terms())


def _query(words: Sequence[str], sem: np.ndarray | None, vec: ProfileVectorizer, components: np.ndarray,
           weight: float) -> np.ndarray:
    q = meaning.word_query(_words_row(words, vec), vec.transform_counts, components)
    if sem is None or weight <= 0:
        return q
    return encode.join_dense(q.reshape(1, -1), sem.reshape(1, -1), weight)[0]


@dataclass
class Scored:
    scores: list[meaning.TargetScores]

    def blob(self) -> dict[str, np.ndarray]:
        """What the stored model keeps to score new users the same way."""
        if not self.scores:
            return {}
        related = json.dumps([[t for t, _ in s.related] for s in self.scores], ensure_ascii=False)
        return {"target_queries": np.vstack([s.query for s in self.scores]).astype(np.float32),
                "target_calibration": np.array([[s.centre, s.spread] for s in self.scores], dtype=np.float64),
                "target_related": np.frombuffer(related.encode("utf-8"), dtype=np.uint8)}


def score_all(db: sqlite3.Connection, targets: Sequence[meaning.TargetQuery], tokenizer: Tokenizer,
              vec: ProfileVectorizer, model, user_ids: Sequence[int], post_best: meaning.PostBest | None,
              sem_queries: tuple[np.ndarray | None, np.ndarray | None]) -> tuple[dict[str, list[Relevance]], Scored]:
    """Every user's relevance to every target after a full clustering."""
    n = len(user_ids)
    if not targets:
        return {}, Scored([])
    if model.components_ is None:
        why = "too few users to compare"
        return {t.name: [Relevance(0.0, why, {}) for _ in range(n)] for t in targets}, Scored([])
    E, comps, w = model.embedding_, model.components_, model.semantic_weight_
    q_sem, ex_sem = sem_queries
    scored = []
    for ti, t in enumerate(targets):
        words = list(t.seeds) * 2 + [x for x in tokenizer.tokenize(t.description.lower()) if x]
        q = _query(words, q_sem[ti] if q_sem is not None else None, vec, comps, w)
        q_ex = _query(t.exclude, ex_sem[ti] if ex_sem is not None and np.any(ex_sem[ti]) else None, vec, comps, w) \
            if t.exclude else None
        scored.append(meaning.score_target(t, E, q, comps, model.word_dims_, vec.terms_, q_ex))
    return _explained(db, targets, vec, scored, user_ids, post_best), Scored(scored)


def _explained(db, targets, vec: ProfileVectorizer, scored: list[meaning.TargetScores], user_ids: Sequence[int],
               post_best: meaning.PostBest | None) -> dict[str, list[Relevance]]:
    n = len(user_ids)
    out: dict[str, list[Relevance]] = {}
    C = vec.counts_
    for ti, (t, s) in enumerate(zip(targets, scored)):
        order = np.argsort(-s.raw, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(1, n + 1)
        posts = _post_texts(db, t, s, user_ids, order, ti, post_best)
        rows = []
        for i in range(n):
            terms = meaning.user_terms(C, i, vec.terms_, s.related)
            score = round(float(s.score[i]), 4)
            mine = posts.get(i, [])
            rows.append(Relevance(score, meaning.explain(score, int(rank[i]), n, terms, t.seeds, mine), terms,
                                  meaning.explain_facts(score, int(rank[i]), n, terms, t.seeds, mine)))
        out[t.name] = rows
    return out


def _post_texts(db, t: meaning.TargetQuery, s: meaning.TargetScores, user_ids: Sequence[int], order: np.ndarray,
                ti: int, post_best: meaning.PostBest | None) -> dict[int, list[str]]:
    """Row -> the user's posts that matched best: the closest by sentence
    vector when the model ran, else (for the best users) the posts that use
    the most of the target's related words."""
    if post_best is not None and len(post_best.best) == len(user_ids):
        return {i: [txt for _sim, txt in post_best.best[i][ti]] for i in range(len(user_ids)) if post_best.best[i]}
    top = [int(i) for i in order[:EXPLAIN_POSTS_MAX] if s.score[i] >= EXPLAIN_MIN_SCORE]
    if not top:
        return {}
    weight = dict(s.related)
    row_of = {int(user_ids[i]): i for i in top}
    found: dict[int, list[tuple[float, str]]] = {}
    for batch in input_store.iter_user_posts(db, user_ids=list(row_of)):
        for r in batch:
            uid, tokens, clean = r[0], r[2], r[9]
            if not clean or any(x in clean for x in t.exclude):
                continue
            val = sum(weight.get(tok, 0.0) for tok in set((tokens or "").split()))
            if val > 0:
                found.setdefault(row_of[uid], []).append((val, clean))
    return {i: [txt for _v, txt in sorted(v, key=lambda p: -p[0])[:2]] for i, v in found.items()}


def score_new(targets: Sequence[meaning.TargetQuery], data: dict[str, np.ndarray], Z: np.ndarray, C, terms,
              post_best: meaning.PostBest | None) -> dict[str, list[Relevance]]:
    """Relevance of users placed into a stored clustering (incremental run):
    the stored expanded queries and calibration, so scores compare with the
    full run's."""
    if not targets or "target_queries" not in data or len(data["target_queries"]) != len(targets):
        return {t.name: [Relevance(0.0, "not scored yet (next full analysis)", {}) for _ in range(len(Z))]
                for t in targets}
    related_all = json.loads(data["target_related"].tobytes().decode("utf-8"))
    out: dict[str, list[Relevance]] = {}
    for ti, t in enumerate(targets):
        raw = Z @ data["target_queries"][ti]
        centre, spread = data["target_calibration"][ti]
        score, _, _ = meaning.calibrate(raw, float(centre), float(spread))
        related = [(w, 1.0) for w in related_all[ti]]
        rows = []
        for i in range(len(Z)):
            terms_i = meaning.user_terms(C, i, terms, related)
            posts = [txt for _s, txt in post_best.best[i][ti]] if post_best is not None and post_best.best[i] else []
            sc = round(float(score[i]), 4)
            rows.append(Relevance(sc, meaning.explain(sc, 0, 0, terms_i, t.seeds, posts).replace(" (rank 0/0)", ""),
                                  terms_i, meaning.explain_facts(sc, 0, 0, terms_i, t.seeds, posts)))
        out[t.name] = rows
    return out
