"""Rendering the world in the JSON shapes ``m.weibo.cn`` and Open API v2 return.

Why deliberately messy: the real payloads carry HTML in ``text``, counts as
strings like "1.2万", ``pics`` sometimes as an object, reposts of deleted
posts with a null user. The sandbox emits the same mess so the adapter that
passes here passes there.
"""

from __future__ import annotations

import json

from datetime import datetime
from typing import Any
from urllib.parse import quote

from bot.find.sandbox import vocab
from bot.find.sandbox.world import ME_NAME, ME_UID, SPost, SUser, World, stable_hash
from bot.find.sources.weibo_parse import CHINA

PAGE_SIZE = 10


def weibo_time(ts: float) -> str:
    """``Tue Feb 23 12:28:47 +0800 2021``."""
    return datetime.fromtimestamp(ts, CHINA).strftime("%a %b %d %H:%M:%S %z %Y")


def count_text(n: int) -> int | str:
    """Big numbers come back as text, like the real API: 12345 -> "1.2万"."""
    if n >= 100_000_000:
        return f"{n / 100_000_000:.1f}亿".replace(".0亿", "亿")
    if n >= 10_000:
        return f"{n / 10_000:.1f}万".replace(".0万", "万")
    return n


def user_json(user: SUser, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": int(user.uid),
        "screen_name": user.name,
        "profile_image_url": f"https://tvax1.sinaimg.cn/crop.0.0.180.180.180/{user.uid}.jpg",
        "profile_url": f"https://m.weibo.cn/u/{user.uid}?uid={user.uid}",
        "statuses_count": len(user.mids),
        "verified": user.verified,
        "verified_type": 0 if user.verified else -1,
        "description": user.bio,
        "gender": user.gender,
        "urank": 4 + int(user.uid) % 30,
        "mbrank": int(user.uid) % 7,
        "followers_count": count_text(user.followers),
        "follow_count": user.following,
        "follow_me": False,
        "following": False,
    }
    if user.verified:
        out["verified_reason"] = user.verified_reason
    if full:
        out["avatar_hd"] = f"https://wx1.sinaimg.cn/orj480/{user.uid}.jpg"
        out["location"] = user.city
        out["tags"] = list(user.tags)     # sandbox extension; the parser also reads user-search desc1
    return out


def me_json() -> dict[str, Any]:
    return {"id": int(ME_UID), "idstr": ME_UID, "screen_name": ME_NAME, "description": "官方账号",
            "followers_count": 1234, "follow_count": 10, "verified": True, "verified_reason": "品牌官方微博"}


def _emoticon_html(alt: str) -> str:
    name = vocab.EMOTICON_FILES.get(alt, "d_doge")
    return (f'<span class="url-icon"><img alt={alt} src="https://h5.sinaimg.cn/m/emoticon/icon/default/{name}.png" '
            'style="width:1em; height:1em;" /></span>')


def render_html(world: World, post: SPost, full: bool = False) -> str:
    parts = []
    if post.group:
        cname = world.groups.get(post.group, "")
        parts.append(f'<a href="https://m.weibo.cn/p/index?extparam={quote(cname)}&containerid=100808{post.group}">'
                     f'<span class="url-icon"><img style="width: 1rem;height: 1rem" '
                     f'src="https://n.sinaimg.cn/photo/5213b46e/20180926/timeline_card_small_super_default.png"></span>'
                     f'<span class="surl-text">{cname}超话</span></a> ')
    for kind, value in post.segments:
        if kind == "topic":
            q = quote(f"231522type=1&t=10&q=#{value}#")
            parts.append(f'<a  href="https://m.weibo.cn/search?containerid={q}" data-hide="">'
                         f'<span class="surl-text">#{value}#</span></a>')
        elif kind == "mention":
            parts.append(f"<a href='/n/{quote(value)}'>@{value}</a>")
        elif kind == "emoticon":
            parts.append(_emoticon_html(value))
        elif kind == "br":
            parts.append("<br />")
        else:
            parts.append(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    if post.long_extra:
        if full:
            parts.append("<br />" + post.long_extra)
        else:
            parts.append(f'...<a href="/status/{post.mid}">全文</a>')
    return "".join(parts)


def _pics(post: SPost) -> Any:
    items = [{"pid": f"{post.mid}p{i}", "url": f"https://wx1.sinaimg.cn/orj360/{post.mid}p{i}.jpg",
              "size": "orj360", "large": {"size": "large", "url": f"https://wx1.sinaimg.cn/large/{post.mid}p{i}.jpg"}}
             for i in range(post.pics)]
    if post.pics_object:
        return {str(i): it for i, it in enumerate(items)}
    return items


def mblog_json(world: World, post: SPost, with_retweet: bool = True) -> dict[str, Any]:
    user = world.users.get(post.uid)
    m: dict[str, Any] = {
        "visible": {"type": 0, "list_id": 0},
        "created_at": weibo_time(post.ts),
        "id": post.mid,
        "mid": post.mid,
        "can_edit": False,
        "text": render_html(world, post),
        "textLength": len(post.text) * 2,
        "source": post.client,
        "favorited": False,
        "pic_num": post.pics,
        "is_paid": False,
        "user": user_json(user) if user else me_json(),
        "reposts_count": count_text(post.reposts),
        "comments_count": post.n_comments,
        "attitudes_count": count_text(post.likes),
        "isLongText": bool(post.long_extra),
        "region_name": f"发布于 {user.city}" if user else "发布于 北京",
        "bid": f"N{int(post.mid) % 10**9:09d}",
    }
    if post.pics:
        m["pics"] = _pics(post)
    if post.repost_of and with_retweet:
        orig = world.posts.get(post.repost_of)
        if orig is None or post.deleted_original:
            m["retweeted_status"] = {
                "created_at": weibo_time(post.ts - 3600), "id": post.repost_of, "mid": post.repost_of,
                "text": "抱歉，此微博已被作者删除。查看帮助：<a href=\"https://t.cn/Rfd3rQV\">网页链接</a>",
                "user": None, "reposts_count": 0, "comments_count": 0, "attitudes_count": 0, "visible": {"type": 0},
            }
        else:
            m["retweeted_status"] = mblog_json(world, orig, with_retweet=False)
    return m


def post_card(world: World, post: SPost) -> dict[str, Any]:
    return {"card_type": 9, "itemid": f"1076{post.mid}", "scheme": f"https://m.weibo.cn/status/{post.mid}",
            "mblog": mblog_json(world, post)}


def user_card(user: SUser) -> dict[str, Any]:
    return {"card_type": 10, "user": user_json(user), "desc1": "标签：" + " ".join(user.tags),
            "desc2": f"粉丝：{count_text(user.followers)}", "scheme": f"https://m.weibo.cn/u/{user.uid}"}


def page_slice(items: list[str], page: int) -> tuple[list[str], int | None]:
    start = (max(1, page) - 1) * PAGE_SIZE
    chunk = items[start:start + PAGE_SIZE]
    more = start + PAGE_SIZE < len(items)
    return chunk, (page + 1 if more else None)


def since_slice(items: list[str], since_id: str | None) -> tuple[list[str], str | None]:
    """Items strictly older (smaller id) than ``since_id``; stable when new items arrive on top."""
    if since_id:
        try:
            bound = int(since_id)
        except ValueError:
            bound = 0
        items = [m for m in items if int(m) < bound]
    chunk = items[:PAGE_SIZE]
    more = len(items) > PAGE_SIZE
    return chunk, (chunk[-1] if more and chunk else None)


def index_payload(cards: list[dict[str, Any]], cardlist_info: dict[str, Any]) -> dict[str, Any]:
    if not cards:
        return {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}
    return {"ok": 1, "data": {"cardlistInfo": cardlist_info, "cards": cards, "scheme": ""}}


def hotflow_comment(world: World, c: dict[str, Any], replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A hotflow comment; a top-level one carries its replies in ``comments[]`` with ``rootid``."""
    user = world.users.get(c["uid"])
    nested = [hotflow_comment(world, r) for r in (replies or [])]
    return {
        "created_at": weibo_time(c["ts"]), "id": c["id"], "rootid": c.get("root") or c["id"], "floor_number": 0,
        "text": _comment_html(c["text"]), "disable_reply": 0,
        "user": user_json(user) if user else me_json(),
        "mid": c["id"], "like_count": c.get("likes", 0), "liked": False,
        "source": f"来自{user.city}" if user else "来自北京", "total_number": len(nested),
        "comments": nested if nested else False,
    }


def _comment_html(text: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for alt in vocab.EMOTICONS:
        if alt in out:
            out = out.replace(alt, _emoticon_html(alt))
    return out


def api_status(world: World, post: SPost) -> dict[str, Any]:
    """A status in Open API v2 shape (what repost returns and comments embed)."""
    user = world.users.get(post.uid)
    out = {"created_at": weibo_time(post.ts), "id": int(post.mid), "idstr": post.mid, "mid": post.mid,
           "text": post.text, "source": post.client, "user": user_json(user) if user else me_json(),
           "reposts_count": post.reposts, "comments_count": post.n_comments, "attitudes_count": post.likes}
    if post.repost_of and post.repost_of in world.posts:
        out["retweeted_status"] = api_status(world, world.posts[post.repost_of])
    return out


def api_comment(world: World, c: dict[str, Any]) -> dict[str, Any]:
    user = world.users.get(c["uid"])
    post = world.posts.get(c["post"])
    out = {"created_at": weibo_time(c["ts"]), "id": int(c["id"]), "idstr": c["id"], "mid": c["id"],
           "text": c["text"], "source": "iPhone客户端", "user": user_json(user) if user else me_json(),
           "status": api_status(world, post) if post else None}
    if c.get("reply_to"):
        parent = next((x for x in world.our_comments if x["id"] == c["reply_to"]), None)
        if parent is not None:
            out["reply_comment"] = {"id": int(parent["id"]), "idstr": parent["id"], "text": parent["text"],
                                    "created_at": weibo_time(parent["ts"]), "user": me_json()}
    return out


def info_payload(user: SUser) -> dict[str, Any]:
    """The profile's "basic information" page (``230283<uid>_-_INFO``): item_name/item_content
    cards in two groups, as m.weibo.cn sends them."""
    first = [{"card_type": 41, "item_name": k, "item_content": v}
             for k, v in (("昵称", user.name), ("性别", "女" if user.gender == "f" else "男"), ("所在地", user.city),
                          ("简介", user.bio))]
    year = 2012 + int(stable_hash(0, user.uid) % 12)
    second = [{"card_type": 41, "item_name": "注册时间", "item_content": f"{year}-0{1 + int(user.uid[-1]) % 9}-15"},
              {"card_type": 41, "item_name": "IP属地", "item_content": user.city}]
    return {"ok": 1, "data": {"cardlistInfo": {}, "cards": [{"card_type": 11, "show_type": 2, "card_group": first},
                                                           {"card_type": 11, "show_type": 2, "card_group": second}]}}


def supertopic_bound(since_id: str | None) -> str | None:
    """The sandbox's own super-topic cursor back to a post id (``msgid``); plain ids pass."""
    if since_id and since_id.lstrip().startswith("{"):
        try:
            return str(json.loads(since_id).get("msgid") or "") or None
        except (ValueError, AttributeError):
            return None
    return since_id


def supertopic_page_info(cid: str, mids: list[str], nxt: str | None) -> dict[str, Any]:
    """``data.pageInfo`` of a super-topic page: the next cursor as the JSON string the real site sends."""
    info: dict[str, Any] = {"containerid": cid, "page_type": "08", "since_id": ""}
    if nxt:
        page = 2 + mids.index(nxt) // PAGE_SIZE if nxt in mids else 2
        info["since_id"] = json.dumps({"page": page, "nextscore": int(nxt) % 10**10, "msgid": int(nxt)},
                                      separators=(",", ":"))
    return info
