"""The Weibo adapter on recorded m.weibo.cn responses (fixtures/weibo_real, sources in its README)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import httpx
import respx

from bot.find.http import PoliteClient
from bot.find.sources.weibo import WeiboSource
from bot.find.sources.weibo_parse import CHINA, parse_count, parse_mblog, parse_plays
from config.schema import SourceSettings
from storage.posts import upsert_posts, upsert_users

FIX = Path(__file__).parent / "fixtures" / "weibo_real"
BASE = "https://m.weibo.cn"
INDEX = f"{BASE}/api/container/getIndex"
NOW = datetime(2026, 11, 22, 15, 30, 0, tzinfo=CHINA)
HEX = "39a6e51b8ac2c4d1b0b3e0a95c4a6e47"


def fx(name: str) -> dict:
    return json.loads((FIX / name).read_text(encoding="utf-8"))


def source() -> WeiboSource:
    settings = SourceSettings(name="weibo", platform="weibo", base_url=BASE, min_interval_s=0, jitter_s=0, max_retries=0)
    return WeiboSource(settings, PoliteClient(settings), {}, now=lambda: NOW)


@respx.mock
def test_super_topic_cursor_from_page_info_json_string():
    route = respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("supertopic_pageinfo_cursor.json")))
    src = source()
    page = src.group_posts(HEX)
    since = '{"page":2,"nextscore":1661000000,"msgid":4804608494665869}'
    assert page.next_cursor == "s:" + since
    src.group_posts(HEX, page.next_cursor)
    assert route.calls.last.request.url.params["since_id"] == since     # sent back exactly as received


@respx.mock
def test_super_topic_cursor_from_page_info_object():
    body = fx("supertopic_pageinfo_cursor.json")
    body["data"]["pageInfo"]["since_id"] = {"page": 3, "nextscore": 1660000000}
    respx.get(INDEX).mock(return_value=httpx.Response(200, json=body))
    assert source().group_posts(HEX).next_cursor == 's:{"page":3,"nextscore":1660000000}'


@respx.mock
def test_recorded_timeline_fields_a_marketer_reads():
    respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("timeline_1223178222.json")))
    page = source().user_posts("1223178222")
    assert page.next_cursor == "s:4781413147084961"
    by = {p.pid: p for p in page.posts}
    repost, original = by["4804608494665869"], by["4804268794315521"]
    assert repost.topics == ["过刚刚好的生活，从小小的我开始"] and repost.repost_of == original.pid
    assert repost.created_at == "2022-08-20T18:29:52+08:00" and repost.edit_count == 0
    assert (original.video_type, original.video_plays) == ("video", 3_450_000)
    assert (original.edit_count, original.source, original.region) == (1, "微博视频号", "北京")
    assert original.pic_urls == [] and original.counts_floor == []
    assert original.author.verified_type == 7                       # an organisation (blue V), not a person
    assert repost.author.verified_type == 0 and repost.author.followers == 71_648_000


def test_counts_written_n_wan_plus_are_flagged_as_lower_bounds():
    m = fx("timeline_1223178222.json")["data"]["cards"][0]["mblog"]
    shown = m["number_display_strategy"]["display_text"]                 # "100万+", as Weibo displays big counts
    m = {**m, "attitudes_count": shown, "retweeted_status": None}
    post = parse_mblog(m, "weibo", NOW)[0]
    assert post.likes == 1_000_000 and post.counts_floor == ["likes"]
    assert parse_count("7164.8万") == 71_648_000 and parse_plays("345万次播放") == 3_450_000


@respx.mock
def test_hotflow_nested_replies_are_stored_as_replies(db):
    respx.get(f"{BASE}/comments/hotflow").mock(return_value=httpx.Response(200, json=fx("hotflow_5336295257679240.json")))
    page = source().post_comments("5336295257679240")
    assert page.skipped == 0 and [c.pid for c in page.posts] == ["5337290303868548", "5337290936160046"]
    top, reply = page.posts
    assert (top.parent_pid, top.reply_to, top.thread_root, top.comments) == ("5336295257679240", None, None, 1)
    assert (reply.parent_pid, reply.reply_to, reply.thread_root) == ("5336295257679240", top.pid, top.pid)
    assert reply.region == "陕西" and reply.likes == 74
    upsert_posts(db, page.posts)
    assert db.execute("SELECT reply_to, thread_root FROM posts WHERE pid = '5337290936160046'").fetchone() == \
        (top.pid, top.pid)


@respx.mock
def test_profile_info_container_fills_the_details(db):
    def handler(request):
        cid = request.url.params["containerid"]
        if cid == "2302835841808579_-_INFO":
            return httpx.Response(200, json=fx("profile_info_5841808579.json"))
        user = {"id": 5841808579, "screen_name": "Dejlige_", "gender": "f", "followers_count": 12, "follow_count": 3,
                "verified": False, "verified_type": -1}
        return httpx.Response(200, json={"ok": 1, "data": {"userInfo": user}})

    route = respx.get(INDEX).mock(side_effect=handler)
    user = source().user_profile("5841808579")
    assert [c.request.url.params["containerid"] for c in route.calls] == ["1005055841808579", "2302835841808579_-_INFO"]
    assert (user.location, user.registered_at, user.verified_type) == ("山西 运城", "2016-01-28", -1)
    upsert_users(db, [user])
    assert db.execute("SELECT location, registered_at FROM users WHERE uid = '5841808579'").fetchone() == \
        ("山西 运城", "2016-01-28")


@respx.mock
def test_ok_minus_100_means_the_session_is_gone():
    """``{"ok":-100,"url":<sign-in page>}``: RSSHub's Weibo utils renew their cookies on exactly this;
    a captcha URL stays a captcha."""
    from bot.find.errors import BlockedError, SessionExpiredError
    import pytest as _pytest

    body = {"ok": -100, "url": "https://passport.weibo.cn/signin/welcome?entry=mweibo&r=https%3A%2F%2Fm.weibo.cn%2F"}
    respx.get(INDEX).mock(return_value=httpx.Response(200, json=body))
    respx.post("https://visitor.passport.weibo.cn/visitor/genvisitor2").mock(return_value=httpx.Response(404))
    settings = SourceSettings(name="weibo", platform="weibo", base_url=BASE, min_interval_s=0, jitter_s=0, max_retries=0)
    signed = WeiboSource(settings, PoliteClient(settings, cookie="SUB=x; MLOGIN=1"), {"cookie": "SUB=x"}, now=lambda: NOW)
    with _pytest.raises(SessionExpiredError):
        signed.search_posts("健身")
    with _pytest.raises(BlockedError) as exc:
        source().search_posts("健身")
    assert exc.value.kind == "login_required"


@respx.mock
def test_recorded_super_topic_page_cursor_is_sent_back_exactly():
    """A recorded super-topic page: the cursor is a JSON string in data.pageInfo.since_id whose
    nextscore (1658651971.019999980926513671875) must not be re-serialised as a float."""
    route = respx.get(INDEX).mock(return_value=httpx.Response(200, json=fx("supertopic_1008081a127e.json")))
    src = source()
    page = src.group_posts("1a127e1db26d4483eadf1d1dbe1a80c2")
    since = '{"page":2,"nextscore":1658651971.019999980926513671875,"msgid":4794796253249627}'
    assert page.next_cursor == "s:" + since
    assert [p.pid for p in page.posts] == ["4795220615761422"]
    post = page.posts[0]
    assert post.group_id == "1a127e1db26d4483eadf1d1dbe1a80c2"
    assert (post.source, post.region, post.pic_urls) == (
        "🦈iPhone客户端", "上海", ["https://wx4.sinaimg.cn/large/007Raq4zly1h4jgknaya9j30ta0bcjsx.jpg"])
    assert post.author.followers == 362_000 and post.author.verified_type == -1
    src.group_posts("1a127e1db26d4483eadf1d1dbe1a80c2", page.next_cursor)
    assert route.calls.last.request.url.params["since_id"] == since


@respx.mock
def test_profile_details_can_be_turned_off():
    route = respx.get(INDEX).mock(return_value=httpx.Response(200, json={"ok": 1, "data": {"userInfo": {
        "id": 5841808579, "screen_name": "Dejlige_", "verified_type": -1}}}))
    settings = SourceSettings(name="weibo", platform="weibo", base_url=BASE, min_interval_s=0, jitter_s=0,
                              max_retries=0, profile_details=False)
    user = WeiboSource(settings, PoliteClient(settings), {}, now=lambda: NOW).user_profile("5841808579")
    assert route.call_count == 1 and user.name == "Dejlige_"
