"""The queue's state machine. Every status change and edit goes through
``transition``, which checks the move is allowed and appends the audit row in
the same transaction, so the audit log can never miss a change.

    pending  -> approved | rejected | expired | cancelled
    approved -> sending | cancelled | pending (an edit needs a fresh review)
    sending  -> sent | failed | unknown
    unknown  -> sent | failed | approved (reconciled: not on the platform, may retry)
    failed   -> approved (a person decides to try again)
    rejected, expired, sent, cancelled: final
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from config import Settings
from storage import engagement as store
from storage.db import transaction

from bot import policy
from bot.errors import HuaxiangError

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"approved", "rejected", "expired", "cancelled"}),
    "approved": frozenset({"sending", "cancelled", "pending"}),
    "sending": frozenset({"sent", "failed", "unknown"}),
    "unknown": frozenset({"sent", "failed", "approved"}),
    "failed": frozenset({"approved"}),
    "rejected": frozenset(),
    "expired": frozenset(),
    "sent": frozenset(),
    "cancelled": frozenset(),
}

PLANNER = "huaxiang/planner"
SENDER = "huaxiang/sender"
OUTCOMES = "huaxiang/outcomes"


class QueueError(HuaxiangError):
    """A change the queue refuses (unknown item, wrong state, missing name)."""


@dataclass
class Change:
    item_id: int
    ok: bool
    message: str


def _now(now: datetime | None) -> str:
    return policy.iso(now or datetime.now(timezone.utc))


def transition(db, item_id: int, to: str, actor: str, action: str, at: str, *, updates: dict[str, Any] | None = None,
               detail: dict[str, Any] | None = None, expect: tuple[str, ...] | None = None) -> store.QueueItem:
    """Move one item to ``to`` inside the caller's transaction, with its audit row."""
    item = store.get_item(db, item_id)
    if item is None:
        raise QueueError(f"queue item {item_id} does not exist")
    if expect is not None and item.status not in expect:
        raise QueueError(f"item {item_id} is {item.status}, expected {' or '.join(expect)}")
    if to != item.status and to not in TRANSITIONS[item.status]:
        raise QueueError(f"item {item_id} is {item.status}; it cannot become {to}")
    values = dict(updates or {})
    values["status"] = to
    values["updated_at"] = at
    text_after = values.get("text", item.text)
    store.update_item(db, item_id, values)
    store.append_audit(db, at, actor, action, item_id, item.status, to, item.text, text_after, detail)
    return store.get_item(db, item_id)  # type: ignore[return-value]


def _require_person(by: str | None, what: str) -> str:
    if not policy.is_named_person(by):
        raise QueueError(f"{what} needs a person's name (--by NAME); got {by!r}")
    return by.strip()  # type: ignore[union-attr]


def _each(db, ids: list[int], fn) -> list[Change]:
    out = []
    for item_id in ids:
        try:
            with transaction(db):
                msg = fn(item_id)
            out.append(Change(item_id, True, msg))
        except QueueError as exc:
            out.append(Change(item_id, False, str(exc)))
    return out


def approve(db, ids: list[int], by: str, now: datetime | None = None) -> list[Change]:
    """A named person approves items (pending, or failed ones to try again)."""
    by = _require_person(by, "approving")
    at = _now(now)

    def one(item_id: int) -> str:
        item = store.get_item(db, item_id)
        if item is not None and item.status in ("pending", "failed") and not (item.text or "").strip() and item.kind != "follow":
            raise QueueError(f"item {item_id} has no text to approve")
        transition(db, item_id, "approved", by, "approve", at, expect=("pending", "failed"),
                   updates={"approved_by": by, "approved_at": at, "reviewed_by": by})
        return f"approved #{item_id}"

    return _each(db, ids, one)


def reject(db, ids: list[int], by: str, reason: str = "", now: datetime | None = None) -> list[Change]:
    by = _require_person(by, "rejecting")
    at = _now(now)

    def one(item_id: int) -> str:
        transition(db, item_id, "rejected", by, "reject", at, expect=("pending",),
                   updates={"reviewed_by": by}, detail={"reason": reason})
        return f"rejected #{item_id}"

    return _each(db, ids, one)


def edit(db, item_id: int, text: str, by: str, settings: Settings, now: datetime | None = None) -> store.QueueItem:
    """Change a draft. An approved item goes back to pending: the approval was for the old text."""
    by = _require_person(by, "editing")
    text = (text or "").strip()
    probe = policy.Action(kind="reply", platform="", target_uid="", post_id=None, post_text="", text=text,
                          when=datetime.now(timezone.utc))
    bad = policy.rule_length(settings, probe)
    if bad is not None:
        raise QueueError(f"item {item_id}: {bad.message}")
    at = _now(now)
    with transaction(db):
        item = store.get_item(db, item_id)
        if item is None:
            raise QueueError(f"queue item {item_id} does not exist")
        if item.status not in ("pending", "approved"):
            raise QueueError(f"item {item_id} is {item.status}; only pending or approved items can be edited")
        return transition(db, item_id, "pending", by, "edit", at,
                          updates={"text": text, "text_key": policy.text_key(text), "reviewed_by": by,
                                   "approved_by": None, "approved_at": None})


def cancel(db, item_id: int, by: str, reason: str, now: datetime | None = None) -> store.QueueItem:
    at = _now(now)
    with transaction(db):
        return transition(db, item_id, "cancelled", by, "cancel", at, expect=("pending", "approved"),
                          detail={"reason": reason}, updates={"last_error": reason})


def cancel_open_for_user(db, platform: str, uid: str, by: str, reason: str, at: str) -> list[int]:
    """Inside the caller's transaction: cancel every pending/approved item to this user."""
    ids = store.open_items_for_user(db, platform, uid)
    for item_id in ids:
        transition(db, item_id, "cancelled", by, "cancel", at, detail={"reason": reason}, updates={"last_error": reason})
    return ids


def expire_due(db, now: datetime | None = None) -> int:
    """Pending items whose window closed before anyone reviewed them."""
    at = _now(now)
    with transaction(db):
        ids = store.pending_past_expiry(db, at)
        for item_id in ids:
            transition(db, item_id, "expired", PLANNER, "expire", at, detail={"reason": "not reviewed in time"})
    return len(ids)


def resolve(db, item_id: int, sent: bool, by: str, remote_id: str | None = None, note: str = "",
            now: datetime | None = None) -> store.QueueItem:
    """A person settles an item whose outcome the bot cannot know: one handed
    out in the manual worklist, or an ``unknown`` the platform cannot confirm."""
    by = _require_person(by, "resolving")
    at = _now(now)
    with transaction(db):
        item = store.get_item(db, item_id)
        if item is None:
            raise QueueError(f"queue item {item_id} does not exist")
        if item.status not in ("sending", "unknown"):
            raise QueueError(f"item {item_id} is {item.status}; only sending (handed out) or unknown items can be resolved")
        if item.status == "sending":
            last = store.last_send_log(db, item_id)
            if not last or last["status"] != "handed_out":
                raise QueueError(f"item {item_id} is being sent right now by the sender; wait for it to finish")
        updates: dict[str, Any] = {"remote_id": remote_id} if sent and remote_id else {}
        if not sent:
            updates["last_error"] = note or f"{by} says it was not sent"
        return transition(db, item_id, "sent" if sent else "failed", by, "resolve", at, updates=updates,
                          detail={"note": note, "remote_id": remote_id})
