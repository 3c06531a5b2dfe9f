"""``huaxiang status``: service, last/next runs, errors, queue, paused sources, size."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from conftest import make_settings
from storage import service as store
from config.times import utcnow
from storage.db import connect
from bot.commands.status import collect_status
from bot.service.scheduler import Service

UTC = timezone.utc

CONFIG = """
[[sources]]
name = "wb"
platform = "weibo"

[[queries]]
name = "fitness"
source = "wb"
kind = "topic"
value = "健身"
schedule = "every 30m"

[schedule]
analyze = "0 * * * *"
plan = "manual"
"""


def seed(dbp):
    db = connect(dbp)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    rid = store.start_job_run(db, "crawl:fitness", "crawl", "schedule", 1, now=t0.isoformat(timespec="seconds"))
    store.finish_job_run(db, rid, "partial", {"new_posts": 12}, "blocked: captcha")
    rid = store.start_job_run(db, "analyze", "analyze", "schedule", 1, now=t0.isoformat(timespec="seconds"))
    store.finish_job_run(db, rid, "failed", {}, "ValueError: too few users")
    paused_until = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    db.execute("INSERT INTO sources (name, platform, status, paused_until, pause_reason, consecutive_blocks)"
                    " VALUES ('wb', 'weibo', 'paused', ?, 'captcha', 3)", (paused_until,))
    db.execute("INSERT INTO sources (name, platform) VALUES ('rss', 'rss')")
    for status in ("pending", "pending", "approved"):
        db.execute("INSERT INTO queue (kind, status, created_at) VALUES ('reply', ?, ?)", (status, utcnow()))
    db.close()
    return paused_until


def test_status_shows_every_fact_when_the_service_is_stopped(tmp_path, cli):
    (tmp_path / "huaxiang.toml").write_text(CONFIG, encoding="utf-8")
    paused_until = seed(tmp_path / "t.db")
    code, out, err = cli("--db", "t.db", "status", "--json")
    assert code == 0, err
    st = json.loads(out)
    assert st["service"]["running"] is False
    assert st["database"]["bytes"] > 0
    jobs = {j["job"]: j for j in st["jobs"]}
    assert set(jobs) == {"crawl:fitness", "analyze"}
    assert jobs["crawl:fitness"]["last_status"] == "partial" and jobs["crawl:fitness"]["last_counts"] == {"new_posts": 12}
    nxt = datetime.fromisoformat(jobs["crawl:fitness"]["next_run"])
    assert timedelta(minutes=23) < nxt - datetime.now(UTC) <= timedelta(minutes=25)  # 30m after the last run
    assert jobs["analyze"]["last_error"] == "ValueError: too few users"
    assert [e["job"] for e in st["errors"]] == ["analyze", "crawl:fitness"]
    assert st["queue"]["pending"] == 2 and st["queue"]["approved"] == 1
    assert [(s["name"], s["paused_until"]) for s in st["paused_sources"]] == [("wb", paused_until)]

    code, out, _ = cli("--db", "t.db", "status")
    assert code == 0
    assert "service: not running" in out
    assert "database: t.db (" in out
    assert "crawl:fitness" in out and "every 30m" in out and "partial" in out
    assert "analyze failed: ValueError: too few users" in out
    assert "queue: pending 2, approved 1" in out
    assert f"wb: paused until {paused_until} (captcha, 3 block(s) in a row)" in out


def test_status_of_a_fresh_database(tmp_path, cli):
    connect(tmp_path / "huaxiang.db").close()     # status reads; it never creates a database
    code, out, err = cli("status")
    assert code == 0, err
    assert "service: not running" in out and "queue: empty" in out and "paused sources: none" in out
    assert "never" in out and "at start" in out  # jobs that never ran are owed at start


def test_status_while_the_service_runs_shows_holder_heartbeat_and_next_runs(tmp_path):
    settings = make_settings({
        "sources": [{"name": "wb", "platform": "weibo"}],
        "queries": [{"name": "fitness", "source": "wb", "kind": "topic", "value": "健身", "schedule": "every 30m"}],
        "schedule": {"analyze": "0 3 1 1 *", "plan": "manual"},
    })
    dbp = tmp_path / "t.db"
    seed(dbp)
    svc = Service(dbp, settings, {"crawl": lambda ctx: {}, "analyze": lambda ctx: {}}, heartbeat_s=0.2)
    svc.start()
    try:
        db = connect(dbp)
        st = collect_status(db, dbp, settings)
        db.close()
    finally:
        svc.shutdown()
    assert st["service"]["running"] and st["service"]["pid"] == os.getpid()
    assert st["service"]["heartbeat_age_s"] is not None and st["service"]["heartbeat_age_s"] < 30
    jobs = {j["job"]: j for j in st["jobs"]}
    assert datetime.fromisoformat(jobs["analyze"]["next_run"]) > datetime.now(UTC) + timedelta(days=1) or \
        datetime.now(UTC).month == 12  # next 1 January, 03:00 Shanghai time
    crawl_next = datetime.fromisoformat(jobs["crawl:fitness"]["next_run"])
    assert timedelta(minutes=20) < crawl_next - datetime.now(UTC) <= timedelta(minutes=30)
