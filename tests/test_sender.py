"""Sending: only approved items, each exactly once, with every rule re-checked at send time."""

from __future__ import annotations

import csv
import json
import os
import time
from datetime import timedelta

import pytest

from conftest import approver
from config.times import to_stored
from bot.engage import outcomes, queue_ops
from bot.engage.planner import run_plan
from bot.engage.sender import LEASE_KEY, run_send
from storage import engagement as store
from storage.db import transaction
from test_queue_world import NOW, TEMPLATES, FakePlatform, SimulatedCrash, build_world, engagement_settings

LATER = NOW + timedelta(hours=1)


def planned(db, users=3, **settings_kw):
    """Planned reply items (reposts cannot be looked up on the platform, so these tests use replies)."""
    build_world(db, users=users, posts_per_user=1)
    settings_kw.setdefault("templates", [TEMPLATES[0]])
    s = engagement_settings(**settings_kw)
    run_plan(db, s, NOW)
    return s, [r["id"] for r in store.list_items(db) if r["kind"] != "follow"]


def status(db, item_id):
    return store.get_item(db, item_id).status


def test_nothing_is_sent_without_approval(db):
    s, ids = planned(db)
    fp = FakePlatform()
    summary = run_send(db, s, LATER, platform=fp, dry_run=False)
    assert fp.calls == 0 and summary.sent == 0
    assert {status(db, i) for i in ids} == {"pending"}


def test_approved_items_are_sent_once_and_audited(db):
    s, ids = planned(db)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    summary = run_send(db, s, LATER, platform=fp, dry_run=False)
    assert summary.sent == 3 and fp.sends_per_key() == {f"huaxiang-{i}": 1 for i in ids}
    for i in ids:
        item = store.get_item(db, i)
        assert item.status == "sent" and item.remote_id and item.attempts == 1
        actions = [a["action"] for a in store.audit_for(db, i)]
        assert actions == ["plan", "approve", "send", "sent"]
    assert run_send(db, s, LATER + timedelta(days=1), platform=fp, dry_run=False).sent == 0
    assert fp.calls == 3


def test_dry_run_changes_nothing(db):
    s, ids = planned(db)
    queue_ops.approve(db, ids, approver(db))
    before = store.queue_counts(db)
    summary = run_send(db, s, LATER)            # send_mode defaults to dry-run
    assert summary.mode == "dry-run" and summary.would_send == 3 and summary.sent == 0
    assert store.queue_counts(db) == before
    assert db.execute("SELECT COUNT(*) FROM send_log").fetchone()[0] == 0


def test_timeout_after_the_platform_applied_it_is_reconciled_not_resent(db):
    s, ids = planned(db, users=1)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    fp.mode = "timeout_applied"
    first = run_send(db, s, LATER, platform=fp, dry_run=False)
    assert first.unknown == 1 and status(db, ids[0]) == "unknown"
    second = run_send(db, s, LATER + timedelta(minutes=10), platform=fp, dry_run=False)
    assert second.reconciled_sent == 1 and second.sent == 0
    item = store.get_item(db, ids[0])
    assert item.status == "sent" and item.remote_id == fp.comments[0]["id"]
    assert fp.calls == 1 and fp.sends_per_key() == {f"huaxiang-{ids[0]}": 1}


def test_timeout_before_the_platform_got_it_is_retried_after_reconciling(db):
    s, ids = planned(db, users=1)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    fp.mode = "timeout_lost"
    run_send(db, s, LATER, platform=fp, dry_run=False)
    assert status(db, ids[0]) == "unknown" and fp.comments == []
    second = run_send(db, s, LATER + timedelta(minutes=10), platform=fp, dry_run=False)
    assert second.reconciled_absent == 1 and second.sent == 1
    assert fp.sends_per_key() == {f"huaxiang-{ids[0]}": 1}
    actions = [a["action"] for a in store.audit_for(db, ids[0])]
    assert actions == ["plan", "approve", "send", "unknown", "reconcile", "send", "sent"]


def test_crash_mid_request_leaves_sending_then_unknown_then_reconciled(db):
    s, ids = planned(db, users=1)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    fp.mode = "crash"
    with pytest.raises(SimulatedCrash):
        run_send(db, s, LATER, platform=fp, dry_run=False)
    assert status(db, ids[0]) == "sending"             # committed before the request
    summary = run_send(db, s, LATER + timedelta(minutes=5), platform=fp, dry_run=False)
    assert summary.recovered == 1 and summary.reconciled_sent == 1 and summary.sent == 0
    assert status(db, ids[0]) == "sent" and fp.calls == 1


def test_unreconcilable_unknown_waits_for_a_person(db):
    s, ids = planned(db, users=1)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    fp.mode = "timeout_applied"
    run_send(db, s, LATER, platform=fp, dry_run=False)

    class NoLookup(FakePlatform):
        find_own_reply = None

    blind = NoLookup()
    run_send(db, s, LATER + timedelta(hours=1), platform=blind, dry_run=False)
    assert status(db, ids[0]) == "unknown" and blind.calls == 0
    queue_ops.resolve(db, ids[0], True, "alice", remote_id="1000")
    assert status(db, ids[0]) == "sent"


def test_refused_send_fails_and_is_not_retried(db):
    s, ids = planned(db, users=1)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    fp.mode = "refuse"
    assert run_send(db, s, LATER, platform=fp, dry_run=False).failed == 1
    run_send(db, s, LATER + timedelta(hours=1), platform=fp, dry_run=False)
    assert status(db, ids[0]) == "failed" and fp.calls == 1
    assert "repeated content" in store.get_item(db, ids[0]).last_error


def test_opt_out_and_blocklist_after_approval_cancel_at_send_time(db):
    s, ids = planned(db, users=2)
    queue_ops.approve(db, ids, approver(db))
    targets = {store.get_item(db, i).target_uid: i for i in ids}
    with transaction(db):     # written straight to the tables, as another process might
        store.add_optout(db, "weibo", "u0", "reply", "别再@我", "c1", "huaxiang/outcomes", to_stored(NOW))
        store.add_block(db, "weibo", "u1", "competitor", "alice", to_stored(NOW))
    fp = FakePlatform()
    summary = run_send(db, s, LATER, platform=fp, dry_run=False)
    assert fp.calls == 0 and summary.cancelled == 2
    for uid, rule in (("u0", "opt_out"), ("u1", "blocklist")):
        item = store.get_item(db, targets[uid])
        assert item.status == "cancelled" and item.last_error.startswith(rule)


def test_caps_are_rechecked_at_send_time(db):
    s, ids = planned(db, users=4)
    s.engagement.daily_cap = 2          # the cap tightened after planning and approval
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    summary = run_send(db, s, LATER, platform=fp, dry_run=False)
    assert summary.sent == 2 and summary.waits["daily_cap"] >= 1 and "daily_cap" in summary.stopped_reason
    # the next local day (Asia/Shanghai) the rest go out
    summary = run_send(db, s, NOW + timedelta(hours=13), platform=fp, dry_run=False)
    assert summary.sent == 2 and fp.calls == 4


def test_spacing_and_quiet_hours_at_send_time(db):
    s, ids = planned(db, users=2, min_spacing_s=600)
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    assert run_send(db, s, LATER, platform=fp, dry_run=False).sent == 1
    again = run_send(db, s, LATER + timedelta(minutes=5), platform=fp, dry_run=False)
    assert again.sent == 0 and again.waits["spacing"] == 1
    assert run_send(db, s, LATER + timedelta(minutes=11), platform=fp, dry_run=False).sent == 1


def test_quiet_hours_hold_sends(db):
    s, ids = planned(db, users=1, quiet_hours="11:00-14:00")
    queue_ops.approve(db, ids, approver(db))
    fp = FakePlatform()
    summary = run_send(db, s, LATER.replace(hour=4, minute=30), platform=fp, dry_run=False)   # 12:30 local
    assert fp.calls == 0 and (summary.waits["quiet_hours"] == 1 or summary.due == 0)


def test_follow_suggestions_are_never_sent(db):
    build_world(db, users=3, posts_per_user=1)
    s = engagement_settings(follow_suggestions=True)
    run_plan(db, s, NOW)
    follows = [r["id"] for r in store.list_items(db, kind="follow")]
    assert follows
    # A follow is a to-do, never approved for the sender (it would sit "approved" for ever).
    refused = queue_ops.approve(db, follows, approver(db))
    assert not any(c.ok for c in refused) and "done by hand" in refused[0].message
    queue_ops.settle_follow(db, follows[:1], "alice", done=True)
    fp = FakePlatform()
    run_send(db, s, LATER, platform=fp, dry_run=False)
    assert fp.calls == 0 and status(db, follows[0]) == "done"
    assert {status(db, i) for i in follows[1:]} <= {"pending", "expired"}


def _hold_lease(db, pid: int, token: str, expires_in_s: float) -> None:
    """Another sender's lease. The lease is kept in wall-clock seconds (it must
    mean the same to every process), so its expiry is set relative to now; the
    margins (a minute or more) leave nothing to timing."""
    with transaction(db):
        store.meta_set(db, LEASE_KEY, json.dumps({"host": os.uname().nodename, "pid": pid, "token": token,
                                                 "expires": time.time() + expires_in_s}))


def test_a_second_sender_waits_for_the_first(db):
    s, ids = planned(db, users=1)
    queue_ops.approve(db, ids, approver(db))
    _hold_lease(db, os.getpid(), "other", 60)
    fp = FakePlatform()
    assert run_send(db, s, LATER, platform=fp, dry_run=False).busy == 1 and fp.calls == 0
    # overdue, but its process is alive on this machine (a long sleep): still not taken over
    _hold_lease(db, os.getpid(), "other", -120)
    assert run_send(db, s, LATER, platform=fp, dry_run=False).busy == 1
    # a lease held by a dead process is taken over
    _hold_lease(db, 2 ** 22 + 7, "dead", 60)
    assert run_send(db, s, LATER, platform=fp, dry_run=False).sent == 1


def test_manual_worklist_hands_out_with_spaced_times_and_person_confirms(db, tmp_path):
    s, ids = planned(db, users=3, send_mode="manual", min_spacing_s=900)
    queue_ops.approve(db, ids, approver(db))
    summary = run_send(db, s, LATER, worklist_dir=str(tmp_path / "wl"))
    assert summary.handed_out == 3 and summary.worklist.endswith(".html")
    rows = list(csv.DictReader((tmp_path / "wl").glob("*.csv").__next__().open(encoding="utf-8-sig")))
    assert [int(r["item"]) for r in rows] and all(r["text"] and r["post_link"].startswith("https://m.weibo.cn/detail/") for r in rows)
    times = sorted(r["post_at"] for r in rows)
    assert len(set(times)) == 3                      # spaced 15 minutes apart
    page = open(summary.worklist, encoding="utf-8").read()
    assert "queue resolve" in page
    assert {status(db, i) for i in ids} == {"sending"}
    # a new run neither hands them out again nor marks them unknown
    assert run_send(db, s, LATER + timedelta(hours=2), worklist_dir=str(tmp_path / "wl")).handed_out == 0
    assert {status(db, i) for i in ids} == {"sending"}
    queue_ops.resolve(db, ids[0], True, "alice")
    queue_ops.resolve(db, ids[1], False, "alice", note="post was deleted")
    assert status(db, ids[0]) == "sent" and status(db, ids[1]) == "failed"


def test_outcome_optout_from_reply_cancels_and_keeps_evidence(db):
    s, ids = planned(db, users=2)
    queue_ops.approve(db, ids[:1], approver(db))
    fp = FakePlatform()
    run_send(db, s, LATER, platform=fp, dry_run=False)
    sent = store.get_item(db, ids[0])
    with transaction(db):
        outcomes.record_opt_out(db, "weibo", sent.target_uid, "别再@我了", "c77", "huaxiang/outcomes", "reply",
                                to_stored(LATER))
    assert store.is_opted_out(db, "weibo", sent.target_uid)


def _cli_world(tmp_path, extra: str = ""):
    from storage.db import connect

    db = connect(tmp_path / "s.db")
    build_world(db, users=2, posts_per_user=1)
    db.close()
    (tmp_path / "huaxiang.toml").write_text(
        '[engagement]\nquiet_hours = ""\nmin_spacing_s = 0\nspacing_jitter_s = 0\nmax_post_age_days = 3650\n'
        f'follow_suggestions = false\n{extra}'
        '[[engagement.templates]]\nname = "tips"\nvariants = ["{nickname} 说得好，{topic}加油！", "同感，{topic}要坚持"]\n',
        encoding="utf-8")


def test_cli_send_is_a_dry_run_until_configured(cli, tmp_path):
    _cli_world(tmp_path)
    cli("--db", "s.db", "plan")
    code, out, _ = cli("--db", "s.db", "queue", "list", "--json")
    ids = [str(json.loads(line)["id"]) for line in out.splitlines()]
    approver(tmp_path / "s.db")
    assert cli("--db", "s.db", "queue", "approve", *ids, "--by", "alice")[0] == 0
    code, out, err = cli("--db", "s.db", "send")
    assert code == 0, err
    assert "dry run (nothing sent" in out and "2 would be sent now" in out and out.count(": would send") == 2
    code, out, _ = cli("--db", "s.db", "queue", "list", "--status", "approved", "--json")
    assert len(out.splitlines()) == 2


def test_cli_manual_worklist_and_resolve(cli, tmp_path):
    _cli_world(tmp_path)
    cli("--db", "s.db", "plan")
    code, out, _ = cli("--db", "s.db", "queue", "list", "--json")
    ids = [str(json.loads(line)["id"]) for line in out.splitlines()]
    approver(tmp_path / "s.db")
    assert cli("--db", "s.db", "queue", "approve", *ids, "--by", "alice")[0] == 0
    code, out, err = cli("--db", "s.db", "send", "--mode", "manual", "--worklist-dir", "wl")
    assert code == 0, err
    assert "handed_out 2" in out and "worklist: " in out
    assert len(list((tmp_path / "wl").glob("worklist-*.csv"))) == 1
    code, out, err = cli("--db", "s.db", "queue", "resolve", ids[0], "--sent", "--by", "alice", "--remote-id", "C1")
    assert code == 0 and "is now sent" in out
    code, out, err = cli("--db", "s.db", "queue", "resolve", ids[0], "--sent", "--by", "alice")
    assert code == 1 and "only sending" in err


def test_cli_review_prints_the_url_with_the_token(cli, tmp_path):
    code, out, err = cli("--db", "r.db", "review", "--print-only", "--port", "9999")
    assert code == 1 and "no huaxiang database here" in err      # review never creates one (a typo in --db)
    from storage.db import connect

    connect(tmp_path / "r.db").close()
    code, out, err = cli("--db", "r.db", "review", "--print-only", "--port", "9999")
    assert code == 0, err
    token = (tmp_path / "r.db.review-token").read_text().strip()
    assert f"http://127.0.0.1:9999/?token={token}" in out


def test_real_clock_sender_sleeps_through_spacing_and_stops_when_asked(db):
    import threading
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).replace(microsecond=0)
    build_world(db, users=3, posts_per_user=1, now=now)
    s = engagement_settings(templates=[TEMPLATES[0]], min_spacing_s=1)
    run_plan(db, s, now - timedelta(seconds=10))
    ids = [r["id"] for r in store.list_items(db)]
    queue_ops.approve(db, ids[:2], approver(db))
    fp = FakePlatform()
    summary = run_send(db, s, platform=fp, dry_run=False)          # real clock: waits ~1 s between the two
    assert summary.sent == 2 and fp.calls == 2
    # with a long gap the run sleeps until told to stop
    s.engagement.min_spacing_s = 600
    queue_ops.approve(db, ids[2:], approver(db))
    stop = threading.Event()
    result = {}
    worker = threading.Thread(target=lambda: result.update(summary=run_send(db, s, stop=stop, platform=fp, dry_run=False)))
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive()                                        # sleeping through the spacing
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive() and result["summary"].sent == 0 and fp.calls == 2
    assert status(db, ids[2]) == "approved"
