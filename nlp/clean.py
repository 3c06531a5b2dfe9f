"""Pulling structure out of Weibo-style text.

Why keep topics, mentions and emoticons apart from words: ``#健身打卡#`` and
``@Keep`` say more about an audience than most words do, and jieba would
otherwise cut them into pieces.
"""

from __future__ import annotations

import re

TOPIC_RE = re.compile(r"#([^#\n]{1,64}?)#")
MENTION_RE = re.compile(r"@([\w\u4e00-\u9fff\-·]{1,30})")
EMOTICON_RE = re.compile(r"\[([\u4e00-\u9fffA-Za-z0-9]{1,8})\]")


def extract_topics(text: str) -> list[str]:
    """``#话题#`` names in order of appearance, without duplicates."""
    return _unique(t.strip() for t in TOPIC_RE.findall(text or "") if t.strip())


def extract_mentions(text: str) -> list[str]:
    return _unique(MENTION_RE.findall(text or ""))


def extract_emoticons(text: str) -> list[str]:
    return _unique(EMOTICON_RE.findall(text or ""))


def _unique(items) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        seen.setdefault(it, None)
    return list(seen)
