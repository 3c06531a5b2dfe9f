"""The campaign's content library: short tips, answers and resources in the
brand's voice, per target audience, matched to a post by meaning.

Why a library: the playbook's replies that earn answers add something (a
小技巧, a free resource) instead of praise. The manager writes these once;
the drafter picks the entry that fits the post. Matching uses sentence
vectors when the model is installed (a post about 奶泡 finds the entry about
拉花 though they share no word) and shared words otherwise; a shared word
always counts, so the two agree on the obvious cases.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.engage.drafting.reading import PostReading, content_words

log = logging.getLogger(__name__)

# When an entry fits a post that shares no word with it: e5-small puts short
# Chinese texts close together (unrelated pairs at 0.85-0.89, related ones at
# 0.89-0.92, measured on the example library), so a vector-only match needs
# both a high similarity and a clear lead over the other entries' mean.
VECTOR_MATCH = 0.90
VECTOR_MARGIN = 0.02


@dataclass(frozen=True)
class Entry:
    id: str
    audience: str            # target name, or * for any
    kind: str                # tip | answer | resource
    text: str
    keywords: tuple[str, ...] = ()


@dataclass
class Match:
    entry: Entry
    score: float
    by: str                              # "vector" | "words"
    shared: list[str] = field(default_factory=list)

    def as_reason(self) -> dict:
        return {"id": self.entry.id, "text": self.entry.text, "by": self.by, "score": round(self.score, 3),
                "shared": self.shared}


class Library:
    """Entries with their words (and vectors, given an encoder)."""

    def __init__(self, entries: Sequence[Entry], user_words: Iterable[str] = (), encoder=None) -> None:
        self.entries = list(entries)
        self.user_words = tuple(user_words)
        self.words = [set(content_words(e.text, self.user_words)) | set(e.keywords) for e in self.entries]
        self.encoder = encoder
        self.vectors: np.ndarray | None = None
        if encoder is not None and self.entries:
            try:
                self.vectors = np.asarray(encoder.encode([e.text for e in self.entries]), dtype=np.float32)
            except Exception as exc:   # the model failing must not stop planning: words still work
                log.warning("content library: sentence vectors unavailable (%s); matching by words", exc)
                self.vectors = None

    @property
    def model(self) -> str | None:
        return getattr(self.encoder, "name", None) if self.vectors is not None else None

    def keywords(self) -> set[str]:
        return {k for e in self.entries for k in e.keywords}

    def match(self, reading: PostReading, names: set[str], post_vector: np.ndarray | None = None,
              n: int = 3) -> list[Match]:
        """The entries for these audience names (or *) that fit the post, best first.

        An entry fits when it shares a word with the post, or, for a post on
        the library's subject, when its meaning is clearly the closest."""
        post_words = set(reading.words) | set(reading.topics)
        eligible = [i for i, e in enumerate(self.entries) if e.audience == "*" or e.audience in names]
        sims: dict[int, float] = {}
        if self.vectors is not None and post_vector is not None and eligible:
            sims = {i: float(np.dot(self.vectors[i], post_vector)) for i in eligible}
        mean = sum(sims.values()) / len(sims) if sims else 0.0
        # Meaning alone decides only for a post on the library's subject (it shares a word with some
        # entry): e5-small also finds "closest" entries for posts about something else entirely.
        on_topic = any(w in post_words or (len(w) >= 2 and w in reading.text) for i in eligible for w in self.words[i])
        out: list[Match] = []
        for i in eligible:
            e = self.entries[i]
            shared = sorted(w for w in self.words[i] if w in post_words or (len(w) >= 2 and w in reading.text))
            sim = sims.get(i)
            if shared:
                out.append(Match(e, len(shared) + (sim or 0.0), "words", shared))
            elif on_topic and sim is not None and sim >= VECTOR_MATCH and sim - mean >= VECTOR_MARGIN:
                out.append(Match(e, sim, "vector", []))
        out.sort(key=lambda m: (-m.score, m.entry.id))
        return out[:n]
