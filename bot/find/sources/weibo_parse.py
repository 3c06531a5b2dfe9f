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
from datetime import datetime, timedelta
from typing import Any

from config.times import CHINA, parse_platform_time
from bot.find.sources.base import text_key
from nlp.clean import extract_mentions, extract_topics
from storage.records import Post, User



class ItemError(ValueError):
    """One card/post/user in a payload is unusable (missing id, wrong type)."""


# -- dates -------------------------------------------------------------------
# The full form ("Tue Feb 23 12:28:47 +0800 2021") and ISO are read by
# config.times; these relative forms are Weibo's own.
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
    try:
        return parse_platform_time(text, naive=CHINA).astimezone(CHINA).isoformat()
    except ValueError:
        return _relative(text, (now or datetime.now(CHINA)).astimezone(CHINA))


def _relative(text: str, now: datetime) -> str | None:
    """刚刚, N秒前/分钟前/小时前, 今天/昨天/前天 HH:MM, MM-DD [HH:MM], YYYY-M-D [H:MM[:SS]]."""
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
    return None


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


def is_floor(value: Any) -> bool:
    """Is a count written as a lower bound ("100万+", "1000+")? Weibo shows big counts that way."""
    return isinstance(value, str) and value.strip().endswith("+") and parse_count(value) is not None


def count_floors(pairs: dict[str, Any]) -> list[str]:
    """The names (of ``pairs``: field -> raw value) whose counts are lower bounds."""
    return [name for name, raw in pairs.items() if is_floor(raw)]


_PLAYS = re.compile(r"^\s*([\d.,]+\s*(?:万|亿|w|W|k|K)?\+?)\s*次(?:播放|观看)")


def parse_plays(value: Any) -> int | None:
    """A video's play count: "345万次播放" -> 3450000 (ints pass through)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return parse_count(value)
    if not isinstance(value, str):
        return None
    m = _PLAYS.match(value)
    return parse_count(m.group(1)) if m else parse_count(value)


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


def parse_source(value: Any) -> str | None:
    """The client a post was sent from; older payloads wrap it in a link."""
    if not isinstance(value, str):
        return None
    text = html.unescape(_TAG.sub("", value)).strip()
    return text or None


def parse_video(page_info: Any) -> tuple[str | None, int | None]:
    """(type, play count) of an attached video or live stream, from ``page_info``."""
    if not isinstance(page_info, dict):
        return None, None
    kind = page_info.get("type")
    kind = str(kind) if isinstance(kind, (str, int)) and not isinstance(kind, bool) else None
    if kind not in ("video", "live", "story"):
        return None, None            # articles ("24"/"article"), web pages, places: not media
    return kind, parse_plays(page_info.get("play_count"))


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
    """``"发布于 北京"`` / ``"IP属地：北京"`` -> ``"北京"``."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for prefix in ("发布于", "IP属地：", "IP属地:", "IP属地"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
            break
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
    vtype = u.get("verified_type")
    followers_raw = u.get("followers_count_str", u.get("followers_count"))
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
        verified_type=vtype if isinstance(vtype, int) and not isinstance(vtype, bool) else None,
        ip_location=parse_region(u.get("ip_location")),
        counts_floor=count_floors({"followers": followers_raw, "following": u.get("follow_count"),
                                   "posts_count": u.get("statuses_count")}),
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
    video = parse_video(m.get("page_info"))
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
        source=parse_source(m.get("source")),
        pic_urls=_pic_list(m),
        video_type=video[0],
        video_plays=video[1],
        edit_count=_edit_count(m),
        counts_floor=count_floors({"reposts": m.get("reposts_count"), "comments": m.get("comments_count"),
                                   "likes": m.get("attitudes_count")}),
    )
    return [post] + out


def _pic_list(m: dict[str, Any]) -> list[str] | None:
    """Picture URLs; [] when the post says it has none, None when it does not say."""
    urls = parse_pics(m.get("pics"))
    if urls:
        return urls
    num = m.get("pic_num")
    if isinstance(num, int) and not isinstance(num, bool):
        return [] if num == 0 else None      # pictures announced but not listed: unknown
    return [] if "pics" in m else None


def _edit_count(m: dict[str, Any]) -> int | None:
    n = m.get("edit_count")
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n
    cfg = m.get("edit_config")
    if isinstance(cfg, dict) and cfg.get("edited") is False:
        return 0
    return None


def is_long_text(m: dict[str, Any]) -> bool:
    return bool(m.get("isLongText")) if isinstance(m, dict) else False


def parse_comment(c: Any, platform: str, parent_pid: str, now: datetime | None = None) -> Post:
    """One comment on post ``parent_pid``. A reply (its ``rootid`` names another
    comment) points at that thread: ``thread_root`` is the top-level comment,
    ``reply_to`` the comment answered (``reply_comment`` when given, else the root)."""
    if not isinstance(c, dict):
        raise ItemError(f"comment is not an object ({type(c).__name__})")
    cid = _id(c.get("id", c.get("idstr")), "comment.id")
    author = parse_user(c.get("user"), platform)
    text = clean_text(c.get("text"))
    root = _other_id(c.get("rootidstr", c.get("rootid")), cid)
    reply = c.get("reply_comment")
    answered = _other_id(reply.get("idstr", reply.get("id")), cid) if isinstance(reply, dict) else None
    likes_raw = c.get("like_count", c.get("like_counts"))
    nested = c.get("comments")
    replies = parse_count(c.get("total_number"))
    if replies is None and isinstance(nested, list) and root is None:
        replies = len(nested)
    return Post(
        platform=platform, pid=cid, uid=author.uid, kind="comment", text=text,
        created_at=parse_created_at(c.get("created_at"), now),
        topics=extract_topics(text), mentions=extract_mentions(text),
        likes=parse_count(likes_raw), comments=replies if root is None else None,
        parent_pid=parent_pid, region=_comment_region(c.get("source")),
        raw=c, author=author, thread_root=root, reply_to=answered or root,
        pic_urls=_comment_pics(c), counts_floor=count_floors({"likes": likes_raw}),
    )


def parse_thread(c: Any, platform: str, parent_pid: str, now: datetime | None = None) -> tuple[list[Post], int]:
    """A hotflow comment and the replies nested in its ``comments[]``: (posts, replies skipped)."""
    top = parse_comment(c, platform, parent_pid, now)
    out, skipped = [top], 0
    nested = c.get("comments") if isinstance(c, dict) else None
    for r in nested if isinstance(nested, list) else []:
        try:
            reply = parse_comment(r, platform, parent_pid, now)
        except ItemError:
            skipped += 1
            continue
        if reply.thread_root is None:       # a reply always belongs to the comment it is nested in
            reply.thread_root = reply.reply_to = top.pid
        out.append(reply)
    return out, skipped


def _other_id(value: Any, own: str) -> str | None:
    """A related comment id, or None when absent, malformed or the comment's own."""
    try:
        rid = _id(value, "rootid")
    except ItemError:
        return None
    return None if rid in (own, "0") else rid


def _comment_pics(c: dict[str, Any]) -> list[str] | None:
    pic = c.get("pic")
    if isinstance(pic, dict):
        large = pic.get("large")
        url = (large.get("url") if isinstance(large, dict) else None) or pic.get("url")
        return [url] if isinstance(url, str) and url else None
    return None


def _comment_region(value: Any) -> str | None:
    """Comments carry their region as ``source: "来自北京"``."""
    if isinstance(value, str) and value.startswith("来自"):
        return value[2:].strip() or None
    return None


# "基本资料" items of the 230283<uid>_-_INFO page -> User fields.
_INFO_FIELDS = {"所在地": "location", "生日": "birthday", "IP属地": "ip_location", "公司": "company",
                "注册时间": "registered_at", "大学": "education", "高中": "education", "初中": "education",
                "小学": "education", "学校": "education", "教育经历": "education"}


def parse_info_cards(cards: list[dict[str, Any]]) -> dict[str, str]:
    """Profile details from the INFO page's ``item_name`` / ``item_content`` cards.

    Several schools are joined with " / " (a profile may list 大学 and 高中).
    """
    out: dict[str, str] = {}
    for card in cards:
        name, value = card.get("item_name"), card.get("item_content")
        if not (isinstance(name, str) and isinstance(value, str) and value.strip()):
            continue
        field_name = _INFO_FIELDS.get(name.strip())
        if field_name is None:
            continue
        value = value.strip()
        if field_name == "ip_location":
            value = parse_region(value) or value
        if field_name == "education" and field_name in out:
            out[field_name] = f"{out[field_name]} / {value}"
        else:
            out.setdefault(field_name, value)
    return out


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
