"""Weibo Open API v2 mode: comments/create and statuses/repost with the OAuth2
token, never more than the hourly cap, and clear errors when misconfigured."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from conftest import approver
from bot.engage import queue_ops
from bot.errors import HuaxiangError
from bot.engage.planner import run_plan
from bot.engage.sender import make_transport, run_send
from config import parse_settings
from storage import engagement as store
from test_queue_world import NOW, TEMPLATES, build_world

TOKEN = "2.00abcdefTOKEN123456"


def api_settings(**eng):
    e = {"quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0, "follow_suggestions": False,
         "send_mode": "weibo-api", "send_source": "wb", "templates": TEMPLATES, "hourly_cap": 2}
    e.update(eng)
    return parse_settings({"sources": [{"name": "wb", "platform": "weibo", "token_env": "HX_TEST_WEIBO_TOKEN",
                                        "min_interval_s": 0, "jitter_s": 0, "max_retries": 0}],
                           "engagement": e})


def test_weibo_api_mode_posts_with_token_and_respects_hourly_cap(db, monkeypatch):
    monkeypatch.setenv("HX_TEST_WEIBO_TOKEN", TOKEN)
    # u0, a leader, wrote a strong post: the planner reposts it with a comment; the others get replies.
    build_world(db, users=3, posts_per_user=1, texts={"p0_0": "分享一下我的训练心得，鸡胸肉和蛋白粉都很关键 #健身#"})
    db.execute("UPDATE posts SET likes = 120 WHERE pid = 'p0_0'")
    s = api_settings()
    plan_s = api_settings(hourly_cap=100)
    run_plan(db, plan_s, NOW)
    ids = [r["id"] for r in store.list_items(db)]
    queue_ops.approve(db, ids, approver(db))
    seen = []

    def answer(request: httpx.Request):
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        seen.append((request.url.path, form))
        return httpx.Response(200, json={"idstr": str(5000 + len(seen)), "id": 5000 + len(seen)})

    with respx.mock(assert_all_mocked=True) as mock:
        mock.post("https://api.weibo.com/2/comments/create.json").mock(side_effect=answer)
        mock.post("https://api.weibo.com/2/statuses/repost.json").mock(side_effect=answer)
        mock.get("https://api.weibo.com/2/friendships/followers/ids.json").mock(
            return_value=httpx.Response(200, json={"ids": [], "next_cursor": 0}))
        mock.get("https://api.weibo.com/2/account/get_uid.json").mock(return_value=httpx.Response(200, json={"uid": 1}))
        first = run_send(db, s, NOW + timedelta(minutes=1))
        assert first.sent == 2 and first.waits["hourly_cap"] == 1 and "hourly_cap" in first.stopped_reason
        second = run_send(db, s, NOW + timedelta(minutes=62))
        assert second.sent == 1
    assert len(seen) == 3
    for path, form in seen:
        assert form["access_token"] == TOKEN
        assert path in ("/2/comments/create.json", "/2/statuses/repost.json")
        text_field = "comment" if path.endswith("create.json") else "status"
        assert form[text_field] and form["id"].startswith("p")
    sent = [store.get_item(db, i) for i in ids]
    assert {i.status for i in sent} == {"sent"} and {i.remote_id for i in sent} == {"5001", "5002", "5003"}
    # the token never reaches the database
    dump = "\n".join(db.iterdump())
    assert TOKEN not in dump


def test_weibo_api_mode_needs_a_token_and_a_weibo_source(monkeypatch):
    s = parse_settings({"sources": [{"name": "wb", "platform": "weibo"}],
                        "engagement": {"send_mode": "weibo-api", "send_source": "wb"}})
    with pytest.raises(HuaxiangError, match="OAuth2 access token"):
        make_transport(s, "weibo-api")
    s = parse_settings({"sources": [{"name": "wb", "platform": "rss", "base_url": "http://x"}],
                        "engagement": {"send_mode": "weibo-api", "send_source": "wb"}})
    with pytest.raises(HuaxiangError, match="needs a weibo source"):
        make_transport(s, "weibo-api")
    with pytest.raises(HuaxiangError, match="send_source"):
        make_transport(parse_settings({}), "sandbox")


def test_rate_limit_answer_stops_the_run(db, monkeypatch):
    monkeypatch.setenv("HX_TEST_WEIBO_TOKEN", TOKEN)
    build_world(db, users=3, posts_per_user=1)
    s = api_settings(hourly_cap=100, templates=[TEMPLATES[0]])
    run_plan(db, s, NOW)
    ids = [r["id"] for r in store.list_items(db)]
    queue_ops.approve(db, ids, approver(db))
    with respx.mock() as mock:
        route = mock.post("https://api.weibo.com/2/comments/create.json").mock(return_value=httpx.Response(
            403, json={"error": "User requests out of rate limit!", "error_code": 10023}))
        mock.get("https://api.weibo.com/2/friendships/followers/ids.json").mock(return_value=httpx.Response(403))
        mock.get("https://api.weibo.com/2/account/get_uid.json").mock(return_value=httpx.Response(200, json={"uid": 1}))
        summary = run_send(db, s, NOW + timedelta(minutes=1))
    assert route.call_count == 1 and summary.failed == 1 and "rate" in summary.stopped_reason
    assert store.queue_counts(db)["approved"] == len(ids) - 1
