"""Seed-word relevance: the ``Relevance`` record every scorer returns, and
the plain word-count matcher.

The analysis scores users by meaning (``nlp.meaning``, fed by
``bot.understand.relevance``): counting seed words found only the few
users who write them (53 of 1,186 sports fans on THUCNews-style users).
``score_user`` stays as the simple, fully explainable matcher for a handful
of posts (no corpus to learn from): it counts which seed terms a user's
posts, topics, bio and tags contain.

score = 1 - exp(-(2.5 * share + 0.35 * hits + 1.0 * profile)) where
``share`` is the fraction of the user's posts with any seed term, ``hits``
the number of such posts (capped at 10) and ``profile`` 1 when the bio or
self-chosen tags contain one. One matching post among many gives ~0.3, half
of the posts ~0.8, a bio match alone ~0.6.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Target:
    name: str
    seeds: list[str]

    def __post_init__(self) -> None:
        self.seeds = [s.strip().lower() for s in self.seeds if s and s.strip()]


@dataclass
class Relevance:
    score: float
    explanation: str
    terms: dict[str, int] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)   # what ``explanation`` says, as data (rendered per language)


def _post_matches(seeds: Sequence[str], tokens: set[str], topics: Sequence[str], clean: str) -> list[str]:
    found = []
    for s in seeds:
        if s in tokens or any(s in t for t in topics) or (clean and s in clean):
            found.append(s)
    return found


def score_user(target: Target, posts: Iterable[tuple[Sequence[str], Sequence[str], str]],
               bio: str = "", tags: Sequence[str] = ()) -> Relevance:
    """posts: (tokens, topics, cleaned text) per post."""
    seeds = target.seeds
    if not seeds:
        return Relevance(0.0, "")
    counts: Counter[str] = Counter()
    n = hit_posts = 0
    for tokens, topics, clean in posts:
        n += 1
        found = _post_matches(seeds, set(tokens), topics, clean)
        if found:
            hit_posts += 1
            counts.update(found)
    prof_text = (bio or "").lower() + " " + " ".join(tags or ()).lower()
    profile = [s for s in seeds if s in prof_text]
    share = hit_posts / n if n else 0.0
    evidence = 2.5 * share + 0.35 * min(hit_posts, 10) + (1.0 if profile else 0.0)
    score = 1.0 - math.exp(-evidence)
    parts = []
    if counts:
        parts.append(", ".join(f"{t}×{c}" for t, c in counts.most_common(4)) + f" in {hit_posts}/{n} posts")
    if profile:
        parts.append("bio/tags: " + ", ".join(profile[:3]))
    terms = dict(counts)
    for p in profile:
        terms[p] = terms.get(p, 0) + 1
    return Relevance(round(score, 4), "; ".join(parts) if parts else "no seed terms", terms)
