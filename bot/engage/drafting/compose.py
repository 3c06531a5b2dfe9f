"""Put the drafters together for the planner: read the post once, match the
library once, then offer every draft the templates, the built-in drafter
and (when configured) the LLM can write, each with its reason.

Why offer many: the planner orders them by learned response (Thompson
sampling per template and variant) and skips any text already used, so the
queue rotates through shapes instead of repeating one line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from config import Settings
from nlp.clean import clean_post

from bot.engage import drafts
from bot.engage.drafting.builtin import builtin_drafts
from bot.engage.drafting.library import Entry, Library, Match
from bot.engage.drafting.reading import PhraseStats, PostReading, read_post, recurring_new_words

log = logging.getLogger(__name__)


@dataclass
class PostInfo:
    """What the composer needs about one candidate post."""

    text: str
    topics_json: str | None
    user_name: str | None
    audience: str
    audience_names: set[str]
    audience_keywords: str | None
    tier: str | None = None
    target: str | None = None
    vector: np.ndarray | None = None


def library_entries(settings: Settings) -> list[Entry]:
    return [Entry(id=e.id, audience=e.audience, kind=e.kind, text=e.text, keywords=tuple(e.keywords))
            for e in settings.engagement.library]


def campaign_words(settings: Settings) -> set[str]:
    """Words the campaign knows whole (its dictionary, seeds, brand words,
    library keywords), so jieba never splits them."""
    words = set(settings.analysis.user_dict)
    for a in settings.audiences:
        words |= set(a.seeds) | set(a.brand_words)
    for e in settings.engagement.library:
        words |= set(e.keywords)
    return {w for w in words if w}


class Composer:
    """One per planning run: the phrase statistics, the library and the drafters."""

    def __init__(self, settings: Settings, texts: Iterable[str], user_words: Iterable[str] = (), encoder=None,
                 llm=None, prefer: Iterable[str] = ()) -> None:
        self.settings = settings
        texts = list(texts)
        self.campaign_words = set(user_words)
        self.user_words = tuple(sorted(set(user_words)))
        # Words these posts keep using that jieba's dictionary lacks (深蹲, 私教) count as words too.
        self.prefer = tuple(sorted(set(prefer) | recurring_new_words(texts, self.user_words)))
        self.stats = PhraseStats()
        self._readings: dict[str, PostReading] = {}
        for t in texts:
            self.stats.add(set(read_post(t, user_words=self.user_words, prefer=self.prefer).words))
        self.library = Library(library_entries(settings), self.user_words, encoder)
        self.llm = llm
        self._plain = None

    def close(self) -> None:
        """Release the LLM drafter's connections (the planner calls it at the end of a run)."""
        if self.llm is not None:
            self.llm.close()

    @property
    def vector_model(self) -> str | None:
        return self.library.model

    def read(self, text: str, topics_json: str | None = None) -> PostReading:
        key = (text or "") + "\x00" + (topics_json or "")
        got = self._readings.get(key)
        if got is None:
            got = read_post(text, json_list(topics_json), self.stats, self.user_words, self.prefer)
            self._readings[key] = got
        return got

    def options(self, info: PostInfo, kind: str) -> list[drafts.Draft]:
        """Every draft for this post and action kind, with its reason."""
        reading = self.read(info.text, info.topics_json)
        names = set(info.audience_names) | ({info.target} if info.target else set())
        matches = self.library.match(reading, names, info.vector, n=6)
        limit = self.settings.engagement.max_length
        out = self._template_drafts(info, reading, matches, kind, names)
        if self.settings.drafting.builtin:
            for d in builtin_drafts(reading, kind, matches, limit):
                out.append(drafts.Draft(template=d.reason["shape"].split("#")[0], variant=d.shape, kind=kind,
                                        text=d.text, reason=d.reason))
        out = self._grounded_first(reading, out)
        if self.llm is not None and kind in ("reply", "repost"):
            out = self._with_llm(info, reading, matches, kind, out)
        return out

    def _grounded_first(self, reading: PostReading, options: list[drafts.Draft]) -> list[drafts.Draft]:
        """Only drafts that share a word with the post as plain jieba cuts both
        (in context a quoted phrase can fuse with the next character: 半马能);
        all of them when none does, so a post is never left without a draft."""
        if self._plain is None:
            from nlp.tokenize import Tokenizer

            self._plain = Tokenizer()
        post = {w for w in self._plain(clean_post(reading.text).text) if len(w) >= 2}
        good = [d for d in options if post & {w for w in self._plain(clean_post(d.text).text) if len(w) >= 2}]
        return good or options

    def _template_drafts(self, info: PostInfo, reading: PostReading, matches: list[Match], kind: str,
                         names: set[str]) -> list[drafts.Draft]:
        templates = drafts.templates_for(self.settings, names, (kind,),
                                         defaults=not self.settings.drafting.builtin)
        keywords = json_list(info.audience_keywords)
        keyword = next((p for p in reading.phrases if p in keywords), reading.phrase)
        # The entry that shares the phrase the template quotes, so the tip continues it.
        matches = sorted(matches, key=lambda m: not any(w in reading.phrase or reading.phrase in w for w in m.shared))
        ctx = drafts.DraftContext(nickname=drafts.clean_name(info.user_name or ""),
                                  topic=drafts.clean_name(reading.topics[0] if reading.topics else reading.phrase),
                                  keyword=drafts.clean_name(keyword), audience=drafts.clean_name(info.audience),
                                  phrase=drafts.clean_name(reading.phrase),
                                  tip=matches[0].entry.text.strip() if matches else "")
        out = []
        for d in drafts.drafts_for(self.settings, templates, ctx):
            used = {k: getattr(ctx, k) for k in drafts.PLACEHOLDERS if "{" + k + "}" in d.source}
            d.reason = {"post_kind": reading.kind, "template": d.template, "drafter": "template",
                        "phrases": [v for k, v in used.items() if k in ("keyword", "phrase", "topic") and v],
                        "topics": reading.topics}
            if "tip" in used and matches:
                d.reason["library"] = matches[0].as_reason()
            out.append(d)
        return out

    def _with_llm(self, info: PostInfo, reading: PostReading, matches: list[Match], kind: str,
                  fallback: list[drafts.Draft]) -> list[drafts.Draft]:
        """The model's draft first; when it fails, the others, each saying why."""
        result = self.llm.draft(info, reading, matches, kind)
        if result.text:
            reason = {"post_kind": reading.kind, "phrases": [p for p in reading.phrases if p in result.text][:3],
                      "topics": reading.topics, "drafter": "llm", "model": result.model}
            if matches:
                reason["library"] = matches[0].as_reason()
            return [drafts.Draft(template="llm", variant=0, kind=kind, text=result.text, reason=reason)] + fallback
        for d in fallback:
            d.reason = {**d.reason, "fallback": result.error or "no draft"}
        return fallback


def json_list(value: str | None) -> list[str]:
    """The strings of a stored JSON list (keywords, topics); [] for anything else."""
    try:
        got = json.loads(value or "[]")
    except ValueError:
        return []
    return [x for x in got if isinstance(x, str) and x] if isinstance(got, list) else []
