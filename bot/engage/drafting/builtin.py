"""The built-in drafter: replies and repost comments that answer the post.

Why shapes per post kind: a question wants an answer, progress wants
congratulations, a 探店 or review invites a follow-up question the post has
not already answered, a complaint wants sympathy and a way out. Each shape
quotes the post's own key phrase (a whole word of it) and may carry a
library entry (something of value) or a follow-up question. Shapes differ
in structure, not only in words, so a reviewer reading fifty of them does
not see one sentence fifty times.

Every draft carries its reason: the post kind, the phrases and topics it
used, the shape, the library entry and the question it asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.engage.drafting.library import Match
from bot.engage.drafting.reading import PostReading

# {p} main phrase, {q} a second phrase, {tip} a library entry, {ask} a follow-up question.
REPLY_SHAPES: dict[str, tuple[str, ...]] = {
    "question": (
        "{p}的话可以这样试试：{tip}",
        "之前也纠结过{p}，我的经验是{tip}，供参考～",
        "同问过{p}！后来发现{tip}",
        "{p}和{q}我都试过，{tip}",
        "{p}这个问题问得好，蹲一个大家的经验，我先说我的：{tip}",
    ),
    "progress": (
        "{p}能坚持到这一步真不容易，恭喜！{tip}",
        "恭喜！{p}这块又上了一个台阶，{ask}",
        "一天天进步太鼓舞人了，{p}和{q}都安排得很到位👍",
        "能坚持下来最难得！说到{p}，分享个小经验：{tip}",
        "{p}越来越有心得了，为你点赞！{ask}",
    ),
    "review": (
        "被你说得想去试试{p}了，{ask}",
        "{p}看起来确实不错，分享个小经验：{tip}",
        "收藏了！{p}和{q}都记下了，回头去试试",
        "{p}这条写得很实在，{ask}",
        "看完也想安排{p}了～{tip}",
    ),
    "complaint": (
        "{p}确实容易让人头疼，可以试试这个：{tip}",
        "抱抱，{p}这种情况我也遇到过，{tip}",
        "太懂了，{p}有时候就是这样，慢慢调整会好的，{q}那边也别太勉强自己",
        "{p}先别灰心，{ask}",
    ),
    "share": (
        "这份{p}分享太实用了，收藏！补充一点：{tip}",
        "谢谢分享{p}的经验！想问下{ask}",
        "{p}和{q}这两点记下了，很有参考价值",
        "{p}讲得很清楚，我再加一条：{tip}",
    ),
    "statement": (
        "说到{p}，分享一个我们的小经验：{tip}",
        "说到{p}深有同感！想问下{ask}",
        "{p}和{q}这两点都说到心坎上了",
        "看到{p}就想起自己的经历，分享个小经验：{tip}",
    ),
}

REPOST_SHAPES: tuple[str, ...] = (
    "{p}这条说得很实在，推荐给也在关注{q}的朋友",
    "转发收藏，{p}的经验很有参考价值。补充一点：{tip}",
    "关于{p}，这条值得一看～{tip}",
    "{p}和{q}都讲到了，转给需要的朋友",
    "推荐这条{p}分享！我们的小经验：{tip}",
)

# Follow-up questions: (text, kinds it suits, what in the post would already answer it).
ASKS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("现在有明显的变化吗？", ("progress",), r"变化|效果|明显|瘦了|涨了"),
    ("有什么新手容易踩的坑吗？", ("share", "statement", "complaint"), r"踩坑|弯路|新手|注意"),
    ("适合新手入门吗？", ("review", "share"), r"新手|入门|小白"),
    ("店名可以分享一下吗？", ("review",), r"店名|「|“|【|《"),
    ("是哪一款呀？", ("review",), r"款|型号|品牌|牌子|店|家"),
    ("坚持多久了？", ("progress",), r"第\s*\d+\s*天|\d+\s*(天|周|个月|年)|多久"),
    ("下一步打算怎么安排？", ("progress", "share"), r"下一步|接下来|计划|打算"),
    ("后来是怎么调整的？", ("complaint",), r"调整|换了|改成"),
    ("你一般怎么安排？", ("statement",), r"安排|每周|每天"),
)

_SHOP = re.compile(r"店|馆|家")
_END_PUNCT = re.compile(r"[。．.！!～~，,；;、\s]+$")


@dataclass
class BuiltinDraft:
    text: str
    shape: int                     # index into the kind's shapes (the learning unit)
    reason: dict


def _asks(reading: PostReading, p: str) -> list[str]:
    out = []
    for text, kinds, answered in ASKS:
        if reading.kind not in kinds or reading.says(answered):
            continue
        if text.startswith("店名") and not _SHOP.search(reading.text):
            continue
        out.append(text.replace("{p}", p))
    return out


def _tip(match: Match | None) -> str:
    return _END_PUNCT.sub("", match.entry.text) if match is not None else ""


def _fill(shape: str, p: str, q: str, tip: str, ask: str) -> str | None:
    """The shape with its fields, or None when it needs one we do not have."""
    need = set(re.findall(r"\{(\w+)\}", shape))
    have = {"p": p, "q": q, "tip": tip, "ask": ask}
    if any(not have[k] for k in need):
        return None
    text = shape.format(**have)
    if "{tip}" in shape and shape.endswith("{tip}"):
        text += "～" if text[-1] not in "。！？～" else ""
    return text


def builtin_drafts(reading: PostReading, kind: str, matches: list[Match], limit: int) -> list[BuiltinDraft]:
    """Every draft the shapes allow for this post: each of the two main phrases,
    each matched library entry (and none), each question the post leaves open."""
    if not reading.phrases:
        return []
    shapes = REPOST_SHAPES if kind == "repost" else REPLY_SHAPES.get(reading.kind, REPLY_SHAPES["statement"])
    template_kind = "repost" if kind == "repost" else reading.kind
    # {q} names a second thing the post mentions (a noun, not part of {p} nor containing it).
    def other(p: str, pool: list[str]) -> str:
        return next((n for n in pool if n not in p and p not in n), "")

    first = reading.phrases[0]
    pairs = [(first, other(first, reading.nouns))]
    second = other(first, reading.phrases)
    if second:
        pairs.append((second, first if first in reading.nouns else other(second, reading.nouns)))
    out: list[BuiltinDraft] = []
    seen: set[str] = set()
    for idx, shape in enumerate(shapes):
        for p, q in pairs:
            # Entries that share the quoted phrase, when any does: the tip continues what the reply picked up.
            tips: list[Match | None] = [m for m in matches if any(w in p or p in w for w in m.shared)][:2] \
                or list(matches[:1]) or [None]
            for m in tips:
                asks = _asks(reading, p) or [""]
                for ask in asks[:2]:
                    text = _fill(shape, p, q, _tip(m) if "{tip}" in shape else "", ask if "{ask}" in shape else "")
                    if text is None or len(text) > limit or text in seen:
                        continue
                    seen.add(text)
                    reason = {"post_kind": reading.kind, "shape": f"builtin/{template_kind}#{idx + 1}",
                              "phrases": [x for x in (p, q) if x and x in text], "topics": reading.topics,
                              "drafter": "builtin"}
                    if "{tip}" in shape and m is not None:
                        reason["library"] = m.as_reason()
                    if "{ask}" in shape and ask:
                        reason["asks"] = ask
                    out.append(BuiltinDraft(text=text, shape=idx, reason=reason))
    return out
