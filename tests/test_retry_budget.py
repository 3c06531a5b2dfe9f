"""One layer of retries: a crawler read costs at most 1 + max_retries + page_retries
requests whichever layer (HTTP client or crawler) retries, where the two
layers used to multiply ((1 + max_retries) x (1 + page_retries) = 12 GETs
per page with the defaults)."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import make_settings
from bot.find.crawler import run_crawl
from bot.find.http import PoliteClient
from storage.db import connect

BASE = "http://weibo.test"


def crawl(tmp_path, answer, **src_kw):
    """Crawl one keyword page of a Weibo source whose every answer comes from ``answer(n)``."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return answer(len(calls))

    settings = make_settings({
        "database": {"path": str(tmp_path / "r.db")},
        "sources": [{"name": "w", "platform": "weibo", "base_url": BASE, "min_interval_s": 0, "jitter_s": 0,
                     "backoff_s": 0, "fetch_authors": False, **src_kw}],
        "queries": [{"name": "q", "source": "w", "kind": "keyword", "value": "健身", "max_pages": 1}],
    })
    db = connect(tmp_path / "r.db")
    try:
        summary = run_crawl(db, settings, transport=httpx.MockTransport(handler))
    finally:
        db.close()
    return calls, summary.runs[0]


def busy(n: int) -> httpx.Response:
    return httpx.Response(503)


def bad_json(n: int) -> httpx.Response:
    return httpx.Response(200, content=b'{"ok": 1, "data": ')      # truncated: a PayloadError every time


def test_a_busy_page_costs_one_plus_both_retry_settings_not_their_product(tmp_path):
    calls, run = crawl(tmp_path, busy)                                 # defaults: max_retries 3, page_retries 2
    assert len(calls) == 1 + 3 + 2
    assert run.status == "partial" and run.requests == 6 and run.faults == {"http_503": 6}


def test_what_only_the_crawler_sees_is_retried_by_the_crawler_alone(tmp_path):
    """A malformed page is not the client's to retry: page_retries re-fetches, no more."""
    calls, run = crawl(tmp_path, bad_json)
    assert len(calls) == 1 + 2 and run.status == "partial" and "bad_payload" in run.error


def test_the_bound_follows_the_settings(tmp_path):
    calls, _ = crawl(tmp_path, busy, max_retries=5, page_retries=4)
    assert len(calls) == 10
    (tmp_path / "none").mkdir()
    calls, _ = crawl(tmp_path / "none", busy, max_retries=0, page_retries=0)
    assert len(calls) == 1


def test_a_page_that_recovers_is_stored(tmp_path):
    page = {"ok": 1, "data": {"cards": [], "cardlistInfo": {}}}
    answer = lambda n: httpx.Response(503) if n < 5 else httpx.Response(200, json=page)   # noqa: E731
    calls, run = crawl(tmp_path, answer)
    assert len(calls) == 5 and run.status == "ok" and run.pages == 1


def test_the_client_alone_keeps_its_own_retries(tmp_path):
    """Outside a crawl (the sender, sign-in) no budget is open: max_retries still holds."""
    settings = make_settings({"sources": [{"name": "w", "platform": "weibo", "base_url": BASE, "min_interval_s": 0,
                                           "jitter_s": 0, "backoff_s": 0, "max_retries": 3}]}).sources[0]
    calls = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(503, content=json.dumps({}).encode()))
    with PoliteClient(settings, transport=transport) as client:
        assert client.get(BASE + "/api/container/getIndex").status_code == 503
    assert len(calls) == 4
