"""The queue's state machine. Every status change and edit goes through
``transition``, which checks the move is allowed and appends the audit row in
the same transaction, so the audit log can never miss a change.

    pending  -> approved | rejected | expired | cancelled
    approved -> sending | cancelled | pending (an edit needs a fresh review)
    sending  -> sent | failed | unknown
    unknown  -> sent | failed | approved (reconciled: not on the platform, may retry)
    failed   -> approved (a person decides to try again)
    rejected, expired, sent, cancelled, done, dismissed: final

Follow suggestions are a person's to-do, never sent: pending -> done (followed
by hand) | dismissed. Approving always needs an active approver (or admin)
review account (``bot.engage.accounts``); editing and rejecting need an
account with that right once the team has accounts. With ``[review] second_approval``
a reply needs two different approvers. The last decision can be undone for
``[review] undo_seconds`` by the person who made it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from config import Settings
from config.times import parse_stored, to_stored
from storage import engagement as store
from storage.db import transaction

from bot.engage import policy
from bot.errors import HuaxiangError

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"approved", "rejected", "expired", "cancelled", "done", "dismissed"}),
    "approved": frozenset({"sending", "cancelled", "pending"}),
    "sending": frozenset({"sent", "failed", "unknown"}),
    "unknown": frozenset({"sent", "failed", "approved"}),
    "failed": frozenset({"approved"}),
    "rejected": frozenset(),
    "expired": frozenset(),
    "sent": frozenset(),
    "cancelled": frozenset(),
    "done": frozenset(),
    "dismissed": frozenset(),
}
# Decisions ``undo`` may take back (to pending), within the undo window.
UNDOABLE = ("approve", "approve_first", "reject", "done", "dismiss")
SECOND_APPROVAL_KINDS = ("reply", "group_reply")

PLANNER = "huaxiang/planner"
SENDER = "huaxiang/sender"
OUTCOMES = "huaxiang/outcomes"


class QueueError(HuaxiangError):
    """A change the queue refuses (unknown item, wrong state, missing name).

    ``code`` and ``values`` let the review page say it in the team's language
    (message catalogue key ``err.<code>``); the English text stays for the CLI and logs."""

    def __init__(self, message: str, code: str = "", **values: Any):
        super().__init__(message)
        self.code, self.values = code, values


@dataclass
class Change:
    item_id: int
    ok: bool
    message: str
    code: str = ""
    values: dict[str, Any] = field(default_factory=dict)


def _now(now: datetime | None) -> str:
    return to_stored(now or datetime.now(timezone.utc))


def transition(db: sqlite3.Connection, item_id: int, to: str, actor: str, action: str, at: str, *,
               updates: dict[str, Any] | None = None, detail: dict[str, Any] | None = None,
               expect: tuple[str, ...] | None = None) -> store.QueueItem:
    """Move one item to ``to`` inside the caller's transaction, with its audit row."""
    item = store.get_item(db, item_id)
    if item is None:
        raise QueueError(f"queue item {item_id} does not exist", "missing", id=item_id)
    if expect is not None and item.status not in expect:
        raise QueueError(f"item {item_id} is {item.status}, expected {' or '.join(expect)}", "state", id=item_id,
                         status=item.status)
    if to != item.status and to not in TRANSITIONS[item.status]:
        raise QueueError(f"item {item_id} is {item.status}; it cannot become {to}", "state", id=item_id, status=item.status)
    values = dict(updates or {})
    values["status"] = to
    values["updated_at"] = at
    text_after = values.get("text", item.text)
    store.update_item(db, item_id, values)
    store.append_audit(db, at, actor, action, item_id, item.status, to, item.text, text_after, detail)
    return store.get_item(db, item_id)  # type: ignore[return-value]


def _require_person(by: str | None, what: str) -> str:
    if not policy.is_named_person(by):
        raise QueueError(f"{what} needs a person's name (--by NAME); got {by!r}", "no_name")
    return by.strip()  # type: ignore[union-attr]


def _require_right(db: sqlite3.Connection, by: str, right: str, what: str) -> str:
    """``by`` must be an active account whose role allows ``right``.

    Approving always needs such an account (nothing is posted without an
    approval by a named account allowed to approve), even before the team has
    created any; editing, rejecting and the rest need one once accounts exist."""
    from bot.engage.accounts import accounts_enabled, active_account

    if right == "approve" and not accounts_enabled(db):
        raise QueueError(f"{what} needs an approver account and there is none yet: create one with "
                         "`huaxiang users add NAME --role approver`", "no_approver", name=by)
    if not accounts_enabled(db):
        return by
    account = active_account(db, by)
    if account is None:
        raise QueueError(f"{what} needs an active review account; {by!r} is none (see `huaxiang users list`)",
                         "no_account", name=by)
    if not account.can(right):
        raise QueueError(f"{what} is not allowed for {by!r} (role {account.role})", "not_allowed", name=by,
                         role=account.role)
    return account.name


def first_approver(db: sqlite3.Connection, item_id: int) -> str | None:
    """Who gave the first of two approvals since the draft last changed (None = nobody yet)."""
    first = None
    for row in store.audit_for(db, item_id):
        if row["action"] == "approve_first":
            first = row["actor"]
        elif row["action"] in ("edit", "reject", "plan") or (row["action"] == "undo" and first is not None):
            first = None
    return first


def _each(db: sqlite3.Connection, ids: list[int], fn) -> list[Change]:
    out = []
    for item_id in ids:
        try:
            with transaction(db):
                msg = fn(item_id)
            out.append(Change(item_id, True, msg))
        except QueueError as exc:
            out.append(Change(item_id, False, str(exc), exc.code, {k: str(v) for k, v in exc.values.items()}))
    return out


def approve(db: sqlite3.Connection, ids: list[int], by: str, now: datetime | None = None, *,
            retry_failed: bool = True, second_approval: bool = False) -> list[Change]:
    """A named person approves items (pending ones; failed ones only with ``retry_failed``).

    With ``second_approval``, a reply's first approval is recorded and the item
    stays pending until a different approver approves it too."""
    by = _require_person(by, "approving")
    by = _require_right(db, by, "approve", "approving")
    at = _now(now)
    allowed = ("pending", "failed") if retry_failed else ("pending",)

    def one(item_id: int) -> str:
        item = store.get_item(db, item_id)
        if item is not None and item.kind == "follow":
            raise QueueError(f"item {item_id} is a follow suggestion: mark it done by hand or dismiss it", "follow_todo",
                             id=item_id)
        if item is not None and item.status in allowed and not (item.text or "").strip():
            raise QueueError(f"item {item_id} has no text to approve", "no_text", id=item_id)
        if second_approval and item is not None and item.kind in SECOND_APPROVAL_KINDS and item.status == "pending":
            first = first_approver(db, item_id)
            if first is None:
                transition(db, item_id, "pending", by, "approve_first", at, expect=("pending",),
                           updates={"reviewed_by": by})
                return f"first approval of #{item_id} by {by}; a second approver must approve it too"
            if first == by:
                raise QueueError(f"item {item_id} needs a second approver other than {by}", "second_same", id=item_id,
                                 name=by)
        transition(db, item_id, "approved", by, "approve", at, expect=allowed,
                   updates={"approved_by": by, "approved_at": at, "reviewed_by": by})
        return f"approved #{item_id}"

    return _each(db, ids, one)


def settle_follow(db: sqlite3.Connection, ids: list[int], by: str, done: bool,
                  now: datetime | None = None) -> list[Change]:
    """A follow suggestion is a to-do: a person followed by hand (done) or decided not to (dismissed)."""
    by = _require_person(by, "settling a follow suggestion")
    by = _require_right(db, by, "todo", "settling a follow suggestion")
    at = _now(now)
    to, action = ("done", "done") if done else ("dismissed", "dismiss")

    def one(item_id: int) -> str:
        item = store.get_item(db, item_id)
        if item is not None and item.kind != "follow":
            raise QueueError(f"item {item_id} is a {item.kind}, not a follow suggestion", "not_follow", id=item_id)
        transition(db, item_id, to, by, action, at, expect=("pending",), updates={"reviewed_by": by})
        return f"{to} #{item_id}"

    return _each(db, ids, one)


def undo(db: sqlite3.Connection, item_id: int, by: str, window_s: float,
         now: datetime | None = None) -> store.QueueItem:
    """Take back one's own last decision on an item within ``window_s`` seconds: it is pending again."""
    by = _require_person(by, "undoing")
    moment = now or datetime.now(timezone.utc)
    with transaction(db):
        item = store.get_item(db, item_id)
        last = store.last_audit(db, item_id)
        if item is None or last is None:
            raise QueueError(f"queue item {item_id} does not exist", "missing", id=item_id)
        if last["action"] not in UNDOABLE or last["to_status"] != item.status:
            raise QueueError(f"item {item_id}: its last change ({last['action']}) cannot be undone", "undo_no", id=item_id)
        if last["actor"] != by:
            raise QueueError(f"item {item_id}: only {last['actor']} can undo their {last['action']}", "undo_other",
                             id=item_id, name=last["actor"])
        age = (moment - parse_stored(last["at"])).total_seconds()  # type: ignore[operator]
        if age > window_s:
            raise QueueError(f"item {item_id}: the {last['action']} was {int(age)} s ago; undo is possible for {int(window_s)} s",
                             "undo_late", id=item_id, seconds=int(window_s))
        values = {"status": last["from_status"], "updated_at": _now(moment), "reviewed_by": by}
        if last["action"] == "approve":
            values.update({"approved_by": None, "approved_at": None})
        store.update_item(db, item_id, values)
        store.append_audit(db, _now(moment), by, "undo", item_id, item.status, last["from_status"], item.text, item.text,
                           {"undid": last["action"], "audit_id": last["id"]})
    return store.get_item(db, item_id)  # type: ignore[return-value]


def reject(db: sqlite3.Connection, ids: list[int], by: str, reason: str = "",
           now: datetime | None = None) -> list[Change]:
    by = _require_person(by, "rejecting")
    by = _require_right(db, by, "reject", "rejecting")
    at = _now(now)

    def one(item_id: int) -> str:
        transition(db, item_id, "rejected", by, "reject", at, expect=("pending",),
                   updates={"reviewed_by": by}, detail={"reason": reason})
        return f"rejected #{item_id}"

    return _each(db, ids, one)


def edit(db: sqlite3.Connection, item_id: int, text: str, by: str, settings: Settings,
         now: datetime | None = None) -> store.QueueItem:
    """Change a draft. An approved item goes back to pending: the approval was for the old text."""
    by = _require_person(by, "editing")
    by = _require_right(db, by, "edit", "editing")
    text = (text or "").strip()
    probe = policy.Action(kind="reply", platform="", target_uid="", post_id=None, post_text="", text=text,
                          when=datetime.now(timezone.utc))
    bad = policy.rule_length(settings, probe)
    if bad is not None:
        raise QueueError(f"item {item_id}: {bad.message}", "too_long", id=item_id, limit=settings.engagement.max_length)
    at = _now(now)
    with transaction(db):
        item = store.get_item(db, item_id)
        if item is None:
            raise QueueError(f"queue item {item_id} does not exist", "missing", id=item_id)
        if item.status not in ("pending", "approved"):
            raise QueueError(f"item {item_id} is {item.status}; only pending or approved items can be edited", "state",
                             id=item_id, status=item.status)
        if item.kind == "follow":
            raise QueueError(f"item {item_id} is a follow suggestion: it has no draft to edit", "no_draft", id=item_id)
        return transition(db, item_id, "pending", by, "edit", at,
                          updates={"text": text, "text_key": policy.text_key(text), "reviewed_by": by,
                                   "approved_by": None, "approved_at": None})


def cancel(db: sqlite3.Connection, item_id: int, by: str, reason: str, now: datetime | None = None) -> store.QueueItem:
    at = _now(now)
    with transaction(db):
        return transition(db, item_id, "cancelled", by, "cancel", at, expect=("pending", "approved"),
                          detail={"reason": reason}, updates={"last_error": reason})


def cancel_open_for_user(db: sqlite3.Connection, platform: str, uid: str, by: str, reason: str, at: str) -> list[int]:
    """Inside the caller's transaction: cancel every pending/approved item to this user."""
    ids = store.open_items_for_user(db, platform, uid)
    for item_id in ids:
        transition(db, item_id, "cancelled", by, "cancel", at, detail={"reason": reason}, updates={"last_error": reason})
    return ids


def expire_due(db: sqlite3.Connection, now: datetime | None = None) -> int:
    """Pending items whose window closed before anyone reviewed them."""
    at = _now(now)
    with transaction(db):
        ids = store.pending_past_expiry(db, at)
        for item_id in ids:
            transition(db, item_id, "expired", PLANNER, "expire", at, detail={"reason": "not reviewed in time"})
    return len(ids)


def resolve(db: sqlite3.Connection, item_id: int, sent: bool, by: str, remote_id: str | None = None, note: str = "",
            now: datetime | None = None) -> store.QueueItem:
    """A person settles an item whose outcome the bot cannot know: one handed
    out in the manual worklist, or an ``unknown`` the platform cannot confirm."""
    by = _require_person(by, "resolving")
    at = _now(now)
    with transaction(db):
        item = store.get_item(db, item_id)
        if item is None:
            raise QueueError(f"queue item {item_id} does not exist", "missing", id=item_id)
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
