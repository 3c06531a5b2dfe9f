"""One campaign across platforms: the Weibo sandbox, RSSHub routes and a Mastodon tag
crawl into one database, and the analysis builds audiences across all of them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import httpx
import pytest
import respx

from bot.understand.run import run_analysis
from bot.find.crawler import run_crawl
from bot.find.sandbox.server import start_sandbox
from storage.audiences import audience_members
from storage.db import connect
from conftest import make_settings

FIX = Path(__file__).parent / "fixtures"
RSSHUB = "http://rsshub.test"
MASTO = "https://mastodon.test"


def _masto(name: str):
    return json.loads((FIX / "mastodon" / name).read_text(encoding="utf-8"))


def _accounts() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for name in ("tag_timeline_page1.json", "tag_timeline_page2.json"):
        for st in _masto(name):
            if isinstance(st, dict) and isinstance(st.get("account"), dict):
                found[st["account"]["id"]] = st["account"]
    return found


def _campaign(sandbox_url: str) -> dict:
    fast = {"min_interval_s": 0, "jitter_s": 0, "backoff_s": 0, "max_retries": 1, "page_retries": 0}
    return {
        "sources": [
            {"name": "weibo-sandbox", "platform": "sandbox", "base_url": sandbox_url, "fetch_authors": False, **fast},
            {"name": "rsshub", "platform": "rss", "base_url": RSSHUB, **fast},
            {"name": "masto", "platform": "mastodon", "base_url": MASTO, "author_budget": 10, **fast},
        ],
        "queries": [
            {"name": "wb-travel", "source": "weibo-sandbox", "kind": "topic", "value": "旅行日记", "max_pages": 2},
            {"name": "douban-camping", "source": "rsshub", "kind": "group", "value": "/douban/group/camping"},
            {"name": "weibo-camping-rss", "source": "rsshub", "kind": "keyword", "value": "/weibo/keyword/露营"},
            {"name": "masto-camping", "source": "masto", "kind": "topic", "value": "露营", "max_pages": 3},
        ],
        "analysis": {"k": 3},
    }


def _mock_feeds_and_mastodon(mock: respx.MockRouter, sandbox_host: str) -> dict[str, respx.Route]:
    mock.route(host=sandbox_host).pass_through()          # the sandbox is a real loopback server
    routes = {
        "douban": mock.get(RSSHUB + "/douban/group/camping").mock(return_value=httpx.Response(
            200, content=(FIX / "rss" / "rsshub_douban_group.xml").read_bytes(),
            headers={"Content-Type": "application/rss+xml; charset=utf-8", "ETag": '"d1"'})),
        "weibo-rss": mock.get(url__regex=r"^http://rsshub\.test/weibo/keyword/").mock(return_value=httpx.Response(
            200, content=(FIX / "rss" / "rsshub_weibo_keyword.xml").read_bytes())),
        "tag": mock.get(url__regex=r"^https://mastodon\.test/api/v1/timelines/tag/").mock(side_effect=[
            httpx.Response(200, json=_masto("tag_timeline_page1.json"), headers={
                "Link": f'<{MASTO}/api/v1/timelines/tag/x?max_id=113500000000000005>; rel="next"',
                "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "250", "X-RateLimit-Reset": "2099-01-01T00:00:00Z"}),
            httpx.Response(200, json=_masto("tag_timeline_page2.json")),
        ]),
    }
    accounts = _accounts()

    def account(request: httpx.Request) -> httpx.Response:
        uid = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json=accounts[uid]) if uid in accounts else httpx.Response(404, json={"error": "Record not found"})

    routes["profile"] = mock.get(url__regex=r"^https://mastodon\.test/api/v1/accounts/\d+$").mock(side_effect=account)
    routes["timeline"] = mock.get(url__regex=r"^https://mastodon\.test/api/v1/accounts/\d+/statuses").mock(
        return_value=httpx.Response(200, json=_masto("account_statuses.json")))
    return routes


def test_sandbox_rsshub_and_mastodon_crawl_into_one_database_and_audiences_span_them(tmp_path, cli):
    with start_sandbox(seed=11, n_users=80) as sandbox:
        settings = make_settings(_campaign(sandbox.base_url))
        db = connect(tmp_path / "multi.db")
        try:
            host = re.match(r"http://([^:/]+)", sandbox.base_url).group(1)
            with respx.mock(assert_all_called=False) as mock:
                routes = _mock_feeds_and_mastodon(mock, host)
                summary = run_crawl(db, settings, sleep=lambda seconds: None)
            statuses = {r.query: r.status for r in summary.runs}
            assert statuses == {"wb-travel": "ok", "douban-camping": "ok", "weibo-camping-rss": "ok",
                                "masto-camping": "ok"}, [(r.query, r.status, r.error) for r in summary.runs]
            assert routes["tag"].call_count == 2                 # paged with max_id until the end
            assert routes["profile"].called and routes["timeline"].called   # new Mastodon authors fetched

            per_platform = dict(db.execute("SELECT platform, COUNT(*) FROM posts GROUP BY platform"))
            assert set(per_platform) == {"sandbox", "rss", "mastodon"}
            assert per_platform["rss"] == 5 and per_platform["mastodon"] >= 6
            users = dict(db.execute("SELECT platform, COUNT(*) FROM users GROUP BY platform"))
            assert users["rss"] == 4 and users["mastodon"] == 4 and users["sandbox"] >= 5
            # RSS group posts carry the group; the Mastodon opt-outs are flagged
            assert db.execute("SELECT COUNT(*) FROM posts WHERE platform = 'rss' AND group_id = '/douban/group/camping'"
                                   ).fetchone()[0] == 2
            assert {r[0] for r in db.execute("SELECT uid FROM users WHERE nobot = 1")} == \
                {"109384756201928999", "110000000000000123"}
            # every post links to the query that found it
            found_by = dict(db.execute("SELECT p.platform, COUNT(DISTINCT q.query) FROM post_queries q"
                                            " JOIN posts p ON p.id = q.post_id GROUP BY p.platform"))
            assert found_by == {"sandbox": 1, "rss": 2, "mastodon": 1}

            result = run_analysis(db, settings)
            audiences = [r[0] for r in db.execute("SELECT id FROM audiences WHERE status = 'active'")]
            assert len(audiences) >= 2
            members = [m for a in audiences for m in audience_members(db, a)]
            assert {m["platform"] for m in members} == {"sandbox", "rss", "mastodon"}   # the platform per user
            assert all(m["uid"] and m["platform"] for m in members)
            assert result is not None
            # what a manager hands on: the audience list names each member's platform
            exported: set[str] = set()
            for a in audiences:
                out = tmp_path / f"audience-{a}.csv"
                code, _, err = cli("--db", tmp_path / "multi.db", "export", "audience", str(a), "-o", out)
                assert code == 0, err
                with open(out, encoding="utf-8-sig", newline="") as fh:
                    exported |= {row["platform"] for row in csv.DictReader(fh)}
            assert exported == {"sandbox", "rss", "mastodon"}
        finally:
            db.close()
