"""Hostile response headers and paging fields: a platform (or something
between us and it) answering ``Retry-After: inf`` or a page number of "²"
must block, pause or end the crawl cleanly, never crash it."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.find.crawler import run_crawl
from bot.find.http import parse_retry_after
from storage import crawl as store
from storage.db import connect
from test_crawl import settings_for

TOPIC_PAGE = {"ok": 1, "data": {"cardlistInfo": {"page": "²"}, "cards": [
    {"card_type": 9, "mblog": {"id": "4900000000000001", "text": "你好 #健身#", "created_at": "刚刚",
                               "user": {"id": 1642591402, "screen_name": "跑步的小鹿"}}}]}}


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "1e300", "²", "Fri, 31 Dec 9999 23:59:59 GMT", "-5"])
def test_retry_after_is_a_sane_number_of_seconds_or_none(value):
    got = parse_retry_after(value)
    assert got is None or 0 <= got <= 7 * 86400


@pytest.mark.parametrize("platform", ["sandbox", "rss"])
@pytest.mark.parametrize("retry_after", ["inf", "1e300", "²", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_429_with_an_absurd_retry_after_pauses_the_source(tmp_path, platform, retry_after):
    path = tmp_path / "h.db"
    db = connect(path)
    settings = settings_for(path, {"s": "http://127.0.0.1:9"}, [
        {"name": "q", "source": "s", "kind": "topic", "value": "健身", "max_pages": 3}],
        fetch_authors=False, page_retries=1, max_retries=0)
    settings.sources[0].platform = platform
    if platform == "rss":
        settings.queries[0].value = "http://127.0.0.1:9/feed.xml"      # a topic query reads this feed
    transport = httpx.MockTransport(lambda request: httpx.Response(
        429, headers=[(b"Retry-After", retry_after.encode("latin-1"))], content=b"{}"))
    summary = run_crawl(db, settings, transport=transport)
    (run,) = summary.runs
    assert run.status == "blocked" and "http_429" in run.error
    assert store.source_pause(db, "s") is not None


def test_a_page_number_that_is_not_ascii_digits_ends_the_query(tmp_path):
    path = tmp_path / "p.db"
    db = connect(path)
    settings = settings_for(path, {"s": "http://127.0.0.1:9"}, [
        {"name": "q", "source": "s", "kind": "topic", "value": "健身", "max_pages": 3}], fetch_authors=False)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=json.dumps(TOPIC_PAGE).encode()))
    (run,) = run_crawl(db, settings, transport=transport).runs
    assert run.status == "ok" and run.new_posts == 1 and run.pages == 1
