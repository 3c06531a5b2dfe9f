"""Tiers inside an audience: opinion leaders, engaged prospects, potential customers.

After the classic split (~15% / ~35% / ~50%): members are ranked by a
tier score that mixes influence (followers and engagement), relevance to
the campaign's targets (or closeness to the audience when no targets are
configured), activity and recency; the top ``leaders_share`` are leaders,
the next ``engaged_share`` engaged, the rest potential. Shares come from
config ([analysis] leaders_share / engaged_share).
"""

from __future__ import annotations

import numpy as np

LEADER, ENGAGED, POTENTIAL = "leader", "engaged", "potential"
WEIGHTS = {"influence": 0.4, "relevance": 0.25, "activity": 0.2, "recency": 0.15}


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """0..1 rank of each value (ties share the average rank); all equal -> 0.5."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return v
    if n == 1 or np.all(v == v[0]):
        return np.full(n, 0.5)
    from scipy.stats import rankdata

    return (rankdata(v, method="average") - 1) / (n - 1)


def tier_scores(influence: np.ndarray, relevance: np.ndarray, activity: np.ndarray, recency: np.ndarray) -> np.ndarray:
    w = WEIGHTS
    return (w["influence"] * influence + w["relevance"] * relevance + w["activity"] * activity
            + w["recency"] * recency)


def assign_tiers(scores: np.ndarray, leaders_share: float = 0.15, engaged_share: float = 0.35) -> list[str]:
    """Tier labels for one audience's members by descending score (stable on ties)."""
    n = len(scores)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    n_lead = int(round(n * leaders_share))
    n_eng = int(round(n * (leaders_share + engaged_share))) - n_lead
    if n >= 1 and leaders_share > 0 and n_lead == 0 and n >= 3:
        n_lead = 1
    out = [POTENTIAL] * n
    for rank, i in enumerate(order):
        if rank < n_lead:
            out[i] = LEADER
        elif rank < n_lead + n_eng:
            out[i] = ENGAGED
    return out


def member_tiers(scores: np.ndarray, members_idx: list[np.ndarray], leaders_share: float = 0.15,
                 engaged_share: float = 0.35) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Tiers within each audience (``members_idx[c]``: rows of audience c; a
    row in none keeps None), and per audience the lowest score that made
    leader and engaged, kept so users placed later are tiered by the same lines."""
    k = len(members_idx)
    tier_of: list[str | None] = [None] * len(scores)
    leader_min, engaged_min = np.full(k, np.inf), np.full(k, np.inf)
    for c, idx in enumerate(members_idx):
        for i, t in zip(idx, assign_tiers(scores[idx], leaders_share, engaged_share)):
            tier_of[i] = t
            if t == LEADER:
                leader_min[c] = min(leader_min[c], scores[i])
            elif t == ENGAGED:
                engaged_min[c] = min(engaged_min[c], scores[i])
        engaged_min[c] = min(engaged_min[c], leader_min[c])
    return tier_of, leader_min, engaged_min


def tiers_by_lines(scores: np.ndarray, labels: np.ndarray, leader_min: np.ndarray,
                   engaged_min: np.ndarray) -> list[str]:
    """Tier of each user placed into audience ``labels[i]`` after a full run,
    by that audience's stored lines (see ``member_tiers``)."""
    return [LEADER if s >= leader_min[c] else ENGAGED if s >= engaged_min[c] else POTENTIAL
            for s, c in zip(scores, labels)]
