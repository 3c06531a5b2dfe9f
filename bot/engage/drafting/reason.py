"""A draft's reason (queue.draft_reason, JSON) as one readable line, for
exports and the review card."""

from __future__ import annotations

import json
from typing import Any


def parse(value: str | dict | None) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        got = json.loads(value or "{}")
    except ValueError:
        return {}
    return got if isinstance(got, dict) else {}


def readable(value: str | dict | None, lang: str = "en") -> str:
    """e.g. 'question (求推荐/提问) post; answers with phrases 手冲, 参数; library grind-size; builtin shape builtin/question#2'
    (written from the message catalogue by ``bot.engage.explain.draft_why``, in ``lang``)."""
    from bot.engage.explain import draft_why

    return draft_why(value, lang)
