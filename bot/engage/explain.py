"""Why an item was proposed, written at display time in the reader's language.

Why facts, not prose, are stored: the planner and the analysis know the
numbers (score, tier, relevance, followers, the draft's post kind and quoted
phrases); a sentence frozen in English at planning time stays English on a
Chinese team's card. So the planner stores the facts (queue.explanation_facts,
queue.draft_reason, user_relevance.facts, all JSON) and the card, ``queue
show|list`` and the exports render them here with ``bot.i18n.t``. A row
planned before the facts existed has only its English sentence: that is shown
as it is.
"""

from __future__ import annotations

import json
from typing import Any

from bot.i18n import t

FACTS_VERSION = 1


def loads(value: str | dict | None) -> dict[str, Any]:
    """A JSON object column as a dict ({} when empty, malformed or not an object)."""
    if isinstance(value, dict):
        return value
    try:
        got = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}


def _num(value: Any, digits: int = 2) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def _tier(tier: str | None, lang: str) -> str:
    return t(f"tier.{tier}", lang) if tier in ("leader", "engaged", "potential") else t("x.member", lang)


def _who(f: dict[str, Any], lang: str) -> str:
    if f.get("group"):
        return t("x.who_group", lang, audience=f.get("audience") or "")
    rel = f.get("relevance_facts")
    why = relevance(rel, lang) if isinstance(rel, dict) and rel else str(f.get("relevance_why") or "")
    return t("x.who", lang, audience=f.get("audience") or "", tier=_tier(f.get("tier"), lang),
             relevance=_num(f.get("relevance")), why=t("x.who_why", lang, why=why) if why else "")


def explanation(facts: str | dict | None, lang: str = "zh", fallback: str | None = None) -> str:
    """The score explanation a reviewer reads; ``fallback`` (the stored text) when there are no facts."""
    f = loads(facts)
    if not f:
        return fallback or ""
    age_h = float(f.get("age_h") or 0)
    age = t("x.age_h", lang, n=f"{age_h:.0f}") if age_h < 48 else t("x.age_d", lang, n=f"{age_h / 24:.0f}")
    sent, responded = int(f.get("sent") or 0), int(f.get("responded") or 0)
    learned = t("x.learned", lang, responded=responded, sent=sent) if sent else t("x.learned_none", lang)
    s = t("x.head", lang, score=_num(f.get("score")), who=_who(f, lang), followers=int(f.get("followers") or 0),
          age=age, interactions=int(f.get("interactions") or 0), learned=learned)
    if f.get("target") is not None and f.get("target_relevance") is not None:
        s += t("x.target", lang, target=f["target"], relevance=_num(f["target_relevance"]))
    draft = f.get("draft")
    if isinstance(draft, dict):
        why = draft_why(draft.get("reason"), lang)
        s += t("x.draft", lang, template=draft.get("template") or "", variant=int(draft.get("variant") or 0) + 1,
               why=t("x.draft_why", lang, why=why) if why else "")
    if f.get("scheduled"):
        s += t("x.scheduled", lang, when=f["scheduled"], active=t("x.active", lang) if f.get("in_active_hours") else "")
    if f.get("follow"):
        s += t("x.follow_never", lang)
    return s


def reason(facts: str | dict | None, lang: str = "zh", fallback: str | None = None) -> str:
    """The short reason (one phrase: who in which audience)."""
    f = loads(facts)
    if not f:
        return fallback or ""
    if f.get("group"):
        return t("x.reason_group", lang, audience=f.get("audience") or "")
    if f.get("follow"):
        return t("x.reason_follow", lang, audience=f.get("audience") or "")
    return t("x.reason", lang, audience=f.get("audience") or "", tier=_tier(f.get("tier"), lang))


def draft_why(value: str | dict | None, lang: str = "zh") -> str:
    """A draft's reason (queue.draft_reason JSON) as one line: post kind, quoted phrases, topics, library, drafter."""
    r = loads(value)
    if not r:
        return ""
    join = t("x.list", lang)
    parts = []
    kind = r.get("post_kind")
    if kind:
        name = t(f"pk.{kind}", lang) if f"pk.{kind}" in _KINDS else str(kind)
        parts.append(t("dr.post", lang, kind=name))
    if r.get("phrases"):
        parts.append(t("dr.quotes", lang, x=join.join(map(str, r["phrases"]))))
    if r.get("topics"):
        parts.append(t("dr.topics", lang, x=join.join(f"#{x}#" for x in r["topics"])))
    lib = r.get("library")
    if isinstance(lib, dict) and lib.get("id"):
        how_found = t(f"dr.by.{lib['by']}", lang) if lib.get("by") in ("words", "vector") else lib.get("by")
        by = t("dr.library_by", lang, by=how_found) if lib.get("by") else ""
        parts.append(t("dr.library", lang, id=lib["id"], by=by))
    if r.get("asks"):
        parts.append(t("dr.asks", lang, x=r["asks"]))
    drafter = str(r.get("drafter") or "")
    name = t(f"dr.drafter.{drafter}", lang) if drafter in _DRAFTERS else drafter
    how = r.get("shape") or r.get("template") or r.get("model") or ""
    parts.append(f"{name} {how}".strip())
    if r.get("fallback"):
        parts.append(t("dr.fallback", lang, x=r["fallback"]))
    return t("x.sep", lang).join(p for p in parts if p)


_KINDS = {f"pk.{k}" for k in ("question", "complaint", "progress", "review", "share", "statement")}
_DRAFTERS = {"builtin", "template", "llm", "library"}


def relevance(facts: str | dict | None, lang: str = "zh", fallback: str | None = None) -> str:
    """The analysis's per-user relevance explanation: score and rank, the posts and words that matched."""
    f = loads(facts)
    if not f:
        return fallback or ""
    if f.get("rank") and f.get("n"):
        parts = [t("rv.meaning", lang, score=_num(f.get("score")), rank=f"{int(f['rank']):,}", n=f"{int(f['n']):,}")]
    else:
        parts = [t("rv.meaning_only", lang, score=_num(f.get("score")))]
    posts = [" ".join(str(p).split()) for p in f.get("posts") or []][:2]   # one line, whatever the post's breaks
    if posts:
        parts.append(t("rv.posts", lang, x=t("x.sep", lang).join(
            "「" + p[:40] + ("…" if len(p) > 40 else "") + "」" for p in posts)))
    terms = f.get("terms") or {}
    if isinstance(terms, dict) and terms:
        seeds = set(f.get("seeds") or [])
        parts.append(t("rv.terms", lang, x=t("x.list", lang).join(
            f"{w}×{c}" + (t("rv.seed", lang) if w in seeds else "") for w, c in terms.items())))
    return t("x.sep", lang).join(parts)
