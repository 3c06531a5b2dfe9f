"""Keeping audience ids stable across re-runs.

Why: queues, exports and reports refer to audience ids; if re-clustering
renumbered them every hour, "audience 3" would mean something else each
time. New clusters are matched one-to-one to the previous run's audiences by
member overlap (Jaccard), best pairs first (Hungarian assignment); clusters
with no overlap to speak of fall back to keyword-profile similarity
(cosine of their c-TF-IDF term weights), which still works when the members
are all new.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_JACCARD = 0.2
MIN_TERM_COSINE = 0.5


def _cosine(a: Sequence[Sequence], b: Sequence[Sequence]) -> float:
    da = {t: float(w) for t, w in a}
    db = {t: float(w) for t, w in b}
    num = sum(w * db[t] for t, w in da.items() if t in db)
    na = math.sqrt(sum(w * w for w in da.values()))
    nb = math.sqrt(sum(w * w for w in db.values()))
    return num / (na * nb) if na and nb else 0.0


def match_clusters(new_members: Sequence[set[int]], old_members: Mapping[int, set[int]],
                   new_terms: Sequence[Sequence] | None = None, old_terms: Mapping[int, Sequence] | None = None,
                   min_jaccard: float = MIN_JACCARD, min_cosine: float = MIN_TERM_COSINE) -> dict[int, int]:
    """{new cluster index: old audience id} for the clusters that continue an old audience."""
    old_ids = list(old_members)
    mapping: dict[int, int] = {}
    if new_members and old_ids:
        sim = np.zeros((len(new_members), len(old_ids)))
        for i, a in enumerate(new_members):
            for j, oid in enumerate(old_ids):
                b = old_members[oid]
                inter = len(a & b)
                if inter:
                    sim[i, j] = inter / len(a | b)
        rows, cols = linear_sum_assignment(-sim)
        for r, c in zip(rows, cols):
            if sim[r, c] >= min_jaccard:
                mapping[int(r)] = old_ids[c]
    if new_terms is not None and old_terms:
        free_new = [i for i in range(len(new_members)) if i not in mapping]
        used = set(mapping.values())
        free_old = [oid for oid in old_terms if oid not in used and old_terms[oid]]
        if free_new and free_old:
            sim = np.array([[_cosine(new_terms[i], old_terms[o]) for o in free_old] for i in free_new])
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= min_cosine:
                    mapping[free_new[r]] = free_old[c]
    return mapping
