"""What a review card shows beyond the queue row: the thread, why this person
and post, the draft's reasoning, the item's history, times in the campaign's
zone, and which buttons the signed-in person may press.

Why on the server: the page stays a thin renderer (``textContent`` only), and
``queue show`` and the API give the same context the page does.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import tzinfo
from typing import Any

from config import Settings
from storage import engagement as store

from bot.engage import explain
from bot.i18n import fmt_time, language
from bot.find.sources import post_link, profile_link

TIME_FIELDS = ("scheduled_at", "expires_at", "created_at", "updated_at", "approved_at", "sent_at", "post_created_at")


def _loads(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value) if value else None
    except (TypeError, ValueError):
        return None


def draft_reason(row: dict[str, Any]) -> dict[str, Any]:
    """The drafter's reasoning (a later migration's ``draft_reason`` JSON), tolerant of its absence."""
    reason = _loads(row.get("draft_reason"))
    return reason if isinstance(reason, dict) else {}


def why(detail: dict[str, Any], row: dict[str, Any], lang: str = "zh") -> dict[str, Any]:
    """Target, relevance, tier and matched phrases: why this person and this post
    (the sentences written from the stored facts in ``lang``; old rows keep their text)."""
    reason = draft_reason(row)
    terms = _loads(detail.get("relevance_terms")) or {}
    phrases = reason.get("phrases") or (sorted(terms, key=lambda k: -terms[k])[:8] if isinstance(terms, dict) else [])
    relevance = row.get("target_relevance")
    if relevance is None:
        relevance = detail.get("target_relevance_stored")
    return {"target": row.get("target") or detail.get("audience_target") or "",
            "relevance": None if relevance is None else round(float(relevance), 3),
            "audience_score": None if detail.get("relevance") is None else round(float(detail["relevance"]), 3),
            "tier": detail.get("tier") or "", "audience": detail.get("audience") or "",
            "phrases": [str(p) for p in phrases][:10],
            "explanation": explanation_text(detail, lang),
            "reason": explain.reason(detail.get("explanation_facts"), lang, detail.get("reason")),
            "relevance_explanation": relevance_text(detail, lang)}


def relevance_text(row: dict[str, Any], lang: str = "zh") -> str:
    """The user's relevance explanation in ``lang``: the analysis's facts, else those the planner kept, else the text."""
    planned = explain.loads(row.get("explanation_facts"))
    facts = row.get("relevance_facts") or planned.get("relevance_facts")
    return explain.relevance(facts, lang, row.get("relevance_explanation") or planned.get("relevance_why"))


def explanation_text(row: dict[str, Any], lang: str = "zh") -> str:
    """The score explanation in ``lang`` from the row's facts, else its stored text (or its reason)."""
    return explain.explanation(row.get("explanation_facts"), lang, row.get("explanation") or row.get("reason") or "")


def history(db: sqlite3.Connection, item_id: int, tz: tzinfo) -> list[dict[str, Any]]:
    out = []
    for a in store.audit_for(db, item_id):
        detail = _loads(a.get("detail")) or {}
        out.append({"at": fmt_time(a["at"], tz), "actor": a["actor"], "action": a["action"],
                    "from": a["from_status"], "to": a["to_status"],
                    "edited": a["text_before"] is not None and a["text_before"] != a["text_after"],
                    "reason": detail.get("reason") or detail.get("note") or ""})
    return out


def context(db: sqlite3.Connection, detail: dict[str, Any], tz: tzinfo, lang: str = "zh") -> dict[str, Any]:
    """Thread, why, draft reasoning and history for one item."""
    row = store.queue_row(db, detail["id"])
    comments = store.thread_comments(db, detail.get("platform"), detail.get("post_pid"))
    recent = store.recent_posts_of(db, detail.get("target_user_id"), detail.get("post_pid"))
    for r in comments + recent:
        r["at"] = fmt_time(r.get("created_at"), tz)
    return {"comments": comments, "recent_posts": recent, "why": why(detail, row, lang),
            "draft_reason": draft_reason(row), "draft_why": explain.draft_why(row.get("draft_reason"), lang),
            "history": history(db, detail["id"], tz)}


def allowed_actions(item: dict[str, Any], rights: set[str]) -> list[str]:
    """The buttons this person may press on this item (none on a finished one)."""
    if item["status"] in store.READONLY_STATUSES:
        return []
    if item["kind"] == "follow":
        return ["done", "dismiss"] if item["status"] == "pending" and "todo" in rights else []
    acts = []
    if item["status"] == "pending" and "approve" in rights:
        acts.append("approve")
    if item["status"] == "pending" and "reject" in rights:
        acts.append("reject")
    if "edit" in rights:
        acts.append("edit")
    return acts


def card(db: sqlite3.Connection, item: dict[str, Any], settings: Settings, tz: tzinfo, rights: set[str],
         first: str | None = None) -> dict[str, Any]:
    """One queue row made ready for the page: links, local times, context, allowed actions."""
    item["post_link"] = post_link(item["platform"], item["post_pid"], item["post_url"], settings.sources)
    item["profile_link"] = profile_link(item["platform"], item["target_uid"], item["user_url"])
    item["display"] = {k: fmt_time(item.get(k), tz) for k in TIME_FIELDS}
    item["readonly"] = item["status"] in store.READONLY_STATUSES
    item["actions"] = allowed_actions(item, rights)
    item["first_approved_by"] = first
    lang = language(settings)
    item["context"] = context(db, item, tz, lang)
    item["explanation"] = item["context"]["why"]["explanation"]
    item["reason"] = item["context"]["why"]["reason"]
    return item
