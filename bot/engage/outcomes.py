"""What happened after we spoke: replies, likes, follow-backs and opt-outs,
and what the planner learns from them (the response rates it ranks drafts
by: ``bot.engage.drafts.rank_drafts``).

Opt-outs: a reply like 别再@我 / 不要打扰 / 取关 puts its author on the
opt-out list at once, with the comment kept as evidence, and cancels every
pending or approved item to them.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from config import Settings
from config.times import to_stored
from storage import engagement as store
from storage.db import transaction

from bot.engage import queue_ops
from bot.engage.followers import follower_ids, followers_key
from bot.engage.sender import SendPlatform, make_transport
from bot.errors import HuaxiangError

log = logging.getLogger(__name__)

# Opt-out is an intent addressed to us: "don't @/comment/message ME", "I'm unfollowing/blocking YOU",
# "go away". A word alone is not enough: 滚 is in 圆滚滚, 不要发 in 不要发愁, 别发 in 别发呆
# (tests/test_outcomes.py keeps a corpus of friendly replies that must never match).
_ME = r"(?:我|咱|本人)"
_US = r"(?:你|你们|您|这个号|你家|小编|品牌|机器人)"
_CONTACT = r"(?:@|艾特|at|評論|评论|回复|回我|留言|私信|发消息|发评论|发广告|发这种|发这些|发了|刷屏|打扰|骚扰|烦)"
OPT_OUT_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    rf"(?:别|不要|请勿|请不要|不许|少)(?:再|老|总|一直)?(?:来|在这|给{_ME}|跟{_ME}|对{_ME})?{_CONTACT}{_ME}?",
    rf"(?:别|不要|请勿|请不要|不许)(?:再|老|总)?(?:给|跟|对|找){_ME}(?:发|评论|回复|留言|私信|推|营销)",
    r"不要打扰|别打扰|勿扰|别来烦|别烦我|烦死了",
    rf"(?:取关|拉黑|屏蔽|举报)(?:{_US}|了$|了[，。！!~～\s]|$)",
    rf"(?:已|已经|直接|马上)(?:取关|拉黑|屏蔽|举报)",
    r"(?:^|[，。！!\s])滚(?:开|蛋|远点|吧|出去|$|[，。！!])|给我滚|广告狗|营销号(?:滚|走开)|机器人(?:走开|滚)",
    r"stop\s*(?:messaging|replying|commenting|spamming)|unsubscribe|leave me alone|go away",
)]
LOOKBACK_DAYS = 30
LIKE_CHECK_DAYS = 3          # likes are looked up for this long after a send
MAX_LIKE_CHECKS = 50         # post comment pages fetched per outcomes run, at most


@dataclass
class OutcomeSummary:
    comments_seen: int = 0
    replies: int = 0
    likes: int = 0
    follow_backs: int = 0
    optouts: int = 0
    cancelled: int = 0

    def as_counts(self) -> dict[str, int]:
        return dict(self.__dict__)


def is_opt_out(text: str) -> str | None:
    """The phrase that makes this reply an opt-out, or None."""
    for pat in OPT_OUT_PATTERNS:
        m = pat.search(text or "")
        if m:
            return m.group(0)
    return None


def record_opt_out(db: sqlite3.Connection, platform: str, uid: str, evidence: str, evidence_id: str | None,
                   actor: str, origin: str, at: str) -> tuple[bool, int]:
    """Add an opt-out and cancel open items to the user (caller owns the transaction).
    Returns (newly added, items cancelled)."""
    added = store.add_optout(db, platform, uid, origin, evidence, evidence_id, actor, at)
    cancelled = queue_ops.cancel_open_for_user(db, platform, uid, actor, f"opted out: {evidence[:60]}", at)
    return added, len(cancelled)


def _match_item(items: list[store.QueueItem], uid: str, parent: str | None, reply_to: str | None) -> store.QueueItem | None:
    for it in items:
        if it.target_uid != uid:
            continue
        if parent and parent in (it.post_pid, it.remote_id):
            return it
        if reply_to and it.remote_id and reply_to == it.remote_id:
            return it
    return None


def _reply_to(raw: Any) -> str | None:
    if isinstance(raw, dict):
        if raw.get("reply_to_comment_id"):
            return str(raw["reply_to_comment_id"])
        rc = raw.get("reply_comment")
        if isinstance(rc, dict) and rc.get("id") is not None:
            return str(rc.get("idstr") or rc["id"])
    return None


def _handle_comment(db: sqlite3.Connection, summary: OutcomeSummary, items: list[store.QueueItem], platform: str,
                    pid: str, uid: str, text: str, parent: str | None, reply_to: str | None, at: str) -> None:
    summary.comments_seen += 1
    item = _match_item(items, uid, parent, reply_to)
    phrase = is_opt_out(text)
    if phrase is not None and (item is not None or reply_to is not None or parent in {i.remote_id for i in items}):
        added, n = record_opt_out(db, platform, uid, text, pid, queue_ops.OUTCOMES, "reply", at)
        summary.optouts += int(added)
        summary.cancelled += n
        if item is not None:
            store.add_outcome(db, item.id, "optout", pid, uid, text, at)
        return
    if item is not None and store.add_outcome(db, item.id, "reply", pid, uid, text, at):
        summary.replies += 1


def collect_outcomes(db: sqlite3.Connection, settings: Settings, platform: SendPlatform | None = None,
                     now: datetime | None = None) -> OutcomeSummary:
    """Look for responses to sent items: stored comments (from crawling), and,
    through the platform (``platform``, by default the configured send
    source), comments to us, likes on our comments and new followers."""
    now = now or datetime.now(timezone.utc)
    at = to_stored(now)
    summary = OutcomeSummary()
    items = store.sent_items(db, to_stored(now - timedelta(days=LOOKBACK_DAYS)))
    if not items:
        return summary
    # 1. Comments the crawler stored under posts we acted on.
    post_pids = {i.post_pid for i in items if i.post_pid} | {i.remote_id for i in items if i.remote_id}
    with transaction(db):
        for c in store.stored_comments_on(db, sorted(post_pids)):
            raw = json.loads(c["raw"]) if c.get("raw") else None
            _handle_comment(db, summary, items, c["platform"], c["pid"], c["uid"], c["text"], c["parent_pid"],
                            _reply_to(raw), at)
    if platform is None:
        platform = outcome_platform(settings)
    if platform is None:
        return summary
    platform_name = items[0].platform or ""
    # 2. Comments to us (the platform's inbox), incrementally.
    key = f"outcomes.comments_since.{settings.engagement.send_source or 'default'}"
    since = store.meta_get(db, key)
    comments = _call(platform, "comments_to_me", since_id=since)
    if comments:
        with transaction(db):
            newest = since
            for p in comments:
                _handle_comment(db, summary, items, p.platform or platform_name, p.pid, p.uid, p.text, p.parent_pid,
                                _reply_to(p.raw), at)
                if newest is None or _id_after(p.pid, newest):
                    newest = p.pid
            if newest:
                store.meta_set(db, key, newest)
    # 3. Likes on our comments, read from the post's comment list (recent sends only: one request each).
    recent = to_stored(now - timedelta(days=LIKE_CHECK_DAYS))
    checkable = [it for it in items if it.remote_id and it.post_pid and it.kind != "repost" and (it.sent_at or "") >= recent]
    for it in checkable[-MAX_LIKE_CHECKS:]:
        page = _call(platform, "post_comments", it.post_pid)
        for p in getattr(page, "posts", None) or []:
            if p.pid == it.remote_id and (p.likes or 0) > 0:
                with transaction(db):
                    if store.add_outcome(db, it.id, "like", "", None, f"{p.likes} likes", at):
                        summary.likes += 1
    # 4. Follow-backs: targets who appear among our followers since the last look.
    followers = follower_ids(platform)
    if followers is not None:
        fkey = followers_key(settings)
        before = store.meta_get(db, fkey)
        with transaction(db):
            if before is not None:
                known = set(json.loads(before))
                for it in items:
                    if it.target_uid in followers and it.target_uid not in known:
                        if store.add_outcome(db, it.id, "follow_back", "", it.target_uid, None, at):
                            summary.follow_backs += 1
            store.meta_set(db, fkey, json.dumps(sorted(followers)))
    return summary


def _id_after(a: str, b: str) -> bool:
    try:
        return int(a) > int(b)
    except ValueError:
        return a > b


def _call(platform: SendPlatform, name: str, *args: Any, **kwargs: Any) -> Any:
    """Optional adapter capabilities: a platform without one is skipped, not an error."""
    from bot.find.errors import SourceError, UnsupportedError

    fn = getattr(platform, name, None)
    if fn is None:
        return None
    try:
        return fn(*args, **kwargs)
    except UnsupportedError:
        return None
    except SourceError as exc:
        log.warning("outcomes: %s failed: %s", name, exc)
        return None


def outcome_platform(settings: Settings) -> SendPlatform | None:
    """The adapter outcomes read through: the configured send source, if any."""
    if not settings.engagement.send_source or settings.engagement.send_mode in ("dry-run", "manual"):
        return None
    try:
        return make_transport(settings, settings.engagement.send_mode)
    except HuaxiangError as exc:
        log.warning("outcomes: no platform access (%s); using stored comments only", exc)
        return None
