"""`huaxiang run` with the real crawler against the sandbox: SIGTERM mid-crawl
leaves whole pages and a resumable cursor, and the resumed crawl ends with
exactly the rows of a clean one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from config import parse_settings
from storage import service as store
from storage.db import connect
from bot.service.scheduler import run_once_locked

QUERY = "skin"


def _config(base_url: str, min_interval_s: float) -> str:
    return f"""
[[sources]]
name = "sb"
platform = "sandbox"
base_url = "{base_url}"
min_interval_s = {min_interval_s}
jitter_s = 0
fetch_authors = false

[[queries]]
name = "{QUERY}"
source = "sb"
kind = "topic"
value = "护肤心得"
schedule = "every 1h"
max_pages = 100

[schedule]
analyze = "manual"
plan = "manual"
"""


def _count(dbp: Path, sql: str) -> int:
    if not dbp.exists():
        return 0
    db = connect(dbp, migrate=False)
    try:
        return db.execute(sql).fetchone()[0]
    except Exception:
        return 0
    finally:
        db.close()


def _rows(dbp: Path) -> dict[str, set]:
    db = connect(dbp)
    try:
        c = db
        return {
            "posts": set(c.execute("SELECT platform, pid, uid, text, created_at, reposts, comments, likes, topics,"
                                   " content_hash, raw FROM posts")),
            "users": set(c.execute("SELECT platform, uid, name, followers, content_hash FROM users")),
            "links": set(c.execute("SELECT p.pid, q.query FROM post_queries q JOIN posts p ON p.id = q.post_id")),
        }
    finally:
        db.close()


def test_sigterm_mid_crawl_then_resume_matches_a_clean_crawl(tmp_path):
    from bot.find.sandbox import start_sandbox

    with start_sandbox(seed=3, n_users=800) as sandbox:
        # Clean reference crawl, in one go and at full speed (in-process: the
        # subprocess below is the one that matters).
        clean_settings = parse_settings(tomllib.loads(_config(sandbox.base_url, 0)))
        done = run_once_locked(tmp_path / "c.db", clean_settings, install_signals=False)
        assert [o.status for _, o in done] == ["ok"]
        clean_counts = done[0][1].counts
        reference = _rows(tmp_path / "c.db")
        assert len(reference["posts"]) > 100

        # The service, politely paced so SIGTERM lands mid-crawl.
        work = tmp_path / "work"
        work.mkdir()
        (work / "huaxiang.toml").write_text(_config(sandbox.base_url, 0.25), encoding="utf-8")
        dbp = work / "w.db"
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(dbp), "run"], cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while _count(dbp, "SELECT COUNT(*) FROM posts") < 40:  # a few pages are in
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the crawl did not start"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert f"crawl:{QUERY}: interrupted" in out

        db = connect(dbp)
        try:
            (job,) = store.job_runs(db)
            assert (job["job"], job["status"], job["trigger"]) == (f"crawl:{QUERY}", "interrupted", "catch-up")
            crawl = db.execute("SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
            assert crawl == "interrupted"
            cursor = db.execute("SELECT cursor FROM queries WHERE name = ?", (QUERY,)).fetchone()[0]
            assert cursor  # resumable
            assert store.read_lock(db) is None  # released
            stored = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
            assert 0 < stored < len(reference["posts"])  # it really stopped mid-crawl
            # Whole pages only: every stored post is linked to the query that found it.
            assert db.execute("SELECT COUNT(*) FROM posts p WHERE NOT EXISTS"
                                   " (SELECT 1 FROM post_queries q WHERE q.post_id = p.id)").fetchone()[0] == 0
        finally:
            db.close()

        lines: list[str] = []
        done = run_once_locked(dbp, parse_settings(tomllib.loads(_config(sandbox.base_url, 0))),
                               report=lines.append, install_signals=False)
        assert [o.status for _, o in done] == ["ok"], lines
        # Resumed from the cursor: no page fetched twice, none skipped.
        rest = done[0][1].counts
        assert job["counts"]["pages"] + rest["pages"] == clean_counts["pages"]
        assert job["counts"]["new_posts"] + rest["new_posts"] == clean_counts["new_posts"]
        resumed = _rows(dbp)
    assert resumed == reference
