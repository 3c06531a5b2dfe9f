"""RSS / Atom / RSSHub adapter on recorded feeds in the real RSSHub shapes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from bot.find.http import PoliteClient
from bot.find.sources import source_class
from bot.find.errors import BlockedError, PayloadError, SourceError, UnsupportedError
from bot.find.sources.rss import RSSSource, html_to_text, parse_feed
from config import SourceSettings
from storage.platforms import load_feed_state, save_feed_state
from storage.posts import upsert_posts
from storage.db import transaction

FIX = Path(__file__).parent / "fixtures" / "rss"
RSSHUB = "http://127.0.0.1:1200"


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


def make_source(http, **kw) -> RSSSource:
    settings = SourceSettings(name="hub", platform="rss", base_url=RSSHUB, min_interval_s=0, jitter_s=0)
    return RSSSource(settings, http, secrets=kw.pop("secrets", None), **kw)


@pytest.fixture
def http():
    """The polite client the adapter is handed (no pacing, no real sleeps); respx intercepts its transport."""
    settings = SourceSettings(name="hub", platform="rss", base_url=RSSHUB, min_interval_s=0, jitter_s=0, max_retries=1)
    client = PoliteClient(settings, sleep=lambda seconds: None)
    yield client
    client.close()


def test_source_class_finds_rss():
    assert source_class("rss") is RSSSource


def test_weibo_keyword_route_parses_posts_topics_mentions_and_numeric_uid():
    page = parse_feed(fixture("rsshub_weibo_keyword.xml"), RSSHUB + "/weibo/keyword/露营")
    assert [p.pid for p in page.posts] == [
        "https://weibo.com/6012345678/P1aBcDeFg",
        "https://weibo.com/7023456789/P1aXyZwVu",
        "https://weibo.com/7023456789/P1aRePoSt",
    ]
    first = page.posts[0]
    assert first.platform == "rss"
    assert first.uid == "weibo.com/6012345678"
    assert first.author.name == "安吉露营阿杰"
    assert first.created_at == "2026-11-22T09:41:03+00:00"
    assert first.topics == ["露营", "周末去哪儿"]
    # the title repeats the start of the text: kept once; emoticon alt kept, photos dropped
    assert first.text == "周末带娃去安吉露营，帐篷搭好就下雨了#露营# #周末去哪儿# 还好天幕够大[允悲]"
    assert first.url == "https://weibo.com/6012345678/P1aBcDeFg"
    assert first.raw["author"] == "安吉露营阿杰" and "summary" in first.raw
    assert page.posts[1].mentions == ["户外老炮儿"]
    # the same author twice is one user
    assert {u.uid for u in page.users} == {"weibo.com/6012345678", "weibo.com/7023456789"}
    assert page.next_cursor is None and page.skipped == 0


def test_douban_group_route_sets_group_and_categories_and_drops_script():
    page = parse_feed(fixture("rsshub_douban_group.xml"), RSSHUB + "/douban/group/camping", group="/douban/group/camping")
    first, second = page.posts
    assert first.uid == "douban.com/一只松鼠"
    assert first.group_id == "/douban/group/camping"
    assert first.topics == ["营地"]
    assert first.text.startswith("求推荐江浙沪适合新手的营地\n第一次带爸妈去露营")
    assert "莫干山" in first.text and "<" not in first.text
    assert second.text == "【装备】分享一下我的轻量化清单\n帐篷 1.2kg，睡袋 800g，炉头 & 气罐 <300g。"
    assert "alert" not in second.text


def test_atom_feed_uses_author_uri_categories_and_channel_as_fallback_author():
    page = parse_feed(fixture("atom_blog.xml"), "https://sspai.com/feed")
    a, b = page.posts
    assert a.uid == "https://sspai.com/u/wanger" and a.author.profile_url == "https://sspai.com/u/wanger"
    assert a.pid == "https://sspai.com/feed#tag:sspai.com,2026:post-91234"
    assert a.created_at == "2026-11-22T00:30:00+00:00"          # +08:00 normalised to UTC
    assert a.topics == ["露营", "户外电源"]
    assert a.text == "露营 电源 怎么选\n容量看 Wh，不看 mAh。\n带电热毯要 500Wh 起。"
    assert b.uid == "https://sspai.com/" and b.author.name == "少数派"
    assert b.created_at == "2026-11-21T20:00:00+00:00"           # only <updated>


def test_malformed_entries_bad_dates_html_and_empty_items():
    page = parse_feed(fixture("malformed.xml"), "https://example.cn/feed")
    assert page.skipped == 1                                     # the empty <item>
    pids = [p.pid for p in page.posts]
    assert len(pids) == len(set(pids)) == 2                      # the repeated guid kept once
    bad_date = page.posts[0]
    assert bad_date.created_at is None
    assert bad_date.text == "加粗标题 & HTML\n正文"
    assert "onerror" not in bad_date.text and "<" not in bad_date.text
    no_ids = page.posts[1]
    assert no_ids.pid.startswith("https://example.cn/feed#sha1:")
    again = parse_feed(fixture("malformed.xml"), "https://example.cn/feed")
    assert again.posts[1].pid == no_ids.pid                      # stable: a re-poll is a duplicate


def test_not_a_feed_is_a_payload_error():
    with pytest.raises(PayloadError, match="not a readable feed"):
        parse_feed(fixture("not_a_feed.html"), RSSHUB + "/nope")


def test_html_to_text_keeps_lines_and_drops_hidden_parts():
    assert html_to_text("<p>a<br>b</p><p>c &amp; d</p>") == "a\nb\nc & d"
    assert html_to_text('<a href="x"><span class="invisible">https://</span><span>ex.com</span></a>') == "ex.com"
    assert html_to_text("plain  text") == "plain text"
    assert html_to_text(None) == ""


def test_conditional_get_sends_validators_and_304_is_an_empty_page(http, db):
    url = RSSHUB + "/douban/group/camping"
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(url).mock(side_effect=[
            httpx.Response(200, content=fixture("rsshub_douban_group.xml"),
                           headers={"ETag": 'W/"abc123"', "Last-Modified": "Sun, 22 Nov 2026 10:00:00 GMT",
                                    "Content-Type": "application/rss+xml; charset=utf-8"}),
            httpx.Response(304),
        ])
        src = make_source(http)
        page = src.group_posts("/douban/group/camping")
        assert len(page.posts) == 2
        assert "If-None-Match" not in route.calls[0].request.headers
        assert src.validators[url] == ('W/"abc123"', "Sun, 22 Nov 2026 10:00:00 GMT")
        with transaction(db):
            upsert_posts(db, page.posts)
            save_feed_state(db, "hub", src.validators, changed=src.changed)

        # a later run: validators come back from the database
        src2 = make_source(http, validators=load_feed_state(db, "hub"))
        page2 = src2.group_posts("/douban/group/camping")
        sent = route.calls[1].request.headers
        assert sent["If-None-Match"] == 'W/"abc123"'
        assert sent["If-Modified-Since"] == "Sun, 22 Nov 2026 10:00:00 GMT"
        assert page2.posts == [] and page2.raw["not_modified"] is True
        assert src2.changed == set()
    row = db.execute("SELECT etag, changed_at IS NOT NULL FROM feed_state WHERE source = 'hub'").fetchone()
    assert row == ('W/"abc123"', 1)


def test_a_feed_with_malformed_entries_is_refetched_in_full(http):
    """The crawler re-fetches pages with skipped items; that must not become a 304."""
    url = RSSHUB + "/bad"
    with respx.mock() as mock:
        route = mock.get(url).mock(return_value=httpx.Response(200, content=fixture("malformed.xml"), headers={"ETag": '"v1"'}))
        src = make_source(http)
        assert src.search_posts("/bad").skipped == 1
        assert url not in src.validators
        src.search_posts("/bad")
        assert "If-None-Match" not in route.calls[1].request.headers


def test_routes_join_base_url_and_access_key_goes_only_to_rsshub(http):
    with respx.mock(assert_all_called=True) as mock:
        hub = mock.get(url__regex=r"^http://127\.0\.0\.1:1200/tieba/forum/").mock(
            return_value=httpx.Response(200, content=fixture("rsshub_tieba_forum.xml")))
        other = mock.get("https://sspai.com/feed").mock(return_value=httpx.Response(200, content=fixture("atom_blog.xml")))
        src = make_source(http, secrets={"token": "s3cret"})
        page = src.topic_posts("/tieba/forum/显卡")
        assert page.posts[0].uid == "tieba.baidu.com/装机小白"
        assert hub.calls[0].request.url.params["key"] == "s3cret"
        src.search_posts("https://sspai.com/feed")
        assert "key" not in other.calls[0].request.url.params
        # validators are keyed by the URL without the key (secrets never stored)
        assert all("s3cret" not in u for u in src.validators)


def test_bad_query_values_and_missing_base_url_are_clear(http):
    src = make_source(http)
    with pytest.raises(SourceError, match="RSSHub route starting with /"):
        src.search_posts("露营")
    nobase = RSSSource(SourceSettings(name="feeds", platform="rss"), http)
    with pytest.raises(SourceError, match="needs base_url"):
        nobase.group_posts("/douban/group/camping")


def test_http_errors_block_or_fail(http):
    with respx.mock() as mock:
        mock.get(RSSHUB + "/weibo/keyword/a").mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
        mock.get(RSSHUB + "/weibo/keyword/b").mock(return_value=httpx.Response(503))
        src = make_source(http)
        with pytest.raises(BlockedError) as exc:
            src.search_posts("/weibo/keyword/a")
        assert exc.value.retry_after == 120
        with pytest.raises(SourceError):
            src.search_posts("/weibo/keyword/b")


def test_moved_feeds_are_followed(http):
    with respx.mock(assert_all_called=True) as mock:
        mock.get("http://feeds.example.cn/camp").mock(
            return_value=httpx.Response(301, headers={"Location": "https://feeds.example.cn/camp.xml"}))
        mock.get("https://feeds.example.cn/camp.xml").mock(return_value=httpx.Response(200, content=fixture("atom_blog.xml")))
        page = make_source(http).search_posts("http://feeds.example.cn/camp")
        assert len(page.posts) == 2


def test_profiles_are_unsupported(http):
    src = make_source(http)
    with pytest.raises(UnsupportedError, match="fetch_authors"):
        src.user_profile("weibo.com/1")
    with pytest.raises(UnsupportedError):
        src.user_posts("weibo.com/1")


# -- issue 14: RSSHub's Weibo routes (title derived from the text; reposts in a blockquote) ----

def test_rsshub_weibo_picture_post_text_is_not_doubled():
    from bot.find.sources.rss import parse_feed as _pf
    data = (Path(__file__).parent / "fixtures" / "rss" / "rsshub_weibo_user_real.xml").read_bytes()
    page = _pf(data, "http://127.0.0.1:1200/weibo/user/1223178222")
    pic = next(p for p in page.posts if p.url == "https://weibo.com/7198559139/LDX7DoaOa")
    assert pic.text == "第一次上钻石一周年我要恰独食A去咯！！大家晚安😴（其实还有视频没弄完"     # no "[图片]", not doubled


def test_rsshub_weibo_repost_keeps_the_original_apart():
    from bot.find.sources.rss import parse_feed as _pf
    data = (Path(__file__).parent / "fixtures" / "rss" / "rsshub_weibo_user_real.xml").read_bytes()
    page = _pf(data, "http://127.0.0.1:1200/weibo/user/1223178222")
    repost = next(p for p in page.posts if p.url == "https://weibo.com/1223178222/M1VT3jzNX")
    assert repost.text == "#过刚刚好的生活，从小小的我开始#"
    assert repost.topics == ["过刚刚好的生活，从小小的我开始"]
    original = next(p for p in page.posts if p.pid == repost.repost_of)
    assert original.uid == "weibo.com/3116716801" and original.author.name == "万科公益基金会"
    assert original.text.startswith("2022年 #零废弃日#，@胡歌 与我们分享") and "转发" not in original.text
    assert "零废弃日" in original.topics and "零废弃日" not in repost.topics


def test_rsshub_weibo_mobile_links_are_weibo_items_too():
    from bot.find.sources.rss import parse_feed as _pf
    path = Path(__file__).parent / "fixtures" / "rss" / "rsshub_weibo_user_real.xml"
    data = path.read_text("utf-8").replace("<link>https://weibo.com/7198559139/LDX7DoaOa</link>",
                                           "<link>https://m.weibo.cn/status/LDX7DoaOa</link>")   # preferMobileLink=1
    page = _pf(data.encode("utf-8"), "http://127.0.0.1:1200/weibo/user/1223178222/preferMobileLink=1")
    pic = next(p for p in page.posts if p.url == "https://m.weibo.cn/status/LDX7DoaOa")
    assert pic.text == "第一次上钻石一周年我要恰独食A去咯！！大家晚安😴（其实还有视频没弄完"
