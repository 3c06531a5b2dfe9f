"""`huaxiang login weibo` in real headless Chromium against the sandbox's sign-in page,
the visitor-cookie handshake, and an expired session pausing the source (issue 14)."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time

import pytest

from bot.find.sandbox.server import start_sandbox
from bot.find.sources.weibo import WeiboSource
from bot.find.http import PoliteClient
from config.schema import SourceSettings
from conftest import chromium_path
from storage.db import connect


@pytest.fixture
def gated():
    with start_sandbox(seed=5, n_users=60, require_session=True) as sb:
        yield sb


def config(tmp_path, base_url: str) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[[sources]]
name = "wb"
platform = "sandbox"
base_url = "{base_url}"
min_interval_s = 0.0
jitter_s = 0.0
fetch_authors = false
comment_pages = 0

[[queries]]
name = "kw"
source = "wb"
kind = "keyword"
value = "健身"
max_pages = 1
""", encoding="utf-8")
    return str(cfg)


def _scan_when_shown(sb, stop: threading.Event) -> None:
    """The person's phone: scan the QR code as soon as the page shows one."""
    while not stop.is_set():
        if sb.signin.qrcodes and sb.signin.scan():
            return
        time.sleep(0.05)


def test_login_in_headless_chromium_stores_the_cookie_only_in_the_secrets_file(gated, tmp_path, cli, monkeypatch,
                                                                               caplog):
    if chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    secrets = tmp_path / "secrets"
    monkeypatch.setenv("HUAXIANG_SECRETS_DIR", str(secrets))
    cfg = config(tmp_path, gated.base_url)
    db_path = tmp_path / "h.db"

    # Before signing in, the gated sandbox sends the anonymous sandbox source away: nothing is stored.
    stop = threading.Event()
    phone = threading.Thread(target=_scan_when_shown, args=(gated, stop), daemon=True)
    phone.start()
    caplog.set_level(logging.DEBUG)
    try:
        code, out, err = cli("--config", cfg, "--db", db_path, "login", "weibo", "--headless", "--timeout", "60",
                             "--qr-image", tmp_path / "qr.png")
    finally:
        stop.set()
    assert code == 0, err
    assert (tmp_path / "qr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"      # the page to scan, for a server
    cookie_file = secrets / "wb.cookie"
    cookie = cookie_file.read_text(encoding="utf-8").strip()
    assert "SUB=" in cookie and "MLOGIN=1" in cookie
    assert stat.S_IMODE(os.stat(cookie_file).st_mode) == 0o600
    sub = dict(p.split("=", 1) for p in cookie.split("; "))["SUB"]
    assert "signed in as user 1000000000" in out and sub not in out + err     # checked with /api/config

    # The crawl now reads with the session.
    code, out, err = cli("--config", cfg, "--db", db_path, "crawl")
    assert code == 0, out + err
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] > 0

    # The session ends on the platform: the source pauses and says what to do.
    gated.signin.expire_sessions()
    db.execute("DELETE FROM post_queries")          # make the query fetch again
    db.execute("UPDATE queries SET cursor = NULL, newest_id = NULL")
    code, out, err = cli("--config", cfg, "--db", db_path, "crawl")
    text = out + err
    assert "session expired: run `huaxiang login weibo`" in text
    row = db.execute("SELECT status, pause_reason FROM sources WHERE name = 'wb'").fetchone()
    assert row[0] == "paused" and "huaxiang login weibo" in row[1]

    # Nowhere but the secrets file: not the database, not the logs, not the output.
    dump = "\n".join(db.iterdump())
    assert sub not in dump and sub not in text
    assert all(sub not in r.getMessage() for r in caplog.records)
    # ...and should it ever reach a log line or an export, the masking knows it.
    from config import load_settings
    from config.loader import configured_secrets
    assert sub in " ".join(configured_secrets(load_settings(cfg)))
    db.close()


def test_anonymous_reads_get_the_visitor_cookie_like_the_mobile_site(gated):
    settings = SourceSettings(name="wb", platform="weibo", base_url=gated.base_url, min_interval_s=0, jitter_s=0,
                              max_retries=0)
    src = WeiboSource(settings, PoliteClient(settings), {})
    page = src.search_posts("健身")
    assert page.posts                                                   # served after the handshake
    assert gated.requests.get("/visitor/genvisitor2") == 1
    assert gated.signin.visitors                                        # the sandbox issued a visitor SUB
    src.search_posts("跑步")
    assert gated.requests.get("/visitor/genvisitor2") == 1              # kept for later requests


def test_signed_in_source_sent_to_signin_reports_session_expired(gated):
    from bot.find.errors import SessionExpiredError

    settings = SourceSettings(name="wb", platform="weibo", base_url=gated.base_url, min_interval_s=0, jitter_s=0,
                              max_retries=0)
    src = WeiboSource(settings, PoliteClient(settings, cookie="SUB=_2A25stale; MLOGIN=1"), {"cookie": "x"})
    with pytest.raises(SessionExpiredError) as exc:
        src.search_posts("健身")
    assert "session expired: run `huaxiang login weibo`" in str(exc.value)
