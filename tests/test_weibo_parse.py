"""Every payload quirk the Weibo parser must survive, on recorded shapes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bot.find.sources.weibo_parse import (CHINA, ItemError, clean_text, parse_comment, parse_count, parse_created_at,
                                     parse_mblog, parse_pics, parse_region, parse_tags, parse_user, walk_cards)

FIX = Path(__file__).parent / "fixtures" / "weibo"
NOW = datetime(2026, 11, 22, 15, 30, 0, tzinfo=CHINA)


def load(name: str):
    return json.loads((FIX / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("raw, expected", [
    ("Tue Feb 23 12:28:47 +0800 2021", "2021-02-23T12:28:47+08:00"),
    ("Tue Feb 23 04:28:47 +0000 2021", "2021-02-23T12:28:47+08:00"),
    ("刚刚", "2026-11-22T15:30:00+08:00"),
    ("5分钟前", "2026-11-22T15:25:00+08:00"),
    ("3小时前", "2026-11-22T12:30:00+08:00"),
    ("30秒前", "2026-11-22T15:29:30+08:00"),
    ("昨天 12:00", "2026-11-21T12:00:00+08:00"),
    ("今天 08:05", "2026-11-22T08:05:00+08:00"),
    ("06-27", "2026-06-27T00:00:00+08:00"),
    ("12-30", "2025-12-30T00:00:00+08:00"),        # later in the year than "now": last year's
    ("2020-06-27", "2020-06-27T00:00:00+08:00"),
    ("2026-11-22T01:00:00Z", "2026-11-22T09:00:00+08:00"),
])
def test_created_at_forms(raw, expected):
    assert parse_created_at(raw, NOW) == expected


@pytest.mark.parametrize("raw", [None, "", "某天", 12345, "13-45"])
def test_unknown_dates_are_none(raw):
    assert parse_created_at(raw, NOW) is None


@pytest.mark.parametrize("raw, expected", [
    (12, 12), ("12", 12), ("1万+", 10000), ("1.2万", 12000), ("3亿", 300_000_000), ("12.3万", 123000),
    ("1,024", 1024), ("100+", 100), (3.0, 3), (None, None), ("转发", None), (True, None), (-1, None), ([], None),
])
def test_counts(raw, expected):
    assert parse_count(raw) == expected


def test_pics_as_list_or_object():
    assert parse_pics([{"url": "a", "large": {"url": "A"}}, {"url": "b"}]) == ["A", "b"]
    assert parse_pics({"1": {"url": "b"}, "0": {"url": "a"}, "10": {"url": "k"}}) == ["a", "b", "k"]
    assert parse_pics(None) == [] and parse_pics("x") == []


def test_html_text_keeps_topics_mentions_and_emoticons():
    m = load("search_realtime.json")["data"]["cards"][0]["card_group"][0]["mblog"]
    text = clean_text(m["text"])
    assert text == "#健身打卡#早上跑了10公里 @撸铁老王 一起吗[doge]\n配速5分半 & 心率稳"
    assert clean_text('<span class="url-icon"><img alt="[哈哈]" src="x"></span>好') == "[哈哈]好"
    assert clean_text("一半...<a href=\"/status/1\">全文</a>") == "一半"
    assert clean_text(None) == ""


def test_region_and_tags():
    assert parse_region("发布于 北京") == "北京" and parse_region(None) is None and parse_region("") is None
    assert parse_tags({"tags": ["a", " b "]}, {"desc1": "标签：跑步 马拉松、健身"}) == ["a", "b", "跑步", "马拉松", "健身"]
    assert parse_tags({}, {"desc1": "撸铁爱好者"}) == []


def test_mblog_with_every_quirk():
    group = load("search_realtime.json")["data"]["cards"][0]["card_group"]
    (first,) = parse_mblog(group[0]["mblog"], "weibo", NOW)
    assert first.pid == "4608812345678901" and first.uid == "1642591402"
    assert first.created_at == "2021-02-23T12:28:47+08:00"
    assert (first.reposts, first.comments, first.likes) == (10000, 23, 12000)
    assert first.topics == ["健身打卡"] and first.mentions == ["撸铁老王"]
    assert first.region == "北京" and first.raw is group[0]["mblog"]
    assert first.author.followers == 123000 and first.author.verified is True and first.author.gender == "f"


def test_repost_of_a_deleted_original_keeps_the_link_only():
    group = load("search_realtime.json")["data"]["cards"][0]["card_group"]
    posts = parse_mblog(group[1]["mblog"], "weibo", NOW)
    assert len(posts) == 1
    assert posts[0].repost_of == "4608800000000001" and posts[0].pid == "4608812345678800"
    assert posts[0].created_at == "2026-11-22T15:30:00+08:00"          # 刚刚


def test_repost_with_a_live_original_yields_both():
    group = load("search_realtime.json")["data"]["cards"][0]["card_group"]
    repost, original = parse_mblog(group[3]["mblog"], "weibo", NOW)
    assert repost.repost_of == original.pid == "4608812345670000"
    assert original.uid == "5100003571" and original.created_at == "2026-11-21T12:00:00+08:00"
    assert original.region == "广东"


def test_long_text_flag_and_object_pics_parse():
    group = load("search_realtime.json")["data"]["cards"][0]["card_group"]
    (post,) = parse_mblog(group[2]["mblog"], "weibo", NOW)
    assert post.raw["isLongText"] is True and post.likes == 300_000_000
    assert post.text.endswith("第一周") and "全文" not in post.text
    assert post.author.following == 1024


@pytest.mark.parametrize("bad", [{"id": None, "user": {"id": 1}}, {"id": "1", "user": "deleted"},
                                 {"id": "1", "user": {"screen_name": "x"}}, ["not", "a", "dict"], {"id": "abc", "user": {"id": 1}}])
def test_malformed_items_raise_item_error(bad):
    with pytest.raises(ItemError):
        parse_mblog(bad, "weibo", NOW)


def test_cards_flatten_groups_and_string_card_types():
    cards = walk_cards(load("search_realtime.json")["data"]["cards"])
    assert [str(c["card_type"]) for c in cards] == ["9", "9", "9", "9", "9", "4"]
    with pytest.raises(ItemError):
        walk_cards("oops")


def test_user_and_comment():
    u = parse_user(load("profile.json")["data"]["userInfo"], "weibo", full_profile=True)
    assert u.full_profile and u.raw["id"] == 1642591402 and u.avatar_url.endswith("61e89b74ly8.jpg")
    c = parse_comment(load("hotflow.json")["data"]["data"][0], "weibo", "4900000000000007", NOW)
    assert c.kind == "comment" and c.parent_pid == "4900000000000007" and c.text == "加油[doge]"
    assert c.likes == 12 and c.region == "上海"
