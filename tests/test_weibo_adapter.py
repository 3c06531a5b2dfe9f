"""The Weibo adapter against recorded shapes (respx): reads, blocking signals, writes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import respx

from bot.find.http import PoliteClient
from bot.find.errors import BlockedError, OutcomeUnknownError, PayloadError
from bot.find.sources.weibo import MissingTokenError, WeiboSource
from bot.find.sources.weibo_parse import CHINA
from config.schema import SourceSettings

FIX = Path(__file__).parent / "fixtures" / "weibo"
BASE = "https://m.weibo.cn"
API = "https://api.weibo.com"
INDEX = f"{BASE}/api/container/getIndex"
NOW = datetime(2026, 11, 22, 15, 30, 0, tzinfo=CHINA)


def fx(name: str) -> dict:
    return json.loads((FIX / name).read_text(encoding="utf-8"))


def source(token: str | None = "tok-123456", **kw) -> WeiboSource:
    settings = SourceSettings(name="weibo", platform="weibo", base_url=BASE, min_interval_s=0, jitter_s=0,
                              max_retries=kw.pop("max_retries", 0), **kw)
    return WeiboSource(settings, PoliteClient(settings), {"token": token}, now=lambda: NOW)


def containerid(request: httpx.Request) -> str:
    return request.url.params.get("containerid", "")


@respx.mock
def test_realtime_search_page_parses_and_skips_the_broken_card():
    route = respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("search_realtime.json")))
    page = source().search_posts("健身")
    req = route.calls.last.request
    assert containerid(req) == "100103type=61&q=健身" and req.url.params["page_type"] == "searchall"
    assert req.headers["X-Requested-With"] == "XMLHttpRequest" and req.headers["Referer"] == f"{BASE}/"
    pids = [p.pid for p in page.posts]
    assert pids == ["4608812345678901", "4608812345678800", "4608812345678700", "4608812345678600", "4608812345670000"]
    assert page.skipped == 1                              # the card whose id is null
    assert page.next_cursor == "p:2"
    assert page.raw["ok"] == 1


@respx.mock
def test_page_cursor_is_sent_back_as_page_number():
    route = respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("topic_page.json")))
    page = source().topic_posts("#健身打卡#", "p:2")
    req = route.calls.last.request
    assert containerid(req) == "231522type=1&t=10&q=#健身打卡#" and req.url.params["page"] == "2"
    assert [p.pid for p in page.posts] == ["4900000000000001"] and page.next_cursor == "p:3"


@respx.mock
def test_super_topic_by_id_pages_by_since_id_and_knows_its_group():
    route = respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("supertopic_page.json")))
    page = source().group_posts("100808c91fca2fdb72155a2c9e0d60aca37fd8", "s:4900000000000009")
    req = route.calls.last.request
    assert containerid(req) == "100808c91fca2fdb72155a2c9e0d60aca37fd8_-_sort_time"
    assert req.url.params["since_id"] == "4900000000000009"
    assert page.posts[0].group_id == "c91fca2fdb72155a2c9e0d60aca37fd8"
    assert page.posts[0].text.startswith("健身超话 今天练背")
    assert page.next_cursor == "s:4900000000000005"


@respx.mock
def test_super_topic_by_name_is_resolved_once():
    def handler(request):
        cid = containerid(request)
        if cid.startswith("100103type=98"):
            return httpx.Response(200, json=fx("supertopic_search.json"))
        return httpx.Response(200, json=fx("supertopic_page.json"))

    route = respx.get(INDEX).mock(side_effect=handler)
    src = source()
    src.group_posts("健身超话")
    src.group_posts("健身超话", "s:4900000000000005")
    cids = [containerid(c.request) for c in route.calls]
    assert cids == ["100103type=98&q=健身超话", "100808c91fca2fdb72155a2c9e0d60aca37fd8_-_sort_time",
                    "100808c91fca2fdb72155a2c9e0d60aca37fd8_-_sort_time"]


@respx.mock
def test_users_by_tag_keep_profile_tags():
    respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("user_search.json")))
    page = source().users_by_tag("跑步")
    assert [u.uid for u in page.users] == ["1642591402", "5100003571"]
    assert page.users[0].tags == ["跑步", "马拉松", "健身"] and page.users[1].tags == []
    assert page.skipped == 1 and page.next_cursor == "p:2"


@respx.mock
def test_profile_and_timeline():
    def handler(request):
        cid = containerid(request)
        assert request.url.params["type"] == "uid" and request.url.params["value"] == "1642591402"
        if cid == "1005051642591402":
            return httpx.Response(200, json=fx("profile.json"))
        if request.url.params.get("since_id"):
            return httpx.Response(200, json=fx("timeline_end.json"))
        return httpx.Response(200, json=fx("timeline.json"))

    respx.get(INDEX).mock(side_effect=handler)
    src = source()
    user = src.user_profile("1642591402")
    assert user.full_profile and user.name == "跑步的小鹿" and user.followers == 123000
    page = src.user_posts("1642591402")
    assert [p.pid for p in page.posts] == ["4900000000000011"] and page.next_cursor == "s:4900000000000010"
    end = src.user_posts("1642591402", page.next_cursor)
    assert end.posts == [] and end.next_cursor is None


@respx.mock
def test_long_text_is_expanded():
    respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("search_realtime.json")))
    ext = respx.get(f"{BASE}/statuses/extend").mock(return_value=httpx.Response(200, json=fx("extend.json")))
    src = source()
    page = src.search_posts("健身")
    src.expand_posts(page.posts)
    long_post = next(p for p in page.posts if p.pid == "4608812345678700")
    assert ext.call_count == 1 and ext.calls.last.request.url.params["id"] == "4608812345678700"
    assert long_post.text == "今天的深蹲终于突破100公斤了，分享一下我的训练计划：第一周适应，第二周加量。#健身打卡#"
    assert long_post.topics == ["健身打卡"]


@respx.mock
def test_comments_page_and_end():
    route = respx.get(f"{BASE}/comments/hotflow").mock(side_effect=[httpx.Response(200, json=fx("hotflow.json")),
                                                                    httpx.Response(200, json=fx("hotflow_end.json"))])
    src = source()
    page = src.post_comments("4900000000000007")
    assert [c.pid for c in page.posts] == ["4900000000100001"] and page.skipped == 1
    assert page.next_cursor == "m:138927162874:0"
    end = src.post_comments("4900000000000007", page.next_cursor)
    assert route.calls.last.request.url.params["max_id"] == "138927162874"
    assert end.posts == [] and end.next_cursor is None


@respx.mock
def test_end_of_results_is_not_a_block():
    respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("ok0_end.json")))
    page = source().search_posts("没人说的词")
    assert page.posts == [] and page.next_cursor is None


@pytest.mark.parametrize("response, kind", [
    (httpx.Response(418), "http_418"),
    (httpx.Response(432), "http_432"),
    (httpx.Response(403, text="Forbidden"), "http_403"),
    (httpx.Response(429, headers={"Retry-After": "30"}), "http_429"),
    (httpx.Response(200, json=fx("captcha.json")), "captcha"),
    (httpx.Response(200, json=fx("ok0_refused.json")), "ok_0"),
    (httpx.Response(302, headers={"Location": "https://passport.weibo.cn/signin/login?entry=mweibo&r=x"}), "login_redirect"),
    (httpx.Response(302, headers={"Location": "https://visitor.passport.weibo.cn/visitor/visitor?entry=miniblog"}), "login_redirect"),
    (httpx.Response(200, text="<html><title>Sina Visitor System</title></html>"), "visitor_page"),
])
@respx.mock
def test_blocking_signals_are_named(response, kind):
    respx.get(INDEX).mock(return_value=response)
    # An anonymous client sent to the visitor/sign-in page first tries the visitor handshake (issue 14).
    respx.post("https://visitor.passport.weibo.cn/visitor/genvisitor2").mock(return_value=httpx.Response(404))
    src = source()
    with pytest.raises(BlockedError) as info:
        src.topic_posts("健身打卡")
    assert info.value.kind == kind
    if kind == "http_429":
        assert info.value.retry_after == 30.0
    faults = src.http.stats.faults
    assert faults[kind] >= 1


@respx.mock
def test_truncated_json_is_a_payload_error():
    body = json.dumps(fx("topic_page.json")).encode()[:100]
    respx.get(INDEX).mock(return_value=httpx.Response(200, content=body))
    src = source()
    with pytest.raises(PayloadError):
        src.topic_posts("健身打卡")
    assert src.http.stats.faults["bad_json"] == 1


@respx.mock
def test_wrong_shape_is_a_payload_error():
    respx.get(INDEX).mock(return_value=httpx.Response(200, json={"ok": 1, "data": {"cards": "oops"}}))
    with pytest.raises(PayloadError):
        source().topic_posts("健身打卡")
    respx.get(INDEX).mock(return_value=httpx.Response(200, json={"ok": 1, "data": {"userInfo": None}}))
    with pytest.raises(PayloadError):
        source().user_profile("1")


# -- writes (Open API v2) ----------------------------------------------------------
@respx.mock
def test_reply_sends_form_with_token_and_returns_the_comment_id():
    route = respx.post(f"{API}/2/comments/create.json").mock(return_value=httpx.Response(200, json=fx("api_comment_create.json")))
    result = source().reply("4608812345678901", "配速很稳，加油！", "item-1")
    form = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert form == {"id": "4608812345678901", "comment": "配速很稳，加油！", "access_token": "tok-123456"}
    assert result.ok and result.remote_id == "4990000000001000"


@respx.mock
def test_repost_and_refusals():
    respx.post(f"{API}/2/statuses/repost.json").mock(return_value=httpx.Response(200, json=fx("api_repost.json")))
    assert source().repost("4608812345678901", "好文转发", "k").remote_id == "4990000000002000"
    respx.post(f"{API}/2/comments/create.json").mock(return_value=httpx.Response(401, json=fx("api_error_token.json")))
    bad = source().reply("1", "hi", "k")
    assert not bad.ok and "21332" in bad.error


@respx.mock
def test_write_timeout_or_5xx_is_an_unknown_outcome_never_a_retry():
    route = respx.post(f"{API}/2/comments/create.json").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknownError):
        source(max_retries=3).reply("1", "hi", "k")
    assert route.call_count == 1
    respx.post(f"{API}/2/comments/create.json").mock(return_value=httpx.Response(502))
    with pytest.raises(OutcomeUnknownError):
        source().reply("1", "hi", "k")


@respx.mock
def test_write_blocked_is_named():
    respx.post(f"{API}/2/comments/create.json").mock(return_value=httpx.Response(418))
    with pytest.raises(BlockedError) as info:
        source().reply("1", "hi", "k")
    assert info.value.kind == "http_418"


def test_writes_without_a_token_say_so():
    with pytest.raises(MissingTokenError):
        source(token=None).reply("1", "hi", "k")


@respx.mock
def test_outcome_reads():
    respx.get(f"{API}/2/account/get_uid.json").mock(return_value=httpx.Response(200, json={"uid": 7700000001}))
    to_me = respx.get(f"{API}/2/comments/to_me.json").mock(return_value=httpx.Response(200, json=fx("api_comments_to_me.json")))
    followers = respx.get(f"{API}/2/friendships/followers/ids.json").mock(return_value=httpx.Response(200, json=fx("api_followers_ids.json")))
    src = source()
    replies = src.comments_to_me(since_id="4990000000000999")
    assert to_me.calls.last.request.url.params["since_id"] == "4990000000000999"
    (r,) = replies
    assert r.pid == "4990000000001001" and r.parent_pid == "4608812345678901" and r.text == "别再@我了"
    assert r.raw["reply_to_comment_id"] == "4990000000001000" and r.uid == "1642591402"
    assert src.follower_ids() == {"1642591402", "5100003571"}
    assert followers.calls.last.request.url.params["uid"] == "7700000001"


@respx.mock
def test_find_own_reply_matches_text_and_our_uid():
    respx.get(f"{API}/2/account/get_uid.json").mock(return_value=httpx.Response(200, json={"uid": 5100003571}))
    respx.get(f"{BASE}/comments/hotflow").mock(return_value=httpx.Response(200, json=fx("hotflow_end.json") | {
        "data": {"data": fx("hotflow.json")["data"]["data"][:1], "max_id": 0}}))
    src = source()
    assert src.find_own_reply("4900000000000007", "加油[doge]") == "4900000000100001"
    assert src.find_own_reply("4900000000000007", "别的话") is None
