"""Storing what an analysis found: audiences, memberships, tiers, per-user stats, relevance.

Why one transaction per run: readers (the planner, the report, the review
page) must never see half an analysis. Audience ids survive re-runs: new
clusters are matched to the stored audiences by their members and words
(``nlp.matching``), so edited names and history stay with the audience.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import sqlite3

from config import Settings
from nlp import keywords as kw, matching, tiers
from nlp.cluster import AudienceClusterer
from nlp.user_posts import MENTION_PREFIX, TOPIC_PREFIX
from nlp.profiles import Profiles
from nlp.signals import Signals, best_target, stat_rows, top_influencers, user_signals
from storage import analysis_input as input_store
from storage import audiences as audience_store
from storage import user_results as result_store
from storage.db import transaction

SAMPLE_POSTS = 5


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


def signals_of(db: sqlite3.Connection, prof: Profiles, closeness: np.ndarray,
               ref: Mapping[str, np.ndarray] | None = None) -> Signals:
    """The profiled users' signals, with their stored rows (followers, verified) read here."""
    return user_signals(prof, input_store.user_profiles(db, prof.user_ids), closeness, ref)


@dataclass
class _Partition:
    """A full run's clustering with everything its audiences are described by."""
    prof: Profiles
    model: AudienceClusterer
    terms: list[str]
    uids: np.ndarray
    members_idx: list[np.ndarray]
    tier_of: list[str | None]
    desc: kw.Descriptors
    centroid_terms: list[list[tuple[str, float]]]
    sig: Signals
    marked: dict[str, np.ndarray] = field(init=False)     # prefix -> columns of #topics / @mentions

    def __post_init__(self) -> None:
        self.marked = {p: kw.prefixed_columns(self.terms, p) for p in (TOPIC_PREFIX, MENTION_PREFIX)}

    def fields(self, db: sqlite3.Connection, c: int) -> dict[str, Any]:
        """The stored descriptors of audience ``c``."""
        idx, model, words = self.members_idx[c], self.model, self.desc.words[c]
        size, n = len(idx), len(self.uids)
        tier_counts = dict(Counter(self.tier_of[i] for i in idx))
        for t in (tiers.LEADER, tiers.ENGAGED, tiers.POTENTIAL):
            tier_counts.setdefault(t, 0)
        kws = [w for w, _ in words]
        target, target_score = best_target(self.sig, idx)
        coords = model.coords_
        return {
            "auto_name": kw.auto_name(words, mixed=bool(model.mixed_[c])), "size": size,
            "share": round(size / n, 4), "mixed": int(bool(model.mixed_[c])),
            "cohesion": round(float(model.cohesion_[c]), 4), "keywords": kws,
            "topics": self.desc.top_marked(c, self.marked[TOPIC_PREFIX], self.terms, TOPIC_PREFIX),
            "mentions": self.desc.top_marked(c, self.marked[MENTION_PREFIX], self.terms, MENTION_PREFIX),
            "influencers": top_influencers(idx, self.uids, self.sig),
            "sample_posts": sample_posts(db, self.uids, idx, model.scores_, set(kws[:8])),
            "active_hours": self.prof.hours[idx].sum(axis=0).astype(int).tolist(), "tier_counts": tier_counts,
            "centroid_terms": self.centroid_terms[c],
            "x": round(float(coords[idx, 0].mean()), 4) if size else None,
            "y": round(float(coords[idx, 1].mean()), 4) if size else None,
            "target": target, "target_score": target_score,
        }


def store_full_results(db: sqlite3.Connection, settings: Settings, run_id: int, prof: Profiles, C: sp.csr_matrix,
                       terms: list[str], idf: np.ndarray,
                       model: AudienceClusterer) -> tuple[AnalysisSummary, dict[str, np.ndarray]]:
    """Replace the stored audiences, memberships, stats and relevance with a
    full run's; returns the summary and what the stored model keeps so users
    placed later are tiered and marked unassigned by the same lines."""
    labels, k = model.labels_, model.k_
    uids = np.asarray(prof.user_ids)
    sig = signals_of(db, prof, model.scores_)
    members_idx = [np.flatnonzero(labels == c) for c in range(k)]
    assigned = np.flatnonzero(labels >= 0)
    tier_of, leader_min, engaged_min = tiers.member_tiers(sig.tier_score, members_idx, settings.analysis.leaders_share,
                                                          settings.analysis.engaged_share)
    desc = kw.describe(C, labels, assigned, [len(i) for i in members_idx], terms)
    part = _Partition(prof, model, terms, uids, members_idx, tier_of, desc,
                      [[(terms[j], float(w)) for j, w in desc.top_weighted(c, 50)] for c in range(k)], sig)
    old = audience_store.current_memberships(db)
    old_terms = {a["id"]: a.get("centroid_terms") or [] for a in audience_store.list_audiences(db)}
    new_members = [set(uids[idx].tolist()) for idx in members_idx]
    mapping = matching.match_clusters(new_members, old, part.centroid_terms, old_terms)
    summary = AnalysisSummary(run_id=run_id, n_users=len(uids), n_posts=prof.total_posts, k=k,
                              unassigned=int(len(uids) - len(assigned)))
    with transaction(db):
        ids = [mapping[c] if c in mapping else audience_store.create_audience(db, run_id) for c in range(k)]
        for c in range(k):
            fields = part.fields(db, c)
            summary.audiences.append(_save_audience(db, run_id, ids[c], fields, new_members[c], old.get(ids[c], set()),
                                                    new=c not in mapping))
        summary.retired = audience_store.retire_audiences(db, ids, run_id)
        _replace_members(db, run_id, part, ids, C, idf)
    summary.audiences.sort(key=lambda a: -a.size)
    left_out = model.distinct_[labels < 0]
    extra = {"audience_ids": np.asarray(ids, dtype=np.int64), "leader_min": leader_min, "engaged_min": engaged_min,
             "infl_sorted": np.sort(sig.raw_infl), "act_sorted": np.sort(sig.raw_act),
             "outlier_cut": np.array([float(left_out.max()) if len(left_out) else -np.inf])}
    return summary, extra


def _save_audience(db: sqlite3.Connection, run_id: int, aid: int, fields: dict[str, Any], members: set[int],
                   before: set[int], new: bool) -> AudienceInfo:
    audience_store.save_audience(db, aid, run_id, fields)
    joined, left = len(members - before), len(before - members)
    audience_store.record_history(db, aid, run_id, fields["size"], fields["share"], joined, left)
    row = audience_store.get_audience(db, aid)
    return AudienceInfo(aid, row["display_name"], fields["auto_name"], fields["size"], fields["share"],
                        fields["keywords"][:6], joined, left, new)


def _replace_members(db: sqlite3.Connection, run_id: int, part: _Partition, ids: Sequence[int], C: sp.csr_matrix,
                     idf: np.ndarray) -> None:
    """Everyone's membership, stats and relevance from this full run (the old rows go)."""
    labels, uids, sig, prof = part.model.labels_, part.uids, part.sig, part.prof
    closeness = part.model.scores_
    audience_store.replace_memberships(db, ((int(uids[i]), ids[labels[i]], round(float(closeness[i]), 4), part.tier_of[i])
                                   for i in np.flatnonzero(labels >= 0)), run_id)
    result_store.replace_user_stats(db, stat_rows(prof, C, idf, part.terms, sig, part.model.coords_,
                                           [ids[c] if c >= 0 else None for c in labels]), run_id)
    result_store.replace_relevance(db, ((int(uids[i]), t, r.score, r.explanation, r.terms, r.facts)
                                 for t in sig.targets for i, r in enumerate(prof.relevance[t])), run_id)


def sample_posts(db: sqlite3.Connection, uids: np.ndarray, idx: np.ndarray, closeness: np.ndarray,
                 keywords: set[str], n: int = SAMPLE_POSTS) -> list[dict[str, Any]]:
    """Representative posts: from the members closest to the audience's centre,
    each one's post that uses the most of the audience's keywords."""
    if len(idx) == 0:
        return []
    central = [int(uids[i]) for i in idx[np.argsort(-closeness[idx], kind="stable")[: n * 3]]]
    posts_of: dict[int, list[tuple[int, str]]] = {}
    for uid, pid, tokens in input_store.member_posts_tokens(db, central):
        posts_of.setdefault(uid, []).append((pid, tokens))
    chosen = kw.representative_posts(central, posts_of, keywords, n)
    texts = input_store.posts_text(db, chosen)
    return [{"post_id": pid, "pid": r["pid"], "uid": r["uid"], "user_name": r["user_name"],
             "text": (r["text"] or "")[:280], "created_at": r["created_at"], "engagement": r["engagement"]}
            for pid in chosen if (r := texts.get(pid))]


def store_placements(db: sqlite3.Connection, run_id: int, prof: Profiles, sig: Signals, audience_of: list[int | None],
                     scores: np.ndarray, tier_of: Sequence[str], C: sp.csr_matrix, vec_terms: list[str],
                     idf: np.ndarray, coords: np.ndarray) -> None:
    """An incremental run's users: their membership, stats and relevance
    replace theirs alone (everyone else keeps their own)."""
    uids = prof.user_ids
    audience_store.upsert_memberships(db, ((uids[i], audience_of[i], round(float(scores[i]), 4), tier_of[i])
                                  for i in range(len(uids))), run_id)
    result_store.upsert_user_stats(db, stat_rows(prof, C, idf, vec_terms, sig, coords, audience_of), run_id)
    result_store.upsert_relevance(db, ((uids[i], tname, r.score, r.explanation, r.terms, r.facts)
                                for tname, rs in prof.relevance.items() for i, r in enumerate(rs)), run_id)


def current_audiences(db: sqlite3.Connection, counts: Mapping[int, tuple[int, int, int]]) -> list[AudienceInfo]:
    """The active audiences as stored, biggest first; ``counts``: {id: (size, joined, left)} of this run."""
    out = []
    for a in audience_store.list_audiences(db):
        size, joined, left = counts.get(a["id"], (a["size"], 0, 0))
        out.append(AudienceInfo(a["id"], a["display_name"], a["auto_name"], size, a["share"],
                                list(a["keywords"])[:6], joined, left, False))
    out.sort(key=lambda a: -a.size)
    return out
