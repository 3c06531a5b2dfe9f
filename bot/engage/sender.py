"""``huaxiang send``: post approved actions, each exactly once.

Exactly once, step by step:
1. One sender at a time (a lease in ``meta``; a dead holder's lease is taken over).
2. Items a crashed sender left ``sending`` become ``unknown``: the request may have gone out.
3. ``unknown`` items are reconciled first: if our comment is on the post the
   item is ``sent``; if it is not, it goes back to ``approved`` (until
   ``max_send_attempts``); if the platform cannot tell, it stays ``unknown``
   for a person (``queue resolve``). Never resent blindly.
4. For each due approved item, inside one transaction: re-check every rule
   (``bot.engage.policy.send_violations``), then mark it ``sending`` and log the
   attempt. The transaction commits *before* the request.
5. The request; its answer makes the item ``sent`` or ``failed``; a timeout,
   5xx or anything unexplained makes it ``unknown``.

Clocks: with ``now`` given (tests) time stands still and waits end the run;
with the real clock the sender sleeps through spacing (interruptible by
``stop``); in manual mode it advances a virtual clock, so each worklist row
gets a suggested time that respects spacing, quiet hours and caps.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

from config import Settings
from config.times import to_stored
from storage import engagement as store
from storage.db import transaction
from storage.liveness import pid_alive

from bot.engage import policy, queue_ops
from bot.engage.followers import ensure_follower_baseline
from bot.errors import HuaxiangError
from bot.engage.worklist import Worklist

if TYPE_CHECKING:
    from bot.find.sources.base import SendResult

log = logging.getLogger(__name__)

LEASE_KEY = "sender.lease"
LEASE_TTL_S = 900
STALE_LEASE_S = 6 * 3600    # a same-host lease this overdue is stale even if its pid was reused
MAX_SLEEP_S = 1800          # a real-clock run waits at most this long for spacing before ending
MANUAL_HORIZON = timedelta(hours=24)
RATE_LIMIT_HINTS = ("10022", "10023", "10024", "20016", "out of rate limit", "too fast", "频繁")


@dataclass
class SendSummary:
    mode: str = "dry-run"
    due: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    handed_out: int = 0
    reconciled_sent: int = 0
    reconciled_absent: int = 0
    recovered: int = 0                  # 'sending' items of a crashed run, now unknown
    cancelled: int = 0
    waiting: int = 0
    skipped: int = 0
    would_send: int = 0
    busy: int = 0
    waits: Counter = field(default_factory=Counter)
    details: list[dict[str, Any]] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)   # (item id, why) approved but refused at send time
    worklist: str | None = None
    stopped_reason: str | None = None

    def as_counts(self) -> dict[str, int]:
        keys = ("due", "sent", "failed", "unknown", "handed_out", "reconciled_sent", "reconciled_absent", "recovered",
                "cancelled", "waiting", "skipped", "would_send", "busy")
        out = {k: getattr(self, k) for k in keys}
        out.update({f"wait_{k}": v for k, v in sorted(self.waits.items())})
        return out


# -- platforms --------------------------------------------------------------------

class SendPlatform(Protocol):
    """What the sender needs of a platform adapter (every ``bot.find.sources.base.Source``
    is one). An adapter may also offer ``find_own_reply`` (to reconcile unknown
    outcomes; without it they wait for a person) and ``follower_ids`` (the
    follow-back baseline)."""

    def reply(self, post_pid: str, text: str, idempotency_key: str) -> SendResult: ...

    def repost(self, post_pid: str, text: str, idempotency_key: str) -> SendResult: ...


def make_transport(settings: Settings, mode: str) -> SendPlatform:
    """The adapter for ``[engagement].send_source``, checked against the mode."""
    from bot.find.sources import open_source, send_platforms, source_class

    e = settings.engagement
    if not e.send_source:
        raise HuaxiangError(f"send mode {mode!r} needs [engagement].send_source naming a [[sources]] entry")
    try:
        src = settings.source(e.send_source)
    except KeyError:
        raise HuaxiangError(f"[engagement].send_source {e.send_source!r} is not a [[sources]] name") from None
    expected = send_platforms(mode)
    if expected and src.platform not in expected:
        raise HuaxiangError(f"send mode {mode!r} needs a {expected[0]} source; {src.name!r} is {src.platform!r}")
    needs = source_class(src.platform).send_token
    if expected and needs and not (src.token_env or src.token_file):
        raise HuaxiangError(f"send mode {mode!r} needs {needs}: set token_env or token_file on source {src.name!r}")
    return open_source(settings, src)


# -- the lease --------------------------------------------------------------------

def _acquire(db: sqlite3.Connection, holder: dict[str, Any]) -> bool:
    with transaction(db):
        raw = store.meta_get(db, LEASE_KEY)
        if raw:
            try:
                cur = json.loads(raw)
            except ValueError:
                cur = {}
            if cur.get("token") != holder["token"]:
                overdue = time.time() - float(cur.get("expires", 0))
                if cur.get("host") == holder["host"]:
                    # Same machine: the holder is alive or not, whatever the clock says
                    # (a sleeping sender must never be mistaken for a dead one).
                    busy = pid_alive(int(cur.get("pid", 0))) and overdue < STALE_LEASE_S
                else:
                    busy = overdue < 0
                if busy:
                    return False
        store.meta_set(db, LEASE_KEY, json.dumps({**holder, "expires": time.time() + LEASE_TTL_S}))
    return True


def _refresh(db: sqlite3.Connection, holder: dict[str, Any]) -> None:
    with transaction(db):
        store.meta_set(db, LEASE_KEY, json.dumps({**holder, "expires": time.time() + LEASE_TTL_S}))


def _release(db: sqlite3.Connection, holder: dict[str, Any]) -> None:
    with transaction(db):
        raw = store.meta_get(db, LEASE_KEY)
        if raw and json.loads(raw).get("token") == holder["token"]:
            store.meta_delete(db, LEASE_KEY)


# -- helpers ------------------------------------------------------------------------

def _action(db: sqlite3.Connection, item: store.QueueItem, when: datetime) -> policy.Action:
    post_text, post_created_at = store.post_text_and_time(db, item.post_id)
    return policy.Action(kind=item.kind, platform=item.platform or "", target_uid=item.target_uid or "",
                         post_id=item.post_id, post_text=post_text, text=item.text or "", when=when,
                         source=item.source or "", item_id=item.id, status=item.status, approved_by=item.approved_by,
                         post_created_at=post_created_at, expires_at=item.expires_at,
                         jitter_key=item.dedupe_key or str(item.id))


def idempotency_key(item: store.QueueItem) -> str:
    """Stable per item, so a platform (or the sandbox) can see a repeat."""
    return f"huaxiang-{item.id}"


def _recover_crashed(db: sqlite3.Connection, summary: SendSummary, at: str) -> None:
    """Items left 'sending' by a run that died mid-request: their outcome is unknown."""
    with transaction(db):
        for item in store.items_with_status(db, ("sending",)):
            last = store.last_send_log(db, item.id)
            if last and last["status"] == "handed_out":
                continue  # waiting for a person to confirm the manual worklist
            if last and last["status"] == "started":
                store.finish_send_log(db, last["id"], "unknown", at, error="sender stopped mid-request")
            queue_ops.transition(db, item.id, "unknown", queue_ops.SENDER, "recover", at,
                                 updates={"last_error": "sender stopped mid-request; outcome unknown"})
            summary.recovered += 1


def _reconcile(db: sqlite3.Connection, settings: Settings, platform: SendPlatform, summary: SendSummary,
               at: str) -> None:
    """Look for our comment before anything is ever tried again."""
    from bot.find.errors import SourceError, UnsupportedError

    for item in store.items_with_status(db, ("unknown",)):
        finder = getattr(platform, "find_own_reply", None)
        if finder is None or item.kind == "repost":
            continue  # cannot tell: a person resolves it
        try:
            found = finder(item.post_pid or "", item.text or "")
        except UnsupportedError:
            continue
        except SourceError as exc:
            log.warning("reconciling item %s failed (%s); it stays unknown", item.id, exc)
            continue
        with transaction(db):
            current = store.get_item(db, item.id)
            if current is None or current.status != "unknown":
                continue
            if found:
                queue_ops.transition(db, item.id, "sent", queue_ops.SENDER, "reconcile", at,
                                     updates={"remote_id": str(found), "last_error": None},
                                     detail={"found": str(found)})
                summary.reconciled_sent += 1
            elif current.attempts >= settings.engagement.max_send_attempts:
                queue_ops.transition(db, item.id, "failed", queue_ops.SENDER, "reconcile", at,
                                     updates={"last_error": f"not on the platform after {current.attempts} attempt(s)"})
                summary.reconciled_absent += 1
            else:
                queue_ops.transition(db, item.id, "approved", queue_ops.SENDER, "reconcile", at,
                                     updates={"last_error": "not on the platform; will try again"},
                                     detail={"found": None})
                summary.reconciled_absent += 1


def _request(platform: SendPlatform, item: store.QueueItem) -> tuple[str, str | None, str | None]:
    """Returns ('sent', remote_id, None) | ('failed', None, error) | ('unknown', None, error) | ('blocked', ...)."""
    from bot.find.errors import BlockedError, OutcomeUnknownError, SourceError, UnsupportedError

    key = idempotency_key(item)
    try:
        if item.kind == "repost":
            res = platform.repost(item.post_pid, item.text, key)
        else:
            res = platform.reply(item.post_pid, item.text, key)
    except OutcomeUnknownError as exc:
        return "unknown", None, str(exc)
    except BlockedError as exc:
        return "blocked", None, f"refused by the platform ({exc.kind}): {exc}"
    except UnsupportedError as exc:
        return "failed", None, str(exc)
    except SourceError as exc:
        if getattr(exc, "kind", "") == "no_token":
            return "blocked", None, str(exc)
        return "unknown", None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # anything unexplained: it may have gone out
        log.exception("send of item %s raised", item.id)
        return "unknown", None, f"{type(exc).__name__}: {exc}"
    if res.ok:
        return "sent", res.remote_id, None
    err = res.error or "refused"
    if any(h in err for h in RATE_LIMIT_HINTS):
        return "rate_limited", None, err
    return "failed", None, err


# -- the run ----------------------------------------------------------------------------

@dataclass
class _Run:
    """One send run: where actions go (a live ``platform``, or a person's
    ``worklist`` in manual mode: exactly one of them), its lease and its clock."""

    db: sqlite3.Connection
    settings: Settings
    summary: SendSummary
    stop: threading.Event
    holder: dict[str, Any]
    started: datetime
    frozen: bool                         # ``now`` was given: time stands still, waits end the run
    platform: SendPlatform | None = None
    worklist: Worklist | None = None
    virtual: datetime | None = None      # manual mode's clock: advanced to each rule's time
    attempted: set[int] = field(default_factory=set)

    def now(self) -> datetime:
        if self.worklist is not None or self.frozen:
            return self.virtual or self.started
        return datetime.now(timezone.utc).replace(microsecond=0)


def run_send(db: sqlite3.Connection, settings: Settings, now: datetime | None = None,
             stop: threading.Event | None = None, platform: SendPlatform | None = None, dry_run: bool | None = None,
             max_items: int | None = None, worklist_dir: str | None = None) -> SendSummary:
    """Send due approved items (see the module docstring for the guarantees).

    ``platform`` is the adapter to send through; by default the one
    ``[engagement].send_source`` names, or in manual mode a worklist written to
    ``worklist_dir``. Without a platform, send mode ``dry-run`` changes nothing."""
    mode = settings.engagement.send_mode
    if dry_run is None:
        dry_run = mode == "dry-run" and platform is None
    clock_now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    if dry_run:
        return _dry_run(db, settings, clock_now)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "token": os.urandom(8).hex()}
    r = _Run(db, settings, SendSummary(mode=mode if mode != "dry-run" else "direct"), stop or threading.Event(),
             holder, clock_now, frozen=now is not None)
    if mode == "manual" and platform is None:
        r.worklist = Worklist(settings, worklist_dir, clock_now)
    else:
        r.platform = platform or make_transport(settings, mode)
    if not _acquire(db, holder):
        r.summary.busy = 1
        r.summary.stopped_reason = "another sender is running"
        return r.summary
    try:
        _before_sending(r)
        _send_due(r, max_items)
    finally:
        _release(db, holder)
        if r.worklist is not None:
            path = r.worklist.close()
            r.summary.worklist = str(path) if path else None
    return r.summary


def _before_sending(r: _Run) -> None:
    """Expire what is past its time, settle attempts a crash left open, and
    (for a live platform) reconcile unknown outcomes and take the follower
    baseline before anything new goes out."""
    queue_ops.expire_due(r.db, r.started)
    at = to_stored(r.started)
    _recover_crashed(r.db, r.summary, at)
    if r.platform is not None:
        _reconcile(r.db, r.settings, r.platform, r.summary, at)
        if store.due_items(r.db, at):
            ensure_follower_baseline(r.db, r.settings, r.platform)


def _send_due(r: _Run, max_items: int | None) -> None:
    """Pass over the due items until none is left, ``max_items`` went out, the
    platform refused us, or everything waits for a rule longer than this run may."""
    progressed_count = 0
    while not r.stop.is_set() and (max_items is None or progressed_count < max_items):
        t = r.now()
        due = [i for i in store.due_items(r.db, to_stored(t)) if i.id not in r.attempted]
        if not due:
            return
        r.summary.due = max(r.summary.due, len(due))
        progressed, wait_until, wait_rule = _one_pass(r, due, t)
        if progressed:
            progressed_count += 1
            _refresh(r.db, r.holder)
        if r.summary.stopped_reason or r.stop.is_set():
            return
        if progressed:
            continue
        if wait_until is None:
            return
        if not _wait(r, t, wait_until):
            r.summary.waiting = len([i for i in due if i.id not in r.attempted])
            r.summary.stopped_reason = f"waiting: {wait_rule} until {to_stored(wait_until)}"
            return


def _wait(r: _Run, t: datetime, until: datetime) -> bool:
    """Wait for a rule's time if this run may: a worklist's virtual clock moves
    ahead (up to ``MANUAL_HORIZON``), the real clock sleeps (up to
    ``MAX_SLEEP_S``), a frozen clock never waits. False: the run ends here."""
    if r.worklist is not None:
        if until - r.started > MANUAL_HORIZON:
            return False
        r.virtual = until
        return True
    if r.frozen or (until - t).total_seconds() > MAX_SLEEP_S:
        return False
    _sleep_until(r.db, r.holder, until, r.stop)
    return True


def _one_pass(r: _Run, due: list[store.QueueItem], t: datetime) -> tuple[bool, datetime | None, str | None]:
    """Try the due items in order until one is sent (or handed out, or ends
    unknown/failed): then the caller re-reads the queue, since caps and
    spacing changed. Returns (progressed, earliest wait, its rule)."""
    wait_until, wait_rule = None, None
    for item in due:
        if r.stop.is_set():
            break
        verdict, detail = _send_one(r, item, t)
        if verdict == "wait":
            r.summary.waits[detail.rule] += 1
            if detail.retry_at and (wait_until is None or detail.retry_at < wait_until):
                wait_until, wait_rule = detail.retry_at, detail.rule
            continue
        r.attempted.add(item.id)
        if verdict == "blocked":
            r.summary.stopped_reason = detail
            break
        if verdict in ("sent", "unknown", "failed", "handed_out"):
            return True, wait_until, wait_rule
    return False, wait_until, wait_rule


def _sleep_until(db: sqlite3.Connection, holder: dict[str, Any], wait_until: datetime, stop: threading.Event) -> None:
    """Sleep in short steps, renewing the lease, so no one takes over a live sender."""
    while not stop.is_set():
        left = (wait_until - datetime.now(timezone.utc)).total_seconds()
        if left <= 0:
            break
        stop.wait(min(left, 60.0))
        _refresh(db, holder)


def _hold(db: sqlite3.Connection, item: store.QueueItem, why: policy.Violation, at: str, summary: SendSummary) -> None:
    """An approved item a send-time rule refuses (e.g. its approver was disabled since) stays
    approved but is not sent; the reason goes to the item, the audit log (once per reason,
    so a sender polling every minute does not flood it) and the send summary."""
    summary.skipped += 1
    summary.held.append((item.id, str(why)))
    if item.last_error == str(why):
        return
    log.warning("item %s held: %s", item.id, why)
    queue_ops.transition(db, item.id, "approved", queue_ops.SENDER, "hold", at, updates={"last_error": str(why)},
                         detail={"rule": why.rule, "reason": why.message})


def _send_one(r: _Run, item: store.QueueItem, t: datetime) -> tuple[str, Any]:
    """Re-check every rule and mark the item ``sending`` in one transaction,
    committed before the request; then hand it out or send it. Returns the
    verdict and, for a refusal or a wait, the violation (or the reason)."""
    db, summary, at = r.db, r.summary, to_stored(t)
    with transaction(db):
        current = store.get_item(db, item.id)
        if current is None or current.status != "approved":
            summary.skipped += 1
            return "skipped", None
        decisive = policy.first_blocking(policy.send_violations(db, r.settings, _action(db, current, t)))
        if decisive is not None and decisive.action == "skip":
            _hold(db, current, decisive, at, summary)
            return "skipped", decisive
        if decisive is not None and decisive.action == "cancel":
            queue_ops.transition(db, current.id, "cancelled", queue_ops.SENDER, "cancel", at,
                                 updates={"last_error": str(decisive)}, detail={"rule": decisive.rule,
                                                                               "reason": decisive.message})
            summary.cancelled += 1
            return "cancelled", decisive
        if decisive is not None:
            return "wait", decisive
        attempt = current.attempts + 1
        sending = queue_ops.transition(db, current.id, "sending", queue_ops.SENDER, "send", at,
                                       updates={"attempts": attempt, "sent_at": at, "send_mode": summary.mode,
                                                "last_error": None},
                                       detail={"attempt": attempt, "mode": summary.mode})
        log_id = store.start_send_log(db, current.id, attempt, summary.mode, idempotency_key(current), at,
                                      current.text or "")
    # Committed: from here a crash leaves the item 'sending' -> 'unknown', never resent blindly.
    if r.worklist is not None:
        return _hand_out(r, r.worklist, sending, log_id, t)
    return _deliver(r, r.platform, sending, log_id)


def _hand_out(r: _Run, worklist: Worklist, sending: store.QueueItem, log_id: int, t: datetime) -> tuple[str, None]:
    """Manual mode: the item goes on the worklist and stays ``sending`` until a person confirms it."""
    at = to_stored(t)
    worklist.add(store.item_detail(r.db, sending.id), t)
    with transaction(r.db):
        store.finish_send_log(r.db, log_id, "handed_out", at)
        store.append_audit(r.db, at, queue_ops.SENDER, "hand_out", sending.id, "sending", "sending",
                           sending.text, sending.text, {"worklist": str(worklist.csv_path)})
    r.summary.handed_out += 1
    return "handed_out", None


def _deliver(r: _Run, platform: SendPlatform, sending: store.QueueItem, log_id: int) -> tuple[str, str | None]:
    """The request, and the item's state from its answer: sent, unknown or failed."""
    db, summary = r.db, r.summary
    outcome, remote_id, error = _request(platform, sending)
    done = to_stored(r.now())
    with transaction(db):
        if outcome == "sent":
            store.finish_send_log(db, log_id, "sent", done, remote_id=remote_id)
            queue_ops.transition(db, sending.id, "sent", queue_ops.SENDER, "sent", done,
                                 updates={"remote_id": remote_id}, detail={"remote_id": remote_id})
            summary.sent += 1
            return "sent", None
        if outcome == "unknown":
            store.finish_send_log(db, log_id, "unknown", done, error=error)
            queue_ops.transition(db, sending.id, "unknown", queue_ops.SENDER, "unknown", done,
                                 updates={"last_error": error}, detail={"error": error})
            summary.unknown += 1
            return "unknown", None
        store.finish_send_log(db, log_id, "failed", done, error=error)
        queue_ops.transition(db, sending.id, "failed", queue_ops.SENDER, "failed", done,
                             updates={"last_error": error}, detail={"error": error})
        summary.failed += 1
    if outcome in ("blocked", "rate_limited"):
        return "blocked", f"{outcome}: {error}"
    return "failed", None


def _dry_run(db: sqlite3.Connection, settings: Settings, t: datetime) -> SendSummary:
    """What would be sent now, changing nothing."""
    summary = SendSummary(mode="dry-run")
    due = store.due_items(db, to_stored(t))
    summary.due = len(due)
    for item in due:
        violations = policy.send_violations(db, settings, _action(db, item, t))
        decisive = policy.first_blocking(violations)
        if decisive is None:
            summary.would_send += 1
        elif decisive.action == "wait":
            summary.waits[decisive.rule] += 1
        summary.details.append({"id": item.id, "kind": item.kind, "target": item.target_uid, "text": item.text,
                                "verdict": "would send" if decisive is None else f"{decisive.action}: {decisive}"})
    due_ids = {d.id for d in due}
    later = [i for i in store.items_with_status(db, ("approved",), order="scheduled")
             if i.id not in due_ids and i.kind != "follow"]
    summary.waiting = len(later)
    if later:
        summary.stopped_reason = f"{len(later)} approved item(s) not due yet; the next at {later[0].scheduled_at}"
    return summary
