"""End to end against the sandbox (Weibo Open API v2 shapes over loopback HTTP):
plan, approve, send once, survive a timeout, and collect outcomes."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import approver
from bot.engage import outcomes, queue_ops
from bot.engage.followers import ensure_follower_baseline
from bot.engage.planner import run_plan
from bot.find.sandbox import FaultConfig, start_sandbox
from bot.engage.sender import run_send
from bot.find.sources import open_source
from config import parse_settings
from storage import engagement as store
from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post, User
from test_queue_world import TEMPLATES


def load_sandbox_posts(db, sb, n_users: int) -> None:
    """Store one recent post for each of ``n_users`` sandbox users, all in one audience."""
    w = sb.world
    chosen, seen = [], set()
    for mid in w.all_desc:
        p = w.posts[mid]
        if p.uid in seen or p.uid not in w.users or p.repost_of or p.group:
            continue
        seen.add(p.uid)
        chosen.append(p)
        if len(chosen) == n_users:
            break
    posts = [Post(platform="sandbox", pid=p.mid, uid=p.uid, text=p.text, topics=list(p.topics),
                  created_at=datetime.fromtimestamp(p.ts, timezone.utc).isoformat(), likes=p.likes,
                  author=User(platform="sandbox", uid=p.uid, name=w.users[p.uid].name)) for p in chosen]
    now = datetime.now(timezone.utc).isoformat()
    with transaction(db):
        upsert_posts(db, posts)
        db.execute("INSERT INTO audiences (id, auto_name, name, keywords, created_at) VALUES (1, 'a', '测试', '[\"健身\"]', ?)", (now,))
        db.execute("INSERT INTO memberships (user_id, audience_id, score, tier) SELECT id, 1, 0.8, 'engaged' FROM users")


def sandbox_settings(sb, **eng):
    e = {"quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0, "daily_cap": 500, "hourly_cap": 500,
         "max_post_age_days": 3650, "follow_suggestions": False, "send_mode": "sandbox", "send_source": "sb",
         "templates": [{**TEMPLATES[0], "variants": TEMPLATES[0]["variants"] + [f"第{i}条：{{nickname}} 你好，一起交流{{topic}}" for i in range(40)]}]}
    e.update(eng)
    return parse_settings({
        "sources": [{"name": "sb", "platform": "sandbox", "base_url": sb.base_url, "min_interval_s": 0, "jitter_s": 0,
                     "timeout_s": 0.5, "max_retries": 0}],
        "engagement": e})


@pytest.fixture
def sandbox():
    with start_sandbox(seed=9, n_users=120) as sb:
        yield sb


def test_sandbox_send_once_each_with_idempotency_keys(db, sandbox):
    load_sandbox_posts(db, sandbox, 8)
    s = sandbox_settings(sandbox)
    now = datetime.now(timezone.utc)
    run_plan(db, s, now)
    ids = [r["id"] for r in store.list_items(db)]
    assert len(ids) == 8
    queue_ops.approve(db, ids, approver(db))
    summary = run_send(db, s, now + timedelta(seconds=1))
    assert summary.mode == "sandbox" and summary.sent == 8
    keys = sorted(a["idempotency_key"] for a in sandbox.actions)
    assert keys == sorted(f"huaxiang-{i}" for i in ids)
    for i in ids:
        item = store.get_item(db, i)
        assert item.status == "sent" and item.remote_id
        assert any(a["remote_id"] == item.remote_id and a["text"] == item.text for a in sandbox.actions)
    assert run_send(db, s, now + timedelta(hours=1)).sent == 0 and len(sandbox.actions) == 8


def test_sandbox_timeout_is_reconciled_never_resent(db):
    with start_sandbox(seed=3, n_users=60, faults=FaultConfig(slow=1.0, slow_s=1.0, writes=True)) as sb:
        load_sandbox_posts(db, sb, 1)
        s = sandbox_settings(sb)
        now = datetime.now(timezone.utc)
        run_plan(db, s, now)
        (item_id,) = [r["id"] for r in store.list_items(db)]
        queue_ops.approve(db, [item_id], approver(db))
        first = run_send(db, s, now + timedelta(seconds=1))
        assert first.unknown == 1 and store.get_item(db, item_id).status == "unknown"
        time.sleep(1.3)                      # the slow server applies the comment after our timeout
        sb.faults.config.slow = 0.0
        second = run_send(db, s, now + timedelta(minutes=5))
        assert second.reconciled_sent == 1 and second.sent == 0
        assert store.get_item(db, item_id).status == "sent"
        assert len(sb.actions) == 1 and sb.actions[0]["idempotency_key"] == f"huaxiang-{item_id}"


def test_sandbox_outcomes_replies_optouts_and_follow_backs(db, sandbox):
    load_sandbox_posts(db, sandbox, 30)
    s = sandbox_settings(sandbox)
    now = datetime.now(timezone.utc)
    run_plan(db, s, now, rng=random.Random(0))     # the drafts decide who answers: keep them fixed
    ids = [r["id"] for r in store.list_items(db)]
    queue_ops.approve(db, ids, approver(db))
    assert run_send(db, s, now + timedelta(seconds=1)).sent == len(ids)
    w = sandbox.world
    if not any(outcomes.is_opt_out(c["text"]) for c in w.replies_to_us):
        # Who answers is a hash of post and draft text; make sure one person asks us to stop.
        with w.lock:
            ours = w.our_comments[0]
            reply = {"id": w.next_our_id(), "uid": w.posts[ours["post"]].uid, "text": "别再@我了", "ts": ours["ts"] + 2,
                     "likes": 0,
                     "post": ours["post"], "reply_to": ours["id"]}
            w.replies_to_us.append(reply)
            w.comments(ours["post"]).append(reply)
    platform = open_source(s, s.source("sb"))
    summary = outcomes.collect_outcomes(db, s, platform=platform)
    replies = [c for c in w.replies_to_us]
    assert replies, "the sandbox answered none of 30 comments; choose another seed"
    opt = [c for c in replies if outcomes.is_opt_out(c["text"])]
    assert opt
    assert summary.optouts == len(opt) and summary.replies == len(replies) - len(opt)
    for c in opt:
        assert store.is_opted_out(db, "sandbox", c["uid"])
        row = [r for r in store.list_optouts(db) if r["uid"] == c["uid"]][0]
        assert row["evidence"] == c["text"] and row["origin"] == "reply" and row["evidence_id"] == c["id"]
    assert summary.follow_backs == len(set(w.followers_of_us) & {store.get_item(db, i).target_uid for i in ids})
    # collecting again adds nothing
    again = outcomes.collect_outcomes(db, s, platform=platform)
    assert (again.replies, again.optouts, again.follow_backs) == (0, 0, 0)
    rates = store.response_rates(db)
    assert sum(r["sent"] for r in rates) == len(ids)
    assert sum(r["responded"] for r in rates) >= summary.replies


def test_kill_9_mid_request_then_reconciled_not_resent(tmp_path):
    """The real thing: `huaxiang send` is killed while its request is in flight."""
    import os
    import signal
    import subprocess
    import sys

    from storage.db import connect

    with start_sandbox(seed=5, n_users=60, faults=FaultConfig(slow=1.0, slow_s=3.0, writes=True)) as sb:
        sb.faults.config.slow = 0.0          # reads fast while we set up
        db = connect(tmp_path / "k.db")
        load_sandbox_posts(db, sb, 1)
        (tmp_path / "huaxiang.toml").write_text(
            f'[[sources]]\nname = "sb"\nplatform = "sandbox"\nbase_url = "{sb.base_url}"\nmin_interval_s = 0\n'
            'jitter_s = 0\ntimeout_s = 30\nmax_retries = 0\n'
            '[engagement]\nquiet_hours = ""\nmin_spacing_s = 0\nspacing_jitter_s = 0\nmax_post_age_days = 3650\n'
            'follow_suggestions = false\nsend_mode = "sandbox"\nsend_source = "sb"\n'
            '[[engagement.templates]]\nname = "tips"\nvariants = ["{nickname} 说得好，一起交流"]\n', encoding="utf-8")
        from config import load_settings

        s = load_settings(tmp_path / "huaxiang.toml")
        run_plan(db, s)
        (item_id,) = [r["id"] for r in store.list_items(db)]
        queue_ops.approve(db, [item_id], approver(db))
        # Take the follower baseline now, so the child's first request is the write itself.
        ensure_follower_baseline(db, s, open_source(s, s.source("sb")))
        sb.faults.config.slow = 1.0
        child = subprocess.Popen([sys.executable, "-m", "bot", "--db", "k.db", "send"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while store.get_item(db, item_id).status != "sending":
            assert time.monotonic() < deadline and child.poll() is None, "child never started sending"
            time.sleep(0.05)
        time.sleep(0.5)                       # the request is now sitting in the slow server
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert store.get_item(db, item_id).status == "sending"
        time.sleep(3.0)                       # the server finishes and applies the comment
        sb.faults.config.slow = 0.0
        assert len(sb.actions) == 1
        again = subprocess.run([sys.executable, "-m", "bot", "--db", "k.db", "send", "--json"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        import json as _json

        counts = _json.loads(again.stdout)
        assert counts["recovered"] == 1 and counts["reconciled_sent"] == 1 and counts["sent"] == 0
        assert store.get_item(db, item_id).status == "sent"
        assert len(sb.actions) == 1           # never resent
        log = store.send_log_for(db, item_id)
        assert [r["status"] for r in log] == ["unknown"]
        db.close()
