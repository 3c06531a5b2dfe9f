"""A draft's reason (queue.draft_reason, JSON) as one readable line, for
exports and the review card."""

from __future__ import annotations

import json
from typing import Any

KIND_NAMES = {"question": "question (求推荐/提问)", "complaint": "complaint (吐槽)", "progress": "progress (打卡/进步)",
              "review": "review (探店/测评)", "share": "sharing (分享)", "statement": "statement"}


def parse(value: str | dict | None) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        got = json.loads(value or "{}")
    except ValueError:
        return {}
    return got if isinstance(got, dict) else {}


def readable(value: str | dict | None) -> str:
    """e.g. 'question (求推荐/提问) post; answers with phrases 手冲, 参数; library grind-size; builtin shape builtin/question#2'."""
    r = parse(value)
    if not r:
        return ""
    parts = []
    if r.get("post_kind"):
        parts.append(f"{KIND_NAMES.get(r['post_kind'], r['post_kind'])} post")
    if r.get("phrases"):
        parts.append("quotes " + ", ".join(map(str, r["phrases"])))
    if r.get("topics"):
        parts.append("topics " + ", ".join(f"#{t}#" for t in r["topics"]))
    lib = r.get("library")
    if isinstance(lib, dict) and lib.get("id"):
        parts.append(f"library {lib['id']}" + (f" (by {lib['by']})" if lib.get("by") else ""))
    if r.get("asks"):
        parts.append(f"asks {r['asks']}")
    drafter = r.get("drafter") or ""
    how = r.get("shape") or r.get("template") or r.get("model") or ""
    parts.append(f"{drafter} {how}".strip())
    if r.get("fallback"):
        parts.append(f"LLM fell back: {r['fallback']}")
    return "; ".join(p for p in parts if p)
