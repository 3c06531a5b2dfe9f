"""Mastodon adapter on recorded API payloads (respx for HTTP)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from bot.find.http import PoliteClient
from bot.find.sources import source_class
from bot.find.errors import BlockedError, OutcomeUnknownError, SourceError
from bot.find.sources.mastodon import MastodonSource, has_nobot, next_max_id, parse_statuses
from config import SourceSettings
from storage.db import connect, transaction
from storage.platforms import is_nobot, nobot_user_ids
from storage.posts import upsert_posts

FIX = Path(__file__).parent / "fixtures" / "mastodon"
BASE = "https://mastodon.example"
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)


def load(name: str):
    return json.loads((FIX / name).read_text(encoding="utf-8"))


@pytest.fixture
def http():
    """The polite client the adapter is handed (no pacing, no real sleeps); respx intercepts its transport."""
    settings = SourceSettings(name="masto", platform="mastodon", base_url=BASE, min_interval_s=0, jitter_s=0, max_retries=1)
    client = PoliteClient(settings, sleep=lambda seconds: None)
    yield client
    client.close()


def make_source(http, token: str | None = "tok-123", **settings) -> MastodonSource:
    s = SourceSettings(name="masto", platform="mastodon", base_url=BASE, min_interval_s=0, jitter_s=0, **settings)
    return MastodonSource(s, http, secrets={"token": token}, clock=lambda: NOW)


def test_source_class_finds_mastodon():
    assert source_class("mastodon") is MastodonSource


def test_tag_timeline_payload_to_records():
    page = parse_statuses(load("tag_timeline_page1.json"))
    assert page.skipped == 1                                    # the status without an account
    by_id = {p.pid: p for p in page.posts}
    first = by_id["113500000000000010"]
    assert first.platform == "mastodon" and first.uid == "109384756201928374"
    assert first.kind == "post" and first.parent_pid is None
    assert first.created_at == "2026-11-22T09:41:03+00:00"
    assert first.topics == ["露营", "camping"]
    # HTML to text: hashtags kept, the hidden half of the link dropped
    assert first.text == "周末在安吉搭帐篷，雨后的竹林太美了 #露营 #camping\n装备清单见 example.cn/list/2026/11/camp"
    assert (first.reposts, first.comments, first.likes) == (3, 2, 17)
    assert first.url == "https://mastodon.example/@xiaolu/113500000000000010"
    assert first.raw["content"].startswith("<p>")                # raw payload kept as-is
    assert first.author.name == "山野小鹿 🦌" and first.author.full_profile
    reply = by_id["113500000000000009"]
    assert reply.kind == "comment" and reply.parent_pid == "113500000000000010"
    assert reply.mentions == ["xiaolu"]
    assert by_id["113500000000000007"].text == "天气吐槽\nFirst night out in the rain <3 #camping"
    bad = by_id["113500000000000005"]
    assert bad.created_at is None and bad.text == "日期坏掉的一条 HTML"
    assert {u.uid for u in page.users} == {p.uid for p in page.posts}


def test_nobot_in_bio_or_fields_is_kept_and_flagged_in_the_database(db):
    page = parse_statuses(load("tag_timeline_page1.json"))
    assert has_nobot(load("account_ajie_nobot.json"))
    assert not has_nobot(load("account_xiaolu.json"))
    with transaction(db):
        upsert_posts(db, page.posts)
    flagged = {r[0] for r in db.execute("SELECT uid FROM users WHERE nobot = 1")}
    assert flagged == {"109384756201928999", "110000000000000123"}   # bio "#NoBot", profile field "#nobot"
    assert is_nobot(db, "mastodon", "109384756201928999")
    assert not is_nobot(db, "mastodon", "109384756201928374")
    assert len(nobot_user_ids(db, "mastodon")) == 2


def test_tag_timeline_pages_with_max_id_from_the_link_header(http):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(url__regex=r"^https://mastodon\.example/api/v1/timelines/tag/").mock(side_effect=[
            httpx.Response(200, json=load("tag_timeline_page1.json"), headers={
                "Link": '<https://mastodon.example/api/v1/timelines/tag/%E9%9C%B2%E8%90%A5?max_id=113500000000000005>; rel="next", '
                        '<https://mastodon.example/api/v1/timelines/tag/%E9%9C%B2%E8%90%A5?min_id=113500000000000010>; rel="prev"',
                "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299",
                "X-RateLimit-Reset": "2026-11-22T12:05:00.000Z"}),
            httpx.Response(200, json=load("tag_timeline_page2.json")),
        ])
        src = make_source(http)
        page = src.fetch("topic", "#露营")
        req = route.calls[0].request
        assert req.url.path == "/api/v1/timelines/tag/露营"
        assert req.url.params["limit"] == "40" and "max_id" not in req.url.params
        assert req.headers["Authorization"] == "Bearer tok-123"
        assert page.next_cursor == "113500000000000005"
        assert src.rate_remaining == 299 and src.rate_limit == 300
        page2 = src.fetch("tag", "露营", cursor=page.next_cursor)
        assert route.calls[1].request.url.params["max_id"] == "113500000000000005"
        assert [p.pid for p in page2.posts] == ["113400000000000100"]
        assert page2.next_cursor is None                           # short page, no Link: the end


def test_since_id_and_next_max_id_without_link():
    assert next_max_id(None, [{"id": "9"}, {"id": "10"}], limit=2) == "9"
    assert next_max_id(None, [{"id": "9"}], limit=2) is None
    assert next_max_id('<https://x/y?min_id=5>; rel="prev"', [{"id": "9"}] * 40) is None


def test_rate_limit_headers_stop_before_the_instance_refuses(http):
    with respx.mock() as mock:
        route = mock.get(url__regex=r"/api/v1/timelines/tag/").mock(return_value=httpx.Response(
            200, json=[], headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                                   "X-RateLimit-Reset": (NOW + timedelta(seconds=90)).isoformat()}))
        src = make_source(http)
        src.topic_posts("露营")
        with pytest.raises(BlockedError) as exc:
            src.topic_posts("露营")
        assert exc.value.kind == "rate_limited" and exc.value.retry_after == pytest.approx(90)
        assert route.call_count == 1                               # the second request was never sent


def test_spent_write_window_does_not_stop_reads(http):
    with respx.mock() as mock:
        mock.get(BASE + "/api/v1/statuses/1").mock(return_value=httpx.Response(200, json=load("tag_timeline_page1.json")[0]))
        mock.post(BASE + "/api/v1/statuses").mock(return_value=httpx.Response(
            200, json=load("post_status_response.json"),
            headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                     "X-RateLimit-Reset": (NOW + timedelta(hours=2)).isoformat()}))
        tags = mock.get(url__regex=r"/api/v1/timelines/tag/").mock(return_value=httpx.Response(200, json=[]))
        src = make_source(http)
        assert src.reply("1", "hi", idempotency_key="a").ok
        src.topic_posts("露营")                                    # reads go on
        assert tags.called
        with pytest.raises(BlockedError) as exc:                   # the next write waits for its window
            src.reply("1", "hi again", idempotency_key="b")
        assert exc.value.retry_after == pytest.approx(7200)


def test_429_is_blocked_with_the_reset_time(http):
    with respx.mock() as mock:
        mock.get(url__regex=r"/api/v1/timelines/tag/").mock(return_value=httpx.Response(
            429, json={"error": "Too many requests"},
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-11-22T12:04:00.000Z"}))
        with pytest.raises(BlockedError) as exc:
            make_source(http).topic_posts("露营")
        assert exc.value.retry_after == pytest.approx(240)


def test_search_uses_v2_search_statuses(http):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(BASE + "/api/v2/search").mock(return_value=httpx.Response(200, json=load("search_statuses.json")))
        page = make_source(http).fetch("keyword", "竹林 营地")
        params = route.calls[0].request.url.params
        assert params["q"] == "竹林 营地" and params["type"] == "statuses" and params["limit"] == "40"
        assert [p.pid for p in page.posts] == ["113500000000000010", "113500000000000008"]
        assert page.next_cursor is None


def test_group_is_local_public_or_a_list(http):
    with respx.mock(assert_all_called=True) as mock:
        public = mock.get(BASE + "/api/v1/timelines/public").mock(return_value=httpx.Response(200, json=load("tag_timeline_page2.json")))
        lst = mock.get(BASE + "/api/v1/timelines/list/42").mock(return_value=httpx.Response(200, json=[]))
        src = make_source(http)
        page = src.fetch("group", "local")
        assert public.calls[0].request.url.params["local"] == "true"
        assert page.posts[0].group_id == "local"
        assert src.fetch("group", "list:42").posts == []
        assert lst.called
        with pytest.raises(SourceError, match="local, public, remote or list:<id>"):
            src.fetch("group", "露营群")


def test_profile_posts_with_boosts_and_comments(http):
    with respx.mock(assert_all_called=True) as mock:
        mock.get(BASE + "/api/v1/accounts/109384756201928374").mock(return_value=httpx.Response(200, json=load("account_xiaolu.json")))
        mock.get(BASE + "/api/v1/accounts/404").mock(return_value=httpx.Response(404, json={"error": "Record not found"}))
        mock.get(BASE + "/api/v1/accounts/111222333444555666/statuses").mock(return_value=httpx.Response(200, json=load("account_statuses.json")))
        mock.get(BASE + "/api/v1/statuses/113500000000000010/context").mock(return_value=httpx.Response(200, json=load("context.json")))
        src = make_source(http)
        user = src.user_profile("109384756201928374")
        assert user.full_profile and user.followers == 120 and user.posts_count == 340
        assert user.bio == "周末露营 | 轻量化徒步 | 杭州"
        with pytest.raises(SourceError, match="not found"):
            src.user_profile("404")
        page = src.user_posts("111222333444555666")
        boost, original, old = page.posts
        assert boost.uid == "111222333444555666" and boost.repost_of == "113500000000000010" and boost.text == ""
        assert original.pid == "113500000000000010" and original.uid == "109384756201928374"
        comments = src.post_comments("113500000000000010")
        assert [c.parent_pid for c in comments.posts] == ["113500000000000010", "113500000000000010"]
        assert all(c.kind == "comment" for c in comments.posts)


def test_reply_sends_idempotency_key_in_reply_to_and_mentions_the_author(http):
    with respx.mock(assert_all_called=True) as mock:
        mock.get(BASE + "/api/v1/statuses/113500000000000010").mock(
            return_value=httpx.Response(200, json=load("tag_timeline_page1.json")[0]))
        post = mock.post(BASE + "/api/v1/statuses").mock(return_value=httpx.Response(200, json=load("post_status_response.json")))
        src = make_source(http)
        text = "竹林营地真不错，我们整理了一份雨天露营清单，需要的话可以看看"
        result = src.reply("113500000000000010", text, idempotency_key="queue-17-attempt")
        assert result.ok and result.remote_id == "113500000000000777"
        req = post.calls[0].request
        assert req.headers["Idempotency-Key"] == "queue-17-attempt"
        assert req.headers["Authorization"] == "Bearer tok-123"
        body = json.loads(req.content)
        assert body == {"status": "@xiaolu " + text, "in_reply_to_id": "113500000000000010", "visibility": "unlisted"}
        # a retry of the same item carries the same key, so the instance answers with the first status
        src.reply("113500000000000010", "@xiaolu " + text, idempotency_key="queue-17-attempt")
        again = json.loads(post.calls[1].request.content)
        assert again["status"] == "@xiaolu " + text                  # no second @ when already addressed
        assert post.calls[1].request.headers["Idempotency-Key"] == "queue-17-attempt"


def test_reply_failures_are_clear(http):
    with respx.mock() as mock:
        mock.get(BASE + "/api/v1/statuses/1").mock(return_value=httpx.Response(200, json=load("tag_timeline_page1.json")[0]))
        mock.get(BASE + "/api/v1/statuses/gone").mock(return_value=httpx.Response(404, json={"error": "Record not found"}))
        post = mock.post(BASE + "/api/v1/statuses").mock(side_effect=[
            httpx.Response(422, json={"error": "Validation failed: Text character limit of 500 exceeded"}),
            httpx.Response(502, text="Bad Gateway"),
        ])
        src = make_source(http)
        bad = src.reply("1", "x" * 600, idempotency_key="k1")
        assert not bad.ok and "character limit" in bad.error
        with pytest.raises(OutcomeUnknownError, match="outcome unknown"):
            src.reply("1", "hello", idempotency_key="k2")
        gone = src.reply("gone", "hello", idempotency_key="k3")
        assert not gone.ok and "not found" in gone.error and "nothing was sent" in gone.error
        assert post.call_count == 2
    with pytest.raises(SourceError, match="access token") as exc:
        make_source(http, token=None).reply("1", "hello", idempotency_key="k4")
    assert exc.value.kind == "no_token"                             # the sender marks it blocked, not unknown


def test_write_timeouts_are_unknown_outcomes_and_refused_connections_are_not(http):
    with respx.mock() as mock:
        mock.get(BASE + "/api/v1/statuses/1").mock(return_value=httpx.Response(200, json=load("tag_timeline_page1.json")[0]))
        post = mock.post(BASE + "/api/v1/statuses").mock(side_effect=httpx.ReadTimeout("slow"))
        src = make_source(http)
        with pytest.raises(OutcomeUnknownError, match="Idempotency-Key"):
            src.reply("1", "hello", idempotency_key="k1")
        assert post.call_count == 1                                  # a write is never retried blindly
        boost = mock.post(BASE + "/api/v1/statuses/1/reblog").mock(side_effect=httpx.ConnectError("refused"))
        result = src.repost("1", "", idempotency_key="k2")
        assert not result.ok and "nothing was sent" in result.error
        assert boost.call_count == 2                                 # a connection never opened is safe to retry


def test_boost_and_reconciliation(http):
    with respx.mock(assert_all_called=True) as mock:
        reblog = mock.post(BASE + "/api/v1/statuses/113500000000000010/reblog").mock(
            return_value=httpx.Response(200, json=load("reblog_response.json")))
        mock.get(BASE + "/api/v1/accounts/verify_credentials").mock(return_value=httpx.Response(200, json=load("verify_credentials.json")))
        mock.get(BASE + "/api/v1/statuses/113500000000000010/context").mock(return_value=httpx.Response(200, json=load("context.json")))
        src = make_source(http)
        result = src.repost("113500000000000010", "", idempotency_key="queue-18")
        assert result.ok and result.remote_id == "113500000000000888"
        assert reblog.calls[0].request.headers["Idempotency-Key"] == "queue-18"
        found = src.find_own_reply("113500000000000010", "我们整理了一份雨天露营清单")
        assert found == "113500000000000777"
        assert src.find_own_reply("113500000000000010", "从未发过的话") is None


def test_replies_to_us_and_followers(http):
    with respx.mock(assert_all_called=True) as mock:
        notes = mock.get(BASE + "/api/v1/notifications").mock(return_value=httpx.Response(200, json=load("notifications.json")))
        ours = mock.get(BASE + "/api/v1/statuses/113500000000000777").mock(
            return_value=httpx.Response(200, json=load("post_status_response.json")))
        mock.get(BASE + "/api/v1/accounts/verify_credentials").mock(return_value=httpx.Response(200, json=load("verify_credentials.json")))
        followers = mock.get(BASE + "/api/v1/accounts/112000000000000001/followers").mock(side_effect=[
            httpx.Response(200, json=load("followers_page1.json"), headers={
                "Link": '<https://mastodon.example/api/v1/accounts/112000000000000001/followers?max_id=7788>; rel="next"'}),
            httpx.Response(200, json=load("followers_page2.json")),
        ])
        src = make_source(http)
        mine = src.comments_to_me(since_id="113500000000000800")
        assert notes.calls[0].request.url.params.get_list("types[]") == ["mention"]
        assert [p.pid for p in mine] == ["113500000000000999"]
        # the post we had replied to, and our reply that was answered
        assert mine[0].parent_pid == "113500000000000010"
        assert mine[0].raw["reply_to_comment_id"] == "113500000000000777"
        assert mine[0].kind == "comment" and mine[0].text == "@huaxiang_bot 谢谢！收藏了"
        assert src.comments_to_me(since_id="113500000000000999") == []      # nothing newer
        assert ours.call_count == 1
        ids = src.follower_ids()
        assert ids == {"109384756201928374", "111222333444555666", "109384756201928999"}
        assert followers.calls[1].request.url.params["max_id"] == "7788"


def test_missing_base_url_is_clear(http):
    src = MastodonSource(SourceSettings(name="m", platform="mastodon"), http)
    with pytest.raises(SourceError, match="base_url must be the Mastodon instance"):
        src.topic_posts("露营")


# -- hostile payloads: anything JSON gives records or counted skips, never a crash -------------

_KEYS = ["id", "account", "content", "created_at", "reblog", "tags", "mentions", "in_reply_to_id", "url", "uri",
         "note", "display_name", "username", "fields", "name", "acct", "value", "spoiler_text", "followers_count"]
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**20) | st.text(max_size=12) | st.sampled_from(["<p>#nobot</p>", "1", "2026-11-22T09:41:03Z", 10**20, -1, 1.5]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6),
    max_leaves=25,
)
_status = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=5) | st.integers(1, 10**6),
     "account": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=5)},
                                      optional={k: _json for k in ("note", "display_name", "fields", "url", "followers_count")})},
    optional={k: _json for k in ("content", "created_at", "reblog", "tags", "mentions", "in_reply_to_id", "url", "spoiler_text",
                                   "replies_count", "favourites_count")},
)
_fuzz_db = {}


@given(st.lists(_status | _json, max_size=4))
@hyp_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_statuses_parse_or_skip_and_store(items):
    page = parse_statuses(items)
    assert page.skipped <= len(items)
    for p in page.posts:
        assert isinstance(p.pid, str) and isinstance(p.uid, str) and isinstance(p.text, str)
        assert p.url is None or isinstance(p.url, str)
        assert all(isinstance(t, str) for t in p.topics + p.mentions)
    if "db" not in _fuzz_db:
        _fuzz_db["db"] = connect(":memory:")
    db = _fuzz_db["db"]
    with transaction(db):
        upsert_posts(db, page.posts)


# -- issue 14: fields a marketer reads (Mastodon documentation's own example) ---------------

def test_account_bot_flag_and_creation_date_are_kept():
    from pathlib import Path as _P
    from bot.find.sources.mastodon import parse_account as _pa
    doc = json.loads((_P(__file__).parent / "fixtures" / "mastodon_docs" / "account_noiob.json").read_text("utf-8"))
    user = _pa(doc)
    assert user.is_bot is False and user.registered_at == "2017-02-08T02:00:53+00:00"
    assert _pa({**doc, "bot": True}).is_bot is True


def test_status_language_is_kept():
    from bot.find.sources.mastodon import parse_status as _ps
    doc = Path(__file__).parent / "fixtures" / "mastodon_docs" / "status_gargron.json"
    post = _ps(json.loads(doc.read_text("utf-8")))[0]
    assert post.language == "en"
    assert post.author.is_bot is False and post.author.registered_at == "2016-03-16T14:34:26+00:00"
