"""What ranks users inside an audience: influence, activity, recency, relevance.

Why one place: the full analysis, the incremental placement and the stored
per-user stats must compute these the same way, and tiers (``nlp.tiers``) are
cut from their mix. Percentiles are within the users at hand, or against a
stored full run's sorted values (``ref``) when a few users are placed later,
so their numbers compare with everyone else's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import scipy.sparse as sp

from nlp import activity, keywords as kw, tiers
from nlp.profiles import Profiles

TARGET_MIN_MEAN = 0.5           # an audience "is" a seeded target when its members' mean relevance reaches this
#                                 (relevance 0.5: three robust standard deviations above the typical user)


@dataclass
class Signals:
    """Per-user signals, row i = ``Profiles.user_ids[i]``."""
    profiles: Mapping[int, Mapping[str, Any]]     # stored user rows (uid, name, followers, ...)
    followers: np.ndarray
    eng_pp: np.ndarray                            # engagement per post
    raw_infl: np.ndarray
    raw_act: np.ndarray
    influence: np.ndarray                         # 0..1 percentiles from here on
    activity: np.ndarray
    recency: np.ndarray
    rel_matrix: np.ndarray                        # users x targets
    best_rel: np.ndarray
    targets: list[str]
    tier_score: np.ndarray


def user_signals(prof: Profiles, profiles: Mapping[int, Mapping[str, Any]], closeness: np.ndarray,
                 ref: Mapping[str, np.ndarray] | None = None, now: datetime | None = None) -> Signals:
    """Signals of every profiled user; ``profiles`` are their stored rows and
    ``closeness`` stands in for relevance when no target is configured."""
    n = len(prof.user_ids)
    rows = [profiles.get(u, {}) for u in prof.user_ids]
    followers = np.array([r.get("followers") or 0 for r in rows], dtype=np.float64)
    verified = [bool(r.get("verified")) for r in rows]
    eng_pp = prof.engagement / np.maximum(prof.n_posts, 1)
    raw_infl = np.array([activity.raw_influence(f, e, v) for f, e, v in zip(followers, eng_pp, verified)])
    posts_known = np.array([max(r.get("posts_count") or 0, c) for r, c in zip(rows, prof.n_posts)])
    raw_act = np.log1p(prof.n_posts) + 0.25 * np.log1p(posts_known)
    if ref is None:
        influence, act = tiers.percentile_rank(raw_infl), tiers.percentile_rank(raw_act)
    else:
        influence, act = against(ref["infl_sorted"], raw_infl), against(ref["act_sorted"], raw_act)
    now = now or datetime.now(timezone.utc)
    recency = np.array([activity.recency(last, now) for last in prof.last_post])
    target_names = list(prof.relevance)
    if target_names:
        rel_matrix = np.array([[prof.relevance[t][i].score for t in target_names] for i in range(n)]).reshape(n, -1)
        best_rel = rel_matrix.max(axis=1) if n else np.zeros(0)
    else:
        rel_matrix, best_rel = np.zeros((n, 0)), np.zeros(n)
    rel_signal = best_rel if target_names else closeness
    return Signals(profiles, followers, eng_pp, raw_infl, raw_act, influence, act, recency, rel_matrix, best_rel,
                   target_names, tiers.tier_scores(influence, rel_signal, act, recency))


def against(sorted_ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    """0..1 rank of each value among a stored run's sorted values."""
    if len(sorted_ref) < 2:
        return np.full(len(values), 0.5)
    return np.searchsorted(sorted_ref, values, side="right") / len(sorted_ref)


def top_influencers(idx: np.ndarray, uids: np.ndarray, sig: Signals, m: int = 5) -> list[dict[str, Any]]:
    """An audience's most influential members, as the report and `audiences show` list them."""
    order = idx[np.argsort(-sig.raw_infl[idx], kind="stable")[:m]]
    return [{"user_id": int(uids[i]), "uid": sig.profiles.get(int(uids[i]), {}).get("uid"),
             "name": sig.profiles.get(int(uids[i]), {}).get("name"), "followers": int(sig.followers[i]),
             "engagement_per_post": round(float(sig.eng_pp[i]), 1)} for i in order]


def best_target(sig: Signals, idx: np.ndarray) -> tuple[str | None, float | None]:
    """The target an audience serves: the one its members are most relevant to, if that mean clears TARGET_MIN_MEAN."""
    if not sig.targets:
        return None, None
    means = sig.rel_matrix[idx].mean(axis=0)
    j = int(np.argmax(means))
    if means[j] >= TARGET_MIN_MEAN:
        return sig.targets[j], round(float(means[j]), 4)
    return None, None


def stat_rows(prof: Profiles, C: sp.csr_matrix, idf: np.ndarray, terms: Sequence[str], sig: Signals,
              coords: np.ndarray, audience_of: Sequence[int | None]) -> Iterator[dict[str, Any]]:
    """Per-user stats rows, one at a time (a million users' dicts would not fit
    comfortably); ``audience_of`` is None for a user who fits no audience."""
    for i, uid in enumerate(prof.user_ids):
        hist = prof.hours[i].astype(int).tolist()
        yield {
            "user_id": int(uid), "audience_id": audience_of[i], "n_posts": int(prof.n_posts[i]),
            "influence": round(float(sig.influence[i]), 4), "activity": round(float(sig.activity[i]), 4),
            "recency": round(float(sig.recency[i]), 4), "relevance": round(float(sig.best_rel[i]), 4),
            "tier_score": round(float(sig.tier_score[i]), 4), "active_hours": hist,
            "peak_hours": activity.peak_hours(hist), "keywords": kw.row_keywords(C, idf, terms, i, 5),
            "x": round(float(coords[i, 0]), 5), "y": round(float(coords[i, 1]), 5),
        }
