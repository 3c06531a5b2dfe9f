"""Fuzzing the Weibo payload parser and adapter: recorded payloads with fields
missing or of the wrong type, and JSON of any shape.

The contract: an item is parsed or raises ``ItemError`` (the page skips it);
a page, profile or comments call returns its records or raises a
``SourceError`` (PayloadError, BlockedError...). Never another exception,
and whatever is returned is well-typed enough to store.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings as hyp_settings, strategies as st

from bot.find.http import PoliteClient
from bot.find.errors import SourceError
from bot.find.sources.weibo import WeiboSource
from bot.find.sources.weibo_parse import (CHINA, ItemError, card_kind, clean_text, group_in_html, parse_comment,
                                     parse_count, parse_created_at, parse_mblog, parse_pics, parse_region,
                                     parse_tags, parse_user, walk_cards)
from config.schema import SourceSettings
from storage.db import connect, transaction
from storage.posts import upsert_posts, upsert_users
from storage.records import Post, User

FIX = Path(__file__).parent / "fixtures" / "weibo"
NOW = datetime(2026, 11, 22, 15, 30, 0, tzinfo=CHINA)
FUZZ = hyp_settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PAYLOADS = {name: json.loads((FIX / name).read_text(encoding="utf-8"))
            for name in ("search_realtime.json", "topic_page.json", "supertopic_page.json", "user_search.json",
                         "timeline.json", "timeline_end.json", "profile.json", "hotflow.json", "hotflow_end.json",
                         "extend.json", "captcha.json", "ok0_end.json", "ok0_refused.json")}

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["", " ", "1.2万", "9e99亿", "刚刚", "99999小时前", "Tue Feb 30 12:28:47 +0800 2021", "13-45",
                     "<a href='x'>全文</a>", "100808" + "f" * 32, "-1", "9" * 40, "\x00", "发布于", "来自",
                     "<img alt=", "&#xD800;", "\u202e", "²", "١٢٣", " 42 "]))

any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["ok", "data", "cards", "card_group", "card_type", "mblog", "user", "id", "mid", "text",
                         "cardlistInfo", "page", "since_id", "userInfo", "max_id", "longTextContent", "x"]),
        inner, max_size=5),
    max_leaves=20)


def mutate(obj: Any, rng: random.Random, junk_values: list[Any], rate: float) -> Any:
    """A copy of ``obj`` with keys dropped, values swapped for junk, lists cut or repeated."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            roll = rng.random()
            if roll < rate / 2:
                continue
            out[k] = rng.choice(junk_values) if roll < rate else mutate(v, rng, junk_values, rate)
        return out
    if isinstance(obj, list):
        items = [mutate(v, rng, junk_values, rate) for v in obj if rng.random() >= rate / 3]
        if items and rng.random() < rate / 3:
            items.append(rng.choice(items))
        if rng.random() < rate / 4:
            items.insert(0, rng.choice(junk_values))
        return items
    return obj


def mutated(names=tuple(PAYLOADS)):
    return st.builds(lambda name, seed, values, rate: mutate(PAYLOADS[name], random.Random(seed), values, rate),
                     st.sampled_from(names), st.integers(0, 2**32), st.lists(junk, min_size=1, max_size=6),
                     st.sampled_from([0.02, 0.1, 0.3]))


def check_post(p: Post) -> None:
    assert isinstance(p, Post)
    assert isinstance(p.pid, str) and p.pid.isascii() and p.pid.isdigit(), p.pid
    assert isinstance(p.uid, str) and p.uid.isascii() and p.uid.isdigit(), p.uid
    assert isinstance(p.text, str)
    assert p.created_at is None or datetime.fromisoformat(p.created_at)
    assert all(isinstance(t, str) for t in p.topics + p.mentions)
    for n in (p.reposts, p.comments, p.likes):
        assert n is None or (isinstance(n, int) and n >= 0)


def check_user(u: User) -> None:
    assert isinstance(u, User) and isinstance(u.uid, str) and u.uid.isascii() and u.uid.isdigit(), u.uid
    assert u.name is None or isinstance(u.name, str)
    assert all(isinstance(t, str) for t in u.tags)
    for n in (u.followers, u.following, u.posts_count):
        assert n is None or (isinstance(n, int) and n >= 0)


_store: dict[str, Any] = {}


def store(posts: list[Post], users: list[User]) -> None:
    """What the parser returns must be storable as it is."""
    if "db" not in _store:
        _store["db"] = connect(":memory:")
    db = _store["db"]
    with transaction(db):
        upsert_users(db, users)
        upsert_posts(db, posts)


# -- item level ----------------------------------------------------------------------------------------------
def cards_of(payload: Any) -> list[Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    return data.get("cards", []) if isinstance(data, dict) else []


@FUZZ
@given(mutated(("search_realtime.json", "topic_page.json", "supertopic_page.json", "user_search.json",
                "timeline.json")))
def test_every_card_parses_or_is_a_clean_item_error(payload):
    try:
        cards = walk_cards(cards_of(payload))
    except ItemError:
        return
    posts, users = [], []
    for card in cards:
        assert isinstance(card, dict)
        kind = card_kind(card)
        try:
            if kind == "post":
                out = parse_mblog(card.get("mblog"), "weibo", NOW, None)
                assert out and all(isinstance(p, Post) for p in out)
                for p in out:
                    check_post(p)
                    if p.author is not None:
                        check_user(p.author)
                posts += out
            elif kind == "user":
                u = parse_user(card.get("user"), "weibo", card)
                check_user(u)
                users.append(u)
        except ItemError:
            continue
    store(posts, users)


@FUZZ
@given(mutated(("hotflow.json",)), st.text(max_size=5))
def test_every_comment_parses_or_is_a_clean_item_error(payload, parent):
    data = payload.get("data") if isinstance(payload, dict) else None
    items = data.get("data") if isinstance(data, dict) else None
    comments = []
    for c in items if isinstance(items, list) else []:
        try:
            post = parse_comment(c, "weibo", parent or "1", NOW)
        except ItemError:
            continue
        check_post(post)
        assert post.kind == "comment" and post.parent_pid == (parent or "1")
        comments.append(post)
    store(comments, [])


@FUZZ
@given(junk)
@example(float("inf"))
@example("9" * 400)
@example(2**70)
def test_field_parsers_take_any_value(value):
    count = parse_count(value)
    assert count is None or 0 <= count <= 2**63 - 1          # storable in an SQLite INTEGER
    out = parse_created_at(value, NOW)
    assert out is None or datetime.fromisoformat(out)
    assert isinstance(clean_text(value), str)
    assert group_in_html(value) is None or len(group_in_html(value)) == 32
    assert parse_region(value) is None or isinstance(parse_region(value), str)
    assert all(isinstance(u, str) for u in parse_pics(value))
    assert all(isinstance(t, str) for t in parse_tags({"tags": value}, {"desc1": value}))
    for parse in (lambda v: parse_mblog(v, "weibo", NOW), lambda v: parse_user(v, "weibo"),
                  lambda v: parse_comment(v, "weibo", "1", NOW), walk_cards):
        try:
            parse(value)
        except ItemError:
            pass


# -- adapter level (the HTTP answer is whatever the fuzzer made) ------------------------------------------------
def source_answering(body: bytes, status: int = 200) -> WeiboSource:
    settings = SourceSettings(name="weibo", platform="weibo", base_url="https://m.weibo.cn", min_interval_s=0,
                              jitter_s=0, max_retries=0, backoff_s=0)
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body,
                                                                   headers={"Content-Type": "application/json"}))
    return WeiboSource(settings, PoliteClient(settings, transport=transport, sleep=lambda s: None), {"token": "t"},
                       now=lambda: NOW)


CALLS = {
    "search": lambda s: s.search_posts("健身"),
    "search p2": lambda s: s.search_posts("健身", "p:2"),
    "topic": lambda s: s.topic_posts("#健身打卡#"),
    "group": lambda s: s.group_posts("c91fca2fdb72155a2c9e0d60aca37fd8", "s:49"),
    "group by name": lambda s: s.group_posts("健身超话"),
    "tag": lambda s: s.users_by_tag("手冲"),
    "profile": lambda s: s.user_profile("1642591402"),
    "timeline": lambda s: s.user_posts("1642591402", "s:4900000000000010"),
    "comments": lambda s: s.post_comments("4900000000000007", "m:123:0"),
}


def run_call(name: str, body: bytes) -> None:
    src = source_answering(body)
    try:
        result = CALLS[name](src)
    except SourceError:
        return
    if isinstance(result, User):
        check_user(result)
        store([], [result])
        return
    for p in result.posts:
        check_post(p)
    for u in result.users:
        check_user(u)
    assert result.next_cursor is None or isinstance(result.next_cursor, str)
    assert result.skipped >= 0
    store(result.posts, result.users)
    # Long texts of whatever the page held: expanded, or a SourceError.
    try:
        src.expand_posts(result.posts)
    except SourceError:
        pass


@FUZZ
@given(st.sampled_from(sorted(CALLS)), mutated())
def test_adapter_on_mutated_payloads_returns_records_or_a_source_error(call, payload):
    run_call(call, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


@FUZZ
@given(st.sampled_from(sorted(CALLS)), any_json)
def test_adapter_on_json_of_any_shape_returns_records_or_a_source_error(call, payload):
    run_call(call, json.dumps(payload).encode("utf-8"))


@hyp_settings(max_examples=60, deadline=None, database=None)
@given(st.sampled_from(sorted(CALLS)), st.binary(max_size=200) | mutated().map(
    lambda p: json.dumps(p, ensure_ascii=False).encode("utf-8")[: random.Random(len(str(p))).randint(0, 300)]))
def test_adapter_on_truncated_or_binary_bodies_returns_records_or_a_source_error(call, body):
    run_call(call, body)
