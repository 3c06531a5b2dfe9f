"""Approved items go out through the Mastodon adapter exactly once: the real
planner, queue and sender against a recorded Mastodon instance (respx)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import respx

from conftest import approver
from bot.engage import queue_ops
from bot.find.http import PoliteClient
from bot.engage.planner import run_plan
from bot.engage.sender import run_send
from bot.find.sources.mastodon import MastodonSource, parse_statuses
from config import parse_settings
from storage import engagement as store
from storage.db import transaction
from storage.posts import upsert_posts

FIX = Path(__file__).parent / "fixtures" / "mastodon"
BASE = "https://mastodon.example"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
XIAOLU_POST = "113500000000000010"


def load(name: str):
    return json.loads((FIX / name).read_text(encoding="utf-8"))


def campaign():
    return parse_settings({
        "sources": [{"name": "masto", "platform": "mastodon", "base_url": BASE, "min_interval_s": 0, "jitter_s": 0,
                     "max_retries": 0}],
        "engagement": {
            "send_mode": "mastodon", "send_source": "masto", "quiet_hours": "", "min_spacing_s": 0,
            "spacing_jitter_s": 0, "daily_cap": 100, "hourly_cap": 100, "follow_suggestions": False,
            "max_length": 500,
            "templates": [{"name": "camp", "audience": "*", "kind": "reply",
                           "variants": ["雨天露营也很有味道，我们整理了一份{topic}清单，需要的话可以看看"]}],
        },
    })


def mastodon_world(db) -> None:
    """The recorded tag timeline, stored; every author in one audience."""
    page = parse_statuses(load("tag_timeline_page1.json"))
    with transaction(db):
        upsert_posts(db, page.posts)
        db.execute("INSERT INTO audiences (id, auto_name, name, keywords, created_at) VALUES (1, 'a1', '露营', '[\"露营\"]', ?)",
                        (NOW.isoformat(),))
        for (user_id,) in db.execute("SELECT id FROM users WHERE platform = 'mastodon'").fetchall():
            db.execute("INSERT INTO memberships (user_id, audience_id, score, tier) VALUES (?, 1, 0.9, 'engaged')",
                            (user_id,))


def source() -> MastodonSource:
    settings = campaign()
    src = settings.source("masto")
    return MastodonSource(src, PoliteClient(src, sleep=lambda s: None), secrets={"token": "tok-123"})


def mock_account(mock) -> None:
    """The sending account and its followers: before the first send the sender
    records who already follows us, so only later follows count as follow-backs."""
    me = load("verify_credentials.json")
    mock.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=httpx.Response(200, json=me))
    mock.get(f"{BASE}/api/v1/accounts/{me['id']}/followers").mock(
        return_value=httpx.Response(200, json=load("followers_page2.json")))


def approve_reply_to(db, pid: str) -> int:
    items = [i for i in store.list_items(db) if i.get("kind") == "reply"]
    item_id = next(i["id"] for i in items if store.get_item(db, i["id"]).post_pid == pid)
    (res,) = queue_ops.approve(db, [item_id], approver(db), NOW)
    assert res.ok
    return item_id


def test_an_approved_reply_is_sent_once_with_its_idempotency_key(db):
    mastodon_world(db)
    settings = campaign()
    run_plan(db, settings, NOW)
    item_id = approve_reply_to(db, XIAOLU_POST)
    src = source()
    with respx.mock(assert_all_called=True) as mock:
        mock_account(mock)
        mock.get(f"{BASE}/api/v1/statuses/{XIAOLU_POST}").mock(
            return_value=httpx.Response(200, json=load("tag_timeline_page1.json")[0]))
        post = mock.post(f"{BASE}/api/v1/statuses").mock(return_value=httpx.Response(200, json=load("post_status_response.json")))
        summary = run_send(db, settings, now=NOW, platform=src)
    assert summary.sent == 1
    item = store.get_item(db, item_id)
    assert item.status == "sent" and item.remote_id == "113500000000000777"
    req = post.calls[0].request
    assert req.headers["Idempotency-Key"] == f"huaxiang-{item_id}"
    body = json.loads(req.content)
    assert body["in_reply_to_id"] == XIAOLU_POST and body["visibility"] == "unlisted"
    assert body["status"] == "@xiaolu " + item.text                     # the approved text, addressed to the author
    # a second run has nothing left to send
    with respx.mock(assert_all_called=False) as mock:
        again = mock.post(f"{BASE}/api/v1/statuses")
        run_send(db, settings, now=NOW, platform=src)
        assert not again.called


def test_an_unknown_outcome_is_reconciled_not_resent(db):
    mastodon_world(db)
    settings = campaign()
    run_plan(db, settings, NOW)
    item_id = approve_reply_to(db, XIAOLU_POST)
    src = source()
    with respx.mock() as mock:
        mock_account(mock)
        mock.get(f"{BASE}/api/v1/statuses/{XIAOLU_POST}").mock(
            return_value=httpx.Response(200, json=load("tag_timeline_page1.json")[0]))
        post = mock.post(f"{BASE}/api/v1/statuses").mock(return_value=httpx.Response(502, text="Bad Gateway"))
        run_send(db, settings, now=NOW, platform=src)
    assert store.get_item(db, item_id).status == "unknown"
    assert post.call_count == 1
    # the instance did post it: the next run finds our reply in the thread and sends nothing
    item_text = store.get_item(db, item_id).text
    context = load("context.json")
    context["descendants"][1]["content"] = f"<p>@xiaolu {item_text}</p>"
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(
            return_value=httpx.Response(200, json=load("verify_credentials.json")))
        mock.get(f"{BASE}/api/v1/statuses/{XIAOLU_POST}/context").mock(return_value=httpx.Response(200, json=context))
        again = mock.post(f"{BASE}/api/v1/statuses")
        summary = run_send(db, settings, now=NOW, platform=src)
        assert not again.called
    assert summary.reconciled_sent == 1
    item = store.get_item(db, item_id)
    assert item.status == "sent" and item.remote_id == "113500000000000777"
