"""Turning Weibo mobile-web payloads into the project's records.

Why a module of its own, free of HTTP: the payloads are where the real-world
mess lives (relative dates, "1.2万" counts, pics as a list *or* an object,
reposts of deleted posts, HTML in text), and every quirk gets a direct test
against recorded shapes without a network.

A malformed item raises ``ItemError``; the caller logs it, counts it as
skipped and carries on with the rest of the page.
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.sources.base import text_key
from nlp.clean import extract_mentions, extract_topics
from storage.records import Post, User

CHINA = timezone(timedelta(hours=8))


class ItemError(ValueError):
    """One card/post/user in a payload is unusable (missing id, wrong type)."""


# -- dates -------------------------------------------------------------------
# "Tue Feb 23 12:28:47 +0800 2021" (hand-parsed: strptime is slow and locale-bound)
_FULL = re.compile(r"^[A-Z][a-z]{2} ([A-Z][a-z]{2}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})$")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_REL_MIN = re.compile(r"^(\d+)\s*分钟前$")
_REL_HOUR = re.compile(r"^(\d+)\s*小时前$")
_REL_SEC = re.compile(r"^(\d+)\s*秒前$")
_DAY_HM = re.compile(r"^(昨天|今天|前天)\s*(\d{1,2}):(\d{2})$")
_MD = re.compile(r"^(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?$")
_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_created_at(value: Any, now: datetime | None = None) -> str | None:
    """Every ``created_at`` form Weibo uses, as ISO 8601 in China time.

    Relative forms (刚刚, N分钟前, 昨天 12:00, 06-27) are resolved against
    ``now`` (the moment the page was fetched). Unknown forms give None.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    m = _FULL.match(text)
    if m and m.group(1) in _MONTHS:
        sign = 1 if m.group(6) == "+" else -1
        tz = timezone(sign * timedelta(hours=int(m.group(7)), minutes=int(m.group(8))))
        try:
            dt = datetime(int(m.group(9)), _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)), int(m.group(4)),
                          int(m.group(5)), tzinfo=tz)
        except ValueError:
            return None
        return dt.astimezone(CHINA).isoformat()
    now = (now or datetime.now(CHINA)).astimezone(CHINA)
    if text == "刚刚":
        return now.replace(microsecond=0).isoformat()
    for pattern, unit in ((_REL_SEC, "seconds"), (_REL_MIN, "minutes"), (_REL_HOUR, "hours")):
        m = pattern.match(text)
        if m:
            return (now - timedelta(**{unit: int(m.group(1))})).replace(microsecond=0).isoformat()
    m = _DAY_HM.match(text)
    if m:
        back = {"今天": 0, "昨天": 1, "前天": 2}[m.group(1)]
        day = (now - timedelta(days=back)).date()
        return _at(day.year, day.month, day.day, int(m.group(2)), int(m.group(3)))
    m = _MD.match(text)
    if m:
        month, day = int(m.group(1)), int(m.group(2))
        hh, mm = int(m.group(3) or 0), int(m.group(4) or 0)
        out = _at(now.year, month, day, hh, mm)
        # "06-27" means this year, unless that is still in the future (then last year).
        if out is not None and datetime.fromisoformat(out) > now + timedelta(days=1):
            out = _at(now.year - 1, month, day, hh, mm)
        return out
    m = _YMD.match(text)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return _at(y, mo, d, int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0))
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CHINA)
    return dt.astimezone(CHINA).isoformat()


def _at(y: int, mo: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> str | None:
    try:
        return datetime(y, mo, d, hh, mm, ss, tzinfo=CHINA).isoformat()
    except ValueError:
        return None


# -- counts ------------------------------------------------------------------
_COUNT = re.compile(r"^([\d.,]+)\s*(万|亿|w|W|k|K)?\s*\+?$")
_UNITS = {"万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000, "k": 1000, "K": 1000, None: 1}
# Larger than any real counter, and beyond what SQLite's INTEGER can store.
MAX_COUNT = 2**63 - 1


def parse_count(value: Any) -> int | None:
    """12, "12", "1万+", "1.2万", "3亿", "1,234", "100+" -> int; anything else
    (negative, infinite, NaN, too large to store) None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_COUNT else None
    if not isinstance(value, str):
        return None
    m = _COUNT.match(value.strip())
    if not m:
        return None
    try:
        number = float(m.group(1).replace(",", "")) * _UNITS[m.group(2)]
    except ValueError:
        return None
    if not math.isfinite(number) or number > MAX_COUNT:
        return None
    return int(round(number))


# -- text --------------------------------------------------------------------
_BR = re.compile(r"<br\s*/?>", re.I)
_IMG_ALT = re.compile(r"""<img\b[^>]*?\balt=(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>""", re.I)
_FULLTEXT = re.compile(r"(?:\.\.\.|…)?\s*<a\b[^>]*>\s*全文\s*</a>", re.I)
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\u00a0]+")


def clean_text(raw_html: Any) -> str:
    """Weibo's HTML ``text`` as plain text: emoticon images become their
    ``[alt]``, topic/@/URL links become their visible text, the "全文" link
    of a truncated long post is dropped, entities are decoded."""
    if not isinstance(raw_html, str):
        return ""
    s = _BR.sub("\n", raw_html)
    s = _FULLTEXT.sub("", s)
    s = _IMG_ALT.sub(lambda m: m.group(1) or m.group(2) or m.group(3) or "", s)
    s = _TAG.sub("", s)
    s = html.unescape(s)
    s = _SPACES.sub(" ", s)
    return "\n".join(line.strip() for line in s.splitlines()).strip()


def rendering_keys(text: str) -> set[str]:
    """The keys our own comment may come back as once the platform has
    rendered it as HTML and we have parsed it: as written (the platform
    escaped <, > and &), as if its angle brackets were read as a tag, and
    with entities decoded. Reconciliation matches any of them, so a draft
    like "3 < 5 > 2" or "&lt;" is found and never sent twice."""
    raw = text or ""
    return {k for k in (text_key(raw), text_key(clean_text(raw)), text_key(html.unescape(raw)),
                        text_key(clean_text(html.escape(raw, quote=False)))) if k}


_GROUP_LINK = re.compile(r"containerid=100808([0-9a-fA-F]{32})")


def group_in_html(raw_html: Any) -> str | None:
    """The super-topic a post was posted in, from its leading 超话 link."""
    if not isinstance(raw_html, str):
        return None
    m = _GROUP_LINK.search(raw_html)
    return m.group(1).lower() if m else None


def parse_region(value: Any) -> str | None:
    """``"发布于 北京"`` -> ``"北京"``."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("发布于"):
        text = text[3:].strip()
    return text or None


def parse_pics(value: Any) -> list[str]:
    """Picture URLs from ``pics`` given as a list or as an object ``{"0": {...}}``."""
    if isinstance(value, dict):
        items = [value[k] for k in sorted(value, key=lambda k: (len(str(k)), str(k)))]
    elif isinstance(value, list):
        items = value
    else:
        return []
    urls = []
    for it in items:
        if isinstance(it, dict):
            large = it.get("large")
            url = (large.get("url") if isinstance(large, dict) else None) or it.get("url")
            if isinstance(url, str) and url:
                urls.append(url)
        elif isinstance(it, str) and it:
            urls.append(it)
    return urls


def parse_tags(user: dict[str, Any], card: dict[str, Any] | None = None) -> list[str]:
    """Self-chosen tags: a ``tags`` list/string on the user, or a user-search
    card's ``desc1``/``desc2`` line starting with 标签."""
    found: list[str] = []
    tags = user.get("tags")
    if isinstance(tags, list):
        found += [t.strip() for t in tags if isinstance(t, str) and t.strip()]
    elif isinstance(tags, str):
        found += [t for t in re.split(r"[\s,，、]+", tags) if t]
    for key in ("desc1", "desc2"):
        desc = (card or {}).get(key)
        if isinstance(desc, str) and desc.startswith("标签"):
            body = re.sub(r"^标签\s*[:：]?\s*", "", desc)
            found += [t for t in re.split(r"[\s,，、]+", body) if t]
    return list(dict.fromkeys(found))


# -- records -----------------------------------------------------------------
def _id(value: Any, what: str) -> str:
    if isinstance(value, bool):
        raise ItemError(f"{what} has the wrong type (bool)")
    if isinstance(value, int):
        if value < 0:
            raise ItemError(f"{what} is negative: {value}")
        return str(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return value.strip()             # ASCII only: "²" and "١٢٣" are digits to str.isdigit
    if value is None:
        raise ItemError(f"{what} is missing")
    raise ItemError(f"{what} is not a numeric id: {value!r:.40}")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def parse_user(u: Any, platform: str, card: dict[str, Any] | None = None, full_profile: bool = False) -> User:
    if not isinstance(u, dict):
        raise ItemError(f"user is not an object ({type(u).__name__})")
    uid = _id(u.get("id", u.get("idstr")), "user.id")
    gender = u.get("gender")
    verified = u.get("verified")
    return User(
        platform=platform,
        uid=uid,
        name=_str(u.get("screen_name")),
        bio=_str(u.get("description")),
        tags=parse_tags(u, card),
        followers=parse_count(u.get("followers_count_str", u.get("followers_count"))),
        following=parse_count(u.get("follow_count", u.get("friends_count"))),
        posts_count=parse_count(u.get("statuses_count")),
        verified=verified if isinstance(verified, bool) else None,
        verified_reason=_str(u.get("verified_reason")),
        gender=gender if gender in ("m", "f") else None,
        location=_str(u.get("location")),
        profile_url=_str(u.get("profile_url")),
        avatar_url=_str(u.get("avatar_hd")) or _str(u.get("profile_image_url")),
        raw=u if full_profile else None,
        full_profile=full_profile,
    )


def parse_mblog(m: Any, platform: str, now: datetime | None = None, group_id: str | None = None,
                post_url: str | None = "https://m.weibo.cn/status/{pid}") -> list[Post]:
    """One ``mblog`` -> [post] or [post, retweeted original].

    A repost whose original was deleted (``retweeted_status.user`` is null)
    keeps ``repost_of`` but yields no record for the original.
    """
    if not isinstance(m, dict):
        raise ItemError(f"mblog is not an object ({type(m).__name__})")
    pid = _id(m.get("id", m.get("mid")), "mblog.id")
    author = parse_user(m.get("user"), platform)
    text = clean_text(m.get("text"))
    out: list[Post] = []
    repost_of = None
    rt = m.get("retweeted_status")
    if isinstance(rt, dict):
        try:
            repost_of = _id(rt.get("id", rt.get("mid")), "retweeted_status.id")
        except ItemError:
            repost_of = None
        if repost_of and isinstance(rt.get("user"), dict):
            try:
                out.extend(parse_mblog(rt, platform, now, None, post_url))
            except ItemError:
                pass            # a broken original never costs us the repost itself
    post = Post(
        platform=platform,
        pid=pid,
        uid=author.uid,
        text=text,
        created_at=parse_created_at(m.get("created_at"), now),
        topics=extract_topics(text),
        mentions=extract_mentions(text),
        reposts=parse_count(m.get("reposts_count")),
        comments=parse_count(m.get("comments_count")),
        likes=parse_count(m.get("attitudes_count")),
        repost_of=repost_of,
        group_id=group_id or group_in_html(m.get("text")),
        region=parse_region(m.get("region_name")),
        url=post_url.format(pid=pid) if post_url else None,
        raw=m,
        author=author,
    )
    return [post] + out


def is_long_text(m: dict[str, Any]) -> bool:
    return bool(m.get("isLongText")) if isinstance(m, dict) else False


def parse_comment(c: Any, platform: str, parent_pid: str, now: datetime | None = None) -> Post:
    if not isinstance(c, dict):
        raise ItemError(f"comment is not an object ({type(c).__name__})")
    cid = _id(c.get("id", c.get("idstr")), "comment.id")
    author = parse_user(c.get("user"), platform)
    text = clean_text(c.get("text"))
    return Post(
        platform=platform, pid=cid, uid=author.uid, kind="comment", text=text,
        created_at=parse_created_at(c.get("created_at"), now),
        topics=extract_topics(text), mentions=extract_mentions(text),
        likes=parse_count(c.get("like_count", c.get("like_counts"))),
        parent_pid=parent_pid, region=_comment_region(c.get("source")),
        raw=c, author=author,
    )


def _comment_region(value: Any) -> str | None:
    """Comments carry their region as ``source: "来自北京"``."""
    if isinstance(value, str) and value.startswith("来自"):
        return value[2:].strip() or None
    return None


def walk_cards(cards: Any) -> list[dict[str, Any]]:
    """Flatten ``cards`` (card_type 11 wraps a ``card_group``), keeping order."""
    if not isinstance(cards, list):
        raise ItemError(f"cards is not a list ({type(cards).__name__})")
    out: list[dict[str, Any]] = []
    for card in cards:
        if not isinstance(card, dict):
            out.append({"card_type": "invalid", "_value": card})
            continue
        if str(card.get("card_type")) == "11" and "card_group" in card:
            group = card.get("card_group")
            if isinstance(group, list):
                out.extend(walk_cards(group))
            else:
                out.append({"card_type": "invalid", "_value": group})
        else:
            out.append(card)
    return out


def card_kind(card: dict[str, Any]) -> str:
    """"post" (card_type 9, int or string), "user" (10), "invalid" or "other"."""
    ct = str(card.get("card_type"))
    if ct == "9":
        return "post"
    if ct == "10":
        return "user"
    if ct == "invalid":
        return "invalid"
    return "other"
