"""The engagement rules, each in exactly one function, used by planner and sender.

Why one place: a rule checked in two slightly different ways is a rule that
is broken somewhere. The planner asks ``plan_violations`` before proposing an
action; the sender asks ``send_violations`` inside the transaction that marks
an item ``sending``. Both are lists built from the same rule functions; the
only difference between stages is which queue statuses count (planned items
reserve capacity; at send time only real touches count).

Every rule returns ``None`` (fine) or a ``Violation`` saying what to do:
``cancel`` (permanent: opt-out, blocklist, cap reached...), ``wait`` (try
later: quiet hours, daily cap, spacing) or ``skip`` (not the sender's
business: not approved, or a follow that only a person may do).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from config import Settings
from config.times import parse_stored, to_stored
from storage import engagement as store

Stage = Literal["plan", "send"]
SENDABLE_KINDS = ("reply", "repost", "group_reply")
SYSTEM_ACTOR_PREFIX = "huaxiang/"


@dataclass
class Violation:
    rule: str
    message: str
    action: Literal["cancel", "wait", "skip"] = "cancel"
    retry_at: datetime | None = None     # for "wait": the earliest time worth trying again

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass
class Action:
    """What the rules look at: a planned candidate or a queued item about to be sent."""

    kind: str
    platform: str
    target_uid: str
    post_id: int | None
    post_text: str
    text: str
    when: datetime                      # scheduled time (plan) or now (send)
    source: str = ""
    item_id: int | None = None
    status: str | None = None
    approved_by: str | None = None
    post_created_at: str | None = None
    expires_at: str | None = None
    jitter_key: str = ""


# -- time helpers -------------------------------------------------------------

def local_zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.engagement.timezone)


def _parse_quiet(spec: str) -> tuple[int, int] | None:
    if not spec:
        return None
    a, b = spec.split("-")
    start = int(a[:2]) * 60 + int(a[3:])
    end = int(b[:2]) * 60 + int(b[3:])
    return None if start == end else (start, end)


def in_quiet_hours(settings: Settings, when: datetime) -> bool:
    window = _parse_quiet(settings.engagement.quiet_hours)
    if window is None:
        return False
    local = when.astimezone(local_zone(settings))
    minute = local.hour * 60 + local.minute
    start, end = window
    return start <= minute < end if start < end else (minute >= start or minute < end)


def after_quiet_hours(settings: Settings, when: datetime) -> datetime:
    """``when`` itself if outside quiet hours, else the moment they end."""
    if not in_quiet_hours(settings, when):
        return when
    _, end = _parse_quiet(settings.engagement.quiet_hours)  # type: ignore[misc]
    local = when.astimezone(local_zone(settings))
    candidate = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(timezone.utc)


def jitter_seconds(settings: Settings, key: str) -> float:
    """Deterministic jitter in [0, spacing_jitter_s) from a key, so a re-check
    at send time computes the same gap the planner used."""
    span = settings.engagement.spacing_jitter_s
    if span <= 0:
        return 0.0
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")
    return (h / 2**64) * span


def earliest_after(settings: Settings, previous: datetime | None, key: str) -> datetime | None:
    """The spacing rule: the earliest time an action may follow ``previous``."""
    if previous is None:
        return None
    return previous + timedelta(seconds=settings.engagement.min_spacing_s + jitter_seconds(settings, key))


def local_day_bounds(settings: Settings, when: datetime) -> tuple[datetime, datetime]:
    local = when.astimezone(local_zone(settings))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    nxt = start.date() + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=local.tzinfo)  # wall-clock midnight, right across DST
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def text_key(text: str) -> str:
    """Texts equal up to whitespace and case count as identical."""
    return re.sub(r"\s+", "", text or "").casefold()


# Letters from other scripts that look like the Latin ones in "huaxiang", and
# slashes that look like "/": `huaxiang／sender` or `huaхiang/sender` (Cyrillic
# х) must not pass for the system's own actors in the audit log.
_LOOKALIKES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "һ": "h", "ս": "u",
    "ց": "g", "ɡ": "g", "ո": "n", "υ": "u", "ν": "v", "α": "a", "ι": "i", "η": "n", "κ": "k", "τ": "t", "ο": "o",
    "∕": "/", "⁄": "/", "⧸": "/", "╱": "/", "\\": "/", "|": "/", "丿": "/",
})
_RESERVED_NAMES = {"system", "bot", "huaxiang", "auto", "planner", "sender", "outcomes"}


def actor_skeleton(actor: str) -> str:
    """What a name looks like: NFKC (full-width forms), look-alike letters and
    slashes folded, case and spaces ignored."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", actor).casefold().translate(_LOOKALIKES)
    return "".join(folded.split())


def is_named_person(actor: str | None) -> bool:
    """Approvals must carry a person's name, never the bot's own actors, nor a
    name made to look like one: invisible characters (zero-width, bidi
    controls) are refused outright, look-alikes by their skeleton."""
    import unicodedata

    name = (actor or "").strip()
    if not name or any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        return False
    skeleton = actor_skeleton(name)
    return bool(skeleton) and not skeleton.startswith(("huaxiang/", SYSTEM_ACTOR_PREFIX)) and skeleton not in _RESERVED_NAMES


def _statuses(stage: Stage) -> tuple[str, ...]:
    return store.PLANNED_STATUSES if stage == "plan" else store.TOUCH_STATUSES


# -- the rules (one function each) ----------------------------------------------

def rule_approved(a: Action) -> Violation | None:
    """Never a send without a named person's approval."""
    if a.status != "approved" or not is_named_person(a.approved_by):
        return Violation("approval", f"status is {a.status!r}, approved by {a.approved_by!r}", "skip")
    return None


def rule_approver_account(db: sqlite3.Connection, a: Action) -> Violation | None:
    """The approval must come from an account that, at send time, is still active and allowed
    to approve: one disabled or demoted since it approved holds the item until an approver
    approves it again. With no accounts at all nothing approved is sent."""
    from bot.engage.accounts import active_account

    if a.status != "approved":
        return None
    account = active_account(db, a.approved_by)
    if account is None or not account.can("approve"):
        return Violation("approval", f"approved by {a.approved_by!r}, which is not an active account allowed to approve;"
                         " an approver must approve it again", "skip")
    return None


def rule_second_approval(db: sqlite3.Connection, settings: Settings, a: Action) -> Violation | None:
    """With ``[review] second_approval``, a reply goes out only with two different approvers
    since its text last changed (bot.engage.queue_ops records the first as ``approve_first``)."""
    if not settings.review.second_approval or a.kind not in ("reply", "group_reply") or a.item_id is None:
        return None
    approvers: set[str] = set()
    for row in store.audit_for(db, a.item_id):
        if row["action"] in ("plan", "edit", "reject", "undo"):
            approvers = set()
        elif row["action"] in ("approve_first", "approve"):
            approvers.add(row["actor"])
    if len(approvers) < 2:
        return Violation("second_approval", f"needs two different approvers, has {sorted(approvers)}", "skip")
    return None


def rule_never_follow(a: Action) -> Violation | None:
    """Follows are suggestions for a person; the bot never sends one."""
    if a.kind not in SENDABLE_KINDS:
        return Violation("never_follow", f"{a.kind!r} is never sent automatically; do it by hand", "skip")
    return None


def rule_blocklist(db: sqlite3.Connection, settings: Settings, a: Action) -> Violation | None:
    if a.target_uid in settings.engagement.blocklist or store.in_blocklist_table(db, a.platform, a.target_uid):
        return Violation("blocklist", f"user {a.target_uid} is on the blocklist")
    return None


def rule_opt_out(db: sqlite3.Connection, a: Action) -> Violation | None:
    if store.is_opted_out(db, a.platform, a.target_uid):
        return Violation("opt_out", f"user {a.target_uid} asked not to be contacted")
    return None


def rule_deny_keywords(settings: Settings, a: Action) -> Violation | None:
    for word in settings.engagement.deny_keywords:
        if word and (word in (a.post_text or "") or word in (a.text or "")):
            return Violation("deny_keyword", f"contains deny keyword {word!r}")
    return None


def rule_post_age(settings: Settings, a: Action) -> Violation | None:
    created = parse_stored(a.post_created_at)
    if created is None:
        return Violation("post_age", "post has no creation time")
    if a.when - created > timedelta(days=settings.engagement.max_post_age_days):
        return Violation("post_age", f"post is older than {settings.engagement.max_post_age_days} days")
    return None


def rule_expiry(a: Action) -> Violation | None:
    expires = parse_stored(a.expires_at)
    if expires is not None and a.when > expires:
        return Violation("expired", f"its window closed at {a.expires_at}")
    return None


def rule_length(settings: Settings, a: Action) -> Violation | None:
    limit = settings.engagement.max_length
    if not (a.text or "").strip():
        return Violation("length", "empty text")
    if len(a.text) > limit:
        return Violation("length", f"{len(a.text)} characters, limit {limit}")
    return None


def rule_user_cap(db: sqlite3.Connection, settings: Settings, a: Action, stage: Stage) -> Violation | None:
    e = settings.engagement
    since = to_stored(a.when - timedelta(days=e.window_days))
    n = store.count_user_touches(db, a.platform, a.target_uid, since, _statuses(stage), a.item_id)
    if n >= e.max_touches_per_user:
        return Violation("user_cap", f"user {a.target_uid} already has {n} touch(es) in {e.window_days} days")
    return None


def rule_one_per_post(db: sqlite3.Connection, a: Action, stage: Stage) -> Violation | None:
    if a.post_id is None:
        return None
    statuses = store.ALL_STATUSES if stage == "plan" else store.TOUCH_STATUSES
    if store.count_post_items(db, a.post_id, statuses, a.item_id):
        return Violation("one_per_post", "this post already has an action")
    return None


def rule_identical_text(db: sqlite3.Connection, settings: Settings, a: Action, stage: Stage) -> Violation | None:
    since = to_stored(a.when - timedelta(days=settings.engagement.window_days))
    if store.count_text_uses(db, text_key(a.text), since, _statuses(stage), a.item_id):
        return Violation("identical_text", f"the same text is already used within {settings.engagement.window_days} days")
    return None


def rule_quiet_hours(settings: Settings, a: Action) -> Violation | None:
    if in_quiet_hours(settings, a.when):
        return Violation("quiet_hours", f"inside quiet hours {settings.engagement.quiet_hours}", "wait",
                         after_quiet_hours(settings, a.when))
    return None


def rule_daily_cap(db: sqlite3.Connection, settings: Settings, a: Action, stage: Stage) -> Violation | None:
    start, end = local_day_bounds(settings, a.when)
    n = store.count_actions_between(db, to_stored(start), to_stored(end), _statuses(stage), a.source, a.item_id)
    if n >= settings.engagement.daily_cap:
        return Violation("daily_cap", f"{n} actions already on this day (cap {settings.engagement.daily_cap})", "wait", end)
    return None


def rule_hourly_cap(db: sqlite3.Connection, settings: Settings, a: Action, stage: Stage) -> Violation | None:
    start = a.when - timedelta(hours=1)
    end = a.when + timedelta(seconds=1)
    n = store.count_actions_between(db, to_stored(start), to_stored(end), _statuses(stage), a.source, a.item_id)
    if n >= settings.engagement.hourly_cap:
        return Violation("hourly_cap", f"{n} actions in the last hour (cap {settings.engagement.hourly_cap})", "wait",
                         a.when + timedelta(minutes=5))
    return None


def rule_spacing(db: sqlite3.Connection, settings: Settings, a: Action, stage: Stage) -> Violation | None:
    """At least min_spacing + jitter between two actions of one account.

    At plan time the new action may fall between two planned ones, so both
    neighbours are checked; at send time only the last real request counts.
    """
    key = a.jitter_key or str(a.item_id)
    if stage == "plan":
        before, after = store.neighbour_times(db, a.source, to_stored(a.when), store.PLANNED_STATUSES, a.item_id)
        previous, following = parse_stored(before), parse_stored(after)
    else:
        previous, following = parse_stored(store.last_send_started(db, a.source)), None
    earliest = earliest_after(settings, previous, key)
    if earliest is not None and a.when < earliest:
        return Violation("spacing", f"next action allowed at {to_stored(earliest)}", "wait", earliest)
    if following is not None:
        gap_end = earliest_after(settings, a.when, key)
        if gap_end is not None and following < gap_end:
            return Violation("spacing", f"too close to the action planned at {to_stored(following)}", "wait",
                             earliest_after(settings, following, key))
    return None


# -- the two entry points ---------------------------------------------------------

def plan_violations(db: sqlite3.Connection, settings: Settings, a: Action) -> list[Violation]:
    """Why the planner must not propose this action at ``a.when`` (empty = fine)."""
    checks = [rule_blocklist(db, settings, a), rule_opt_out(db, a), rule_deny_keywords(settings, a)]
    if a.kind != "follow":  # a follow is a note for a person: no text, no send, no slot
        checks += [rule_post_age(settings, a), rule_expiry(a), rule_length(settings, a),
                   rule_one_per_post(db, a, "plan"), rule_user_cap(db, settings, a, "plan"),
                   rule_identical_text(db, settings, a, "plan"), rule_quiet_hours(settings, a),
                   rule_daily_cap(db, settings, a, "plan"), rule_hourly_cap(db, settings, a, "plan"),
                   rule_spacing(db, settings, a, "plan")]
    return [v for v in checks if v is not None]


def send_violations(db: sqlite3.Connection, settings: Settings, a: Action) -> list[Violation]:
    """Why the sender must not send this item now (empty = send)."""
    checks = [
        rule_approved(a), rule_approver_account(db, a), rule_second_approval(db, settings, a), rule_never_follow(a), rule_blocklist(db, settings, a),
        rule_opt_out(db, a), rule_deny_keywords(settings, a), rule_expiry(a), rule_length(settings, a),
        rule_user_cap(db, settings, a, "send"), rule_one_per_post(db, a, "send"),
        rule_identical_text(db, settings, a, "send"), rule_quiet_hours(settings, a),
        rule_daily_cap(db, settings, a, "send"), rule_hourly_cap(db, settings, a, "send"),
        rule_spacing(db, settings, a, "send"),
    ]
    return [v for v in checks if v is not None]


def first_blocking(violations: list[Violation]) -> Violation | None:
    """The violation that decides what happens: skip beats cancel beats wait."""
    for action in ("skip", "cancel", "wait"):
        for v in violations:
            if v.action == action:
                return v
    return None
