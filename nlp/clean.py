"""Pulling structure out of Weibo-style text, and normalising what is left.

Why keep topics, mentions and emoticons apart from words: ``#健身打卡#`` and
``@Keep`` say more about an audience than most words do, and jieba would
otherwise cut them into pieces. Why normalise before tokenising: the same
word written in traditional characters or full-width letters must count as
the same word, and boilerplate such as ``展开全文`` or ``网页链接`` says
nothing about the person who posted it.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

TOPIC_RE = re.compile(r"#([^#\n]{1,64}?)#")
MENTION_RE = re.compile(r"@([\w\u4e00-\u9fff\-·]{1,30})")
EMOTICON_RE = re.compile(r"\[([\u4e00-\u9fffA-Za-z0-9]{1,8})\]")

_TAG_RE = re.compile(r"<[^>]{0,2000}>")
_URL_RE = re.compile(r"(?:https?://|www\.)[\w\-.~:/?#\[\]@!$&'()*+,;=%]+|\b(?:t\.cn|weibo\.cn|m\.weibo\.cn)/[\w/]+", re.I)
# Repost chains "//@someone: text" keep the text but not the chain marker.
_REPOST_CHAIN_RE = re.compile(r"//@[\w\u4e00-\u9fff\-·]{1,30}\s*[:：]?")
# Boilerplate the platform adds; longest first so 展开全文 wins over 全文.
BOILERPLATE = ("展开全文", "收起全文", "O网页链接", "网页链接", "转发微博", "轉發微博", "查看图片", "查看圖片",
               "分享图片", "分享圖片", "全文", "...c", "显示地图", "秒拍视频", "微博视频", "的微博视频", "L的微博视频")
_BOILER_RE = re.compile("|".join(re.escape(b) for b in sorted(BOILERPLATE, key=len, reverse=True)))
_SPACE_RE = re.compile(r"\s+")


@dataclass
class CleanText:
    """A post split into plain text and the structured bits pulled out of it."""

    text: str
    topics: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    emoticons: list[str] = field(default_factory=list)
    urls: int = 0


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


@lru_cache(maxsize=1)
def _traditional_only() -> frozenset[str]:
    """Characters that only occur in traditional writing (zhconv's table).

    Checking for them first lets the common, already-simplified post skip
    zhconv's character-by-character conversion, which is the slow part. The
    table is read from zhconv's own data file without importing zhconv: its
    import pulls in ``pkg_resources`` (0.2 s in every tokenising worker),
    and most posts never need the conversion itself.
    """
    spec = importlib.util.find_spec("zhconv")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("zhconv is not installed (pip install zhconv)")
    path = Path(list(spec.submodule_search_locations)[0]) / "zhcdict.json"
    return frozenset(json.loads(path.read_text(encoding="utf-8"))["TRADONLY"])


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese; untouched when nothing traditional is in it."""
    if not text or _traditional_only().isdisjoint(text):
        return text
    return _zhconv().convert(text, "zh-cn")


@lru_cache(maxsize=1)
def _zhconv():
    """zhconv, imported with ``pkg_resources`` hidden for the moment.

    zhconv reads its table through ``pkg_resources`` when that imports, and
    from the file beside it otherwise (the same file). Importing
    ``pkg_resources`` costs 0.1 s, in every word-cutting worker that meets
    one traditional character, and nothing else here uses it.
    """
    hide = "pkg_resources" not in sys.modules
    if hide:
        sys.modules["pkg_resources"] = None      # makes `from pkg_resources import ...` raise ImportError
    try:
        import zhconv
    finally:
        if hide and "pkg_resources" in sys.modules and sys.modules["pkg_resources"] is None:
            del sys.modules["pkg_resources"]
    return zhconv


def normalize_width(text: str) -> str:
    """Full-width letters, digits and punctuation -> their ASCII forms (NFKC),
    and English lower-cased, so ＫＥＥＰ, Keep and keep are one word."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).lower()


def strip_html(text: str) -> str:
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def clean_post(text: str | None, keep_topic_words: bool = True) -> CleanText:
    """Clean one post for tokenising and pull out its topics, mentions and emoticons.

    With ``keep_topic_words`` the topic's words stay in the text (without the
    ``#`` marks) so a topic name also counts as words; the topic itself is
    returned separately either way.
    """
    if not text:
        return CleanText("")
    t = strip_html(text)
    t = to_simplified(t)
    if not t.isascii():
        t = unicodedata.normalize("NFKC", t)
    urls = len(_URL_RE.findall(t)) if ("http" in t or "www." in t or ".cn/" in t) else 0
    if urls:
        t = _URL_RE.sub(" ", t)
    # Most posts have no topic, emoticon or mention: a substring test skips the regex and list work.
    topics = extract_topics(t) if "#" in t else []
    emoticons = extract_emoticons(t) if "[" in t else []
    t = _REPOST_CHAIN_RE.sub(" ", t) if "//@" in t else t
    mentions = extract_mentions(t) if "@" in t else []
    if topics:
        t = TOPIC_RE.sub((lambda m: " " + m.group(1) + " ") if keep_topic_words else " ", t)
    if emoticons:
        t = EMOTICON_RE.sub(" ", t)
    if mentions:
        t = MENTION_RE.sub(" ", t)
    t = _BOILER_RE.sub(" ", t).lower()
    t = _SPACE_RE.sub(" ", t).strip()
    return CleanText(t, topics=[x.lower() for x in topics], mentions=mentions, emoticons=emoticons, urls=urls)
