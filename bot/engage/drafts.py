"""Drafts from the campaign's templates.

Why every variant is rendered: the planner needs alternatives. Thompson
sampling (``rank_drafts``, fed the response rates ``bot.engage.outcomes``
measures) orders them by learned response, and the no-identical-text rule (``bot.engage.policy``) skips any already used, so text
rotates instead of repeating. Only known placeholders are filled; any other
brace is left as written, and a rendering over the length limit is dropped.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from config import Settings
from config.schema import TEMPLATE_PLACEHOLDERS, TemplateSettings

# The config refuses any other placeholder (config.schema.check_variants).
PLACEHOLDERS = TEMPLATE_PLACEHOLDERS
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
SHAPE_REUSE = 0.92   # a variant's sample is discounted this much per use within one planning run
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff@#\[\]]")


@dataclass
class Draft:
    template: str
    variant: int
    kind: str
    text: str
    reason: dict = field(default_factory=dict)   # why it reads this way (queue.draft_reason)
    source: str = ""                              # the template variant it was rendered from


@dataclass
class DraftContext:
    nickname: str = ""
    topic: str = ""        # the post's first #topic#, else its key phrase
    keyword: str = ""      # the post's key phrase that is also an audience keyword, else its key phrase
    audience: str = ""
    phrase: str = ""       # the post's most specific key phrase (a whole word of it)
    tip: str = ""          # the content-library entry that fits the post best


def _clean(value: str, limit: int = 20) -> str:
    """Strangers' names go into our text: no mentions, hashtags or control characters."""
    value = _UNSAFE.sub("", value or "").strip()
    return value[:limit]


def clean_name(value: str) -> str:
    """A stranger's words made safe to put in our text (no @, #, controls)."""
    return _clean(value)


def context_for(post_text: str, topics_json: str | None, user_name: str | None, audience: str,
                keywords_json: str | None) -> DraftContext:
    try:
        topics = [t for t in json.loads(topics_json or "[]") if isinstance(t, str) and t]
    except ValueError:
        topics = []
    try:
        keywords = [k for k in json.loads(keywords_json or "[]") if isinstance(k, str) and k]
    except ValueError:
        keywords = []
    keyword = next((k for k in keywords if k in (post_text or "")), keywords[0] if keywords else "")
    topic = topics[0] if topics else keyword
    return DraftContext(nickname=_clean(user_name or ""), topic=_clean(topic), keyword=_clean(keyword),
                        audience=_clean(audience))


def render(text: str, ctx: DraftContext) -> str:
    return _PLACEHOLDER.sub(lambda m: getattr(ctx, m.group(1)), text).strip()


# Used only when the campaign configures no templates: value first, no links, no hard sell.
DEFAULT_TEMPLATES = (
    TemplateSettings(name="default", audience="*", kind="reply", variants=[
        "{nickname} 说得很实在！关于{topic}我们也整理过一些心得，欢迎交流～",
        "同感！{topic}贵在坚持，{nickname} 加油",
        "很有启发，{keyword}这个角度很少有人聊到",
        "收藏了，{topic}相关的经验能多分享一些吗？",
    ]),
)


def templates_for(settings: Settings, names: set[str], kinds: tuple[str, ...],
                  defaults: bool = True) -> list[TemplateSettings]:
    """Templates for an audience known by any of ``names`` (or ``*``) and one of these kinds;
    the built-in defaults when the campaign has none (and ``defaults``)."""
    configured = settings.engagement.templates or (list(DEFAULT_TEMPLATES) if defaults else [])
    return [t for t in configured if t.kind in kinds and (t.audience == "*" or t.audience in names)]


def drafts_for(settings: Settings, templates: list[TemplateSettings], ctx: DraftContext) -> list[Draft]:
    """Every variant rendered, minus empty ones, ones with an unfilled
    placeholder value, and ones over the length limit."""
    limit = settings.engagement.max_length
    out = []
    for t in templates:
        for i, variant in enumerate(t.variants):
            needed = set(_PLACEHOLDER.findall(variant))
            if any(not getattr(ctx, name) for name in needed):
                continue
            text = render(variant, ctx)
            if text and len(text) <= limit:
                out.append(Draft(template=t.name, variant=i, kind=t.kind, text=text, source=variant))
    return out


def rank_drafts(options: list[Draft], stats: dict[tuple[Any, str, int], tuple[int, int]], audience_id: int | None,
                rng: random.Random, used: dict[tuple[str, int], int] | None = None) -> list[Draft]:
    """Drafts ordered by a Thompson sample of each variant's response rate.

    Why sampling, not the best observed rate: with a handful of sends per
    variant, picking the best rate would lock in early luck; sampling each
    variant's rate from its Beta posterior keeps trying the uncertain ones and
    shifts to the ones people answer, without a tuning knob. ``stats`` maps
    (audience, template, variant) to (sent, responded). ``used`` counts the
    variants already chosen in this planning run; each use discounts a
    variant's sample a little, so a queue read top to bottom varies in shape
    while the learned rates still decide."""
    def sample(d: Draft) -> float:
        sent, responded = stats.get((audience_id, d.template, d.variant), (0, 0))
        return rng.betavariate(1 + responded, 1 + max(0, sent - responded)) * SHAPE_REUSE ** (used or {}).get(
            (d.template, d.variant), 0)

    scored = [(sample(d), i, d) for i, d in enumerate(options)]
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [d for _, _, d in scored]
