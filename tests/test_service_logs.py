"""Service logs: readable console lines, rotated JSON lines, and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stderr

import pytest

from conftest import make_settings
from storage import service as store
from storage.db import connect
from bot.logs import add_json_file_handler, configure_logging
from bot.service.scheduler import run_once_locked

COOKIE = "SUB=_2A25LsecretCookieValue4711; SUBP=0033WrSXqPxfM72-Ws9jqgMF55529P9D9W5"
TOKEN = "2.00tokenVALUEthatMustNeverLeak42"


@pytest.fixture
def logging_to(tmp_path):
    console = io.StringIO()
    with redirect_stderr(console):
        configure_logging(logging.INFO)
    json_path = tmp_path / "service.jsonl"
    add_json_file_handler(str(json_path), max_bytes=2000, backups=2)
    yield console, json_path
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_huaxiang", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(logging.WARNING)


def test_secrets_never_reach_the_console_the_json_log_or_the_database(tmp_path, monkeypatch, logging_to):
    console, json_path = logging_to
    monkeypatch.setenv("HX_TEST_COOKIE", COOKIE)
    monkeypatch.setenv("HX_TEST_TOKEN", TOKEN)
    settings = make_settings({
        "sources": [{"name": "wb", "platform": "weibo", "cookie_env": "HX_TEST_COOKIE", "token_env": "HX_TEST_TOKEN"}],
        "queries": [{"name": "q", "source": "wb", "kind": "keyword", "value": "健身"}],
        "schedule": {"analyze": "manual", "plan": "manual"},
    })

    def leaky_crawl(ctx):
        # A careless call site and an exception that carries the secrets.
        logging.getLogger("bot.find.crawler").warning("fetching with %s and token %s", COOKIE, TOKEN)
        raise RuntimeError(f"GET https://api.example/2/x.json?access_token={TOKEN} failed; headers Cookie: {COOKIE}")

    done = run_once_locked(tmp_path / "t.db", settings, {"crawl": leaky_crawl}, install_signals=False)
    assert [(s.id, o.status) for s, o in done] == [("crawl:q", "failed")]

    db = connect(tmp_path / "t.db")
    (run,) = store.job_runs(db)
    db.close()
    logs = console.getvalue()
    jsonl = json_path.read_text(encoding="utf-8")
    for text in (logs, jsonl, run["error"]):
        assert "RuntimeError" in text or "fetching" in text
        for secret in (TOKEN, "_2A25LsecretCookieValue4711", "0033WrSXqPxfM72-Ws9jqgMF55529P9D9W5"):
            assert secret not in text
    assert "crawl:q failed" in logs  # readable console line
    records = [json.loads(line) for line in jsonl.splitlines()]
    failed = [r for r in records if r.get("job") == "crawl:q" and r["level"] == "ERROR"]
    assert failed and "***" in failed[0]["message"] and "run_id" in failed[0]


def test_the_json_log_rotates(tmp_path, logging_to):
    _, json_path = logging_to
    settings = make_settings({"schedule": {"analyze": "every 1h", "plan": "every 1h"}})
    for _ in range(15):
        run_once_locked(tmp_path / "t.db", settings, {"analyze": lambda ctx: {"n": 1}, "plan": lambda ctx: {}},
                        install_signals=False)
    rotated = sorted(p.name for p in tmp_path.glob("service.jsonl*"))
    assert rotated == ["service.jsonl", "service.jsonl.1", "service.jsonl.2"]
    for p in tmp_path.glob("service.jsonl*"):
        for line in p.read_text(encoding="utf-8").splitlines():
            json.loads(line)
