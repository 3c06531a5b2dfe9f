"""The crawler against the sandbox: incremental, fault-tolerant, kill-safe, polite when blocked."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.find.crawler import run_crawl
from bot.find.sandbox import FaultConfig, start_sandbox
from storage import crawl as store
from storage.db import connect, transaction
from conftest import make_settings

N_USERS = 300
TOPIC = "健身打卡"
GROUP = "c91fca2fdb72155a2c9e0d60aca37fd8"        # 健身超话


def settings_for(db_path: Path, sources: dict[str, str], queries: list[dict], **src_kw):
    raw = {
        "database": {"path": str(db_path)},
        "sources": [{"name": name, "platform": "sandbox", "base_url": url, "min_interval_s": 0.0, "jitter_s": 0.0,
                     "backoff_s": 0.0, "timeout_s": 5.0, **src_kw} for name, url in sources.items()],
        "queries": queries,
    }
    return make_settings(raw)


def queries(source: str = "sb", pages: int = 100) -> list[dict]:
    return [
        {"name": "fit-topic", "source": source, "kind": "topic", "value": TOPIC, "max_pages": pages},
        {"name": "fit-group", "source": source, "kind": "group", "value": "健身超话", "max_pages": pages},
        {"name": "coffee-tag", "source": source, "kind": "tag", "value": "手冲", "max_pages": pages},
        {"name": "latte-kw", "source": source, "kind": "keyword", "value": "拿铁", "max_pages": 3},
    ]


def snapshot(db) -> dict:
    """Every stored row that matters, in a comparable form (no timestamps or run ids)."""
    c = db
    return {
        "posts": sorted(c.execute("SELECT platform, pid, uid, kind, text, created_at, topics, mentions, reposts, comments,"
                                  " likes, parent_pid, repost_of, group_id, region, content_hash FROM posts").fetchall()),
        "users": sorted(c.execute("SELECT platform, uid, name, bio, tags, followers, following, posts_count, verified,"
                                  " gender, location, content_hash, profile_fetched_at IS NOT NULL FROM users").fetchall()),
        "links": sorted(c.execute("SELECT p.pid, q.query FROM post_queries q JOIN posts p ON p.id = q.post_id").fetchall()),
        "authors": sorted(c.execute("SELECT uid, status FROM crawl_authors").fetchall()),
        "queries": sorted(c.execute("SELECT name, cursor, newest_id FROM queries").fetchall()),
    }


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(seed=11, n_users=N_USERS) as sb:
        yield sb


@pytest.fixture(scope="module")
def reference(sandbox, tmp_path_factory):
    """One uninterrupted, fault-free crawl to compare everything else with."""
    path = tmp_path_factory.mktemp("ref") / "ref.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries())
    summary = run_crawl(db, settings)
    assert [r.status for r in summary.runs] == ["ok"] * 4
    snap = snapshot(db)
    db.close()
    return summary, snap


def query_pids(snap: dict, query: str) -> set[str]:
    return {pid for pid, q in snap["links"] if q == query}


def test_first_crawl_collects_every_post_of_each_query_and_its_authors(sandbox, reference):
    summary, snap = reference
    w = sandbox.world
    assert query_pids(snap, "fit-topic") == set(w.topic_mids(TOPIC))
    group_pids = query_pids(snap, "fit-group")
    assert set(w.by_group[GROUP]) <= group_pids                   # plus retweeted originals shown in the feed
    assert query_pids(snap, "latte-kw") == set(w.search_mids("拿铁")[:30]) | {
        w.posts[m].repost_of for m in w.search_mids("拿铁")[:30] if w.posts[m].repost_of in w.posts}
    stored = {row[1]: row for row in snap["posts"]}
    for mid in w.by_group[GROUP]:
        assert stored[mid][13] == GROUP                            # group_id kept
    tagged = set(w.tag_uids("手冲"))
    done = {uid for uid, status in snap["authors"] if status == "done"}
    assert tagged <= done
    for uid in done:                                               # every author's first timeline page is stored
        assert set(w.users[uid].mids[:10]) <= set(stored)
    users = {row[1]: row for row in snap["users"]}
    assert all(users[uid][12] for uid in done)                     # full profile fetched
    counts = summary.as_counts()
    assert counts["new_posts"] == len(snap["posts"]) and counts["status_ok"] == 4
    assert counts["authors"] == len(done)


def test_raw_payloads_and_run_records_are_kept(sandbox, tmp_path):
    db = connect(tmp_path / "c.db")
    settings = settings_for(tmp_path / "c.db", {"sb": sandbox.base_url}, queries()[:1], fetch_authors=False)
    summary = run_crawl(db, settings)
    raw = db.execute("SELECT raw FROM posts LIMIT 1").fetchone()[0]
    assert json.loads(raw)["mid"]
    (run,) = store.recent_runs(db)
    r = summary.runs[0]
    assert run["status"] == "ok" and run["requests"] == r.requests > 0 and run["pages"] == r.pages
    assert run["new_posts"] == r.new_posts > 0 and run["bytes"] > 0


def test_second_crawl_with_nothing_new_costs_at_most_5_percent(tmp_path):
    with start_sandbox(seed=11, n_users=N_USERS) as sandbox:     # its own: this test publishes new posts
        _second_crawl(sandbox, tmp_path)


def _second_crawl(sandbox, tmp_path):
    path = tmp_path / "inc.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries())
    first = run_crawl(db, settings).as_counts()
    second = run_crawl(db, settings).as_counts()
    assert second["new_posts"] == 0 and second["new_users"] == 0 and second["updated_posts"] == 0
    assert second["requests"] <= 0.05 * first["requests"], (first["requests"], second["requests"])
    # and something new is picked up, stopping where the last pass began
    w = sandbox.world
    author = w.members["健身"][0]
    new = [w.publish(author, text=f"新的打卡 {i}", topics=[TOPIC]) for i in range(3)]
    third = run_crawl(db, settings, ["fit-topic"])
    (run,) = third.runs
    assert run.status == "ok" and run.new_posts == 3 and run.pages == 1
    stored = {r[0] for r in db.execute("SELECT pid FROM posts")}
    assert {p.mid for p in new} <= stored


def test_twenty_percent_faults_still_collect_every_post_exactly_once(reference, tmp_path, caplog):
    _, ref = reference
    faults = FaultConfig.spread(0.2, slow_s=0.4, retry_after_s=0, seed=7)
    caplog.set_level(logging.WARNING, logger="bot.find.crawler")
    with start_sandbox(seed=11, n_users=N_USERS, faults=faults) as sb:
        path = tmp_path / "faulty.db"
        db = connect(path)
        settings = settings_for(path, {"sb": sb.base_url}, queries(), timeout_s=0.2, max_retries=3, page_retries=6,
                                block_cooldown_s=0.0)
        statuses, faults_seen = [], {}
        for _ in range(8):                       # a run may end blocked/partial; the next one resumes
            summary = run_crawl(db, settings)
            statuses.append([r.status for r in summary.runs])
            for r in summary.runs:
                for k, v in r.faults.items():
                    faults_seen[k] = faults_seen.get(k, 0) + v
            pending = db.execute("SELECT COUNT(*) FROM crawl_authors WHERE status = 'pending'").fetchone()[0]
            if all(s == "ok" for s in statuses[-1]) and not pending and \
                    all(c is None for c in db.execute("SELECT cursor FROM queries").fetchall()[0]):
                break
        injected = sum(sb.faults.injected.values())
        assert injected > 20 and sum(faults_seen.values()) >= injected // 2
        snap = snapshot(db)
    assert snap["links"] == ref["links"]                           # every query's posts, once each
    assert {r[1] for r in snap["posts"]} == {r[1] for r in ref["posts"]}
    assert len(snap["posts"]) == len(ref["posts"])
    assert snap["authors"] == ref["authors"]
    assert any(k.startswith("http_4") or k in ("captcha", "login_redirect") for k in faults_seen)
    assert any("blocked by the platform" in rec.message for rec in caplog.records)


class Crash(BaseException):
    """Stands in for the process dying between two pages."""


@pytest.mark.parametrize("crash_after", [1, 9, 60])
def test_crash_between_pages_resumes_to_the_same_rows(sandbox, reference, tmp_path, crash_after):
    _, ref = reference
    path = tmp_path / "crash.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries())
    ticks = []

    def crash(n=1):
        ticks.append(n)
        if len(ticks) == crash_after:
            raise Crash()

    with pytest.raises(Crash):
        run_crawl(db, settings, progress=crash)
    interrupted = db.execute("SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert interrupted == "interrupted"
    db.close()
    db = connect(path)                                              # as after a restart
    summary = run_crawl(db, settings)
    assert all(r.status == "ok" for r in summary.runs)
    assert snapshot(db) == ref


def test_stop_event_checkpoints_the_page_and_resumes(sandbox, reference, tmp_path):
    _, ref = reference
    path = tmp_path / "stop.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries())
    stop = threading.Event()
    ticks = []

    def progress(n=1):
        ticks.append(n)
        if len(ticks) == 2:
            stop.set()

    summary = run_crawl(db, settings, stop=stop, progress=progress)
    assert summary.runs[0].status == "interrupted" and summary.runs[0].pages == 2
    assert {r.status for r in summary.runs[1:]} == {"interrupted"}
    assert db.execute("SELECT cursor FROM queries WHERE name = 'fit-topic'").fetchone()[0] == "p:3"
    run_crawl(db, settings)
    assert snapshot(db) == ref


def test_kill_9_mid_crawl_then_resume_matches_an_uninterrupted_crawl(sandbox, reference, tmp_path):
    _, ref = reference
    cfg = tmp_path / "huaxiang.toml"
    cfg.write_text(f"""
[[sources]]
name = "sb"
platform = "sandbox"
base_url = "{sandbox.base_url}"
min_interval_s = 0.004
jitter_s = 0.0
""" + "".join(f"""
[[queries]]
name = "{q['name']}"
source = "{q['source']}"
kind = "{q['kind']}"
value = "{q['value']}"
max_pages = {q['max_pages']}
""" for q in queries()), encoding="utf-8")
    db_path = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db_path), "crawl"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    progressed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if not db_path.exists():
            continue
        try:
            con = sqlite3.connect(db_path, timeout=1)
            progressed = con.execute("SELECT COALESCE(SUM(pages + authors), 0) FROM crawl_runs").fetchone()[0]
            con.close()
        except sqlite3.OperationalError:
            continue
        if progressed >= 12:
            break
    assert proc.poll() is None, "the crawl finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert progressed >= 12
    db = connect(db_path)                         # resume in-process (the same code as `huaxiang crawl`)
    from config import load_settings

    summary = run_crawl(db, load_settings(cfg))
    assert all(r.status == "ok" for r in summary.runs)
    assert snapshot(db) == ref
    statuses = [r[0] for r in db.execute("SELECT status FROM crawl_runs ORDER BY id")]
    assert "interrupted" in statuses and statuses[-1] == "ok"


def test_blocked_source_is_paused_and_other_sources_carry_on(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with start_sandbox(seed=1, n_users=N_USERS, faults=FaultConfig(http_418=1.0)) as bad, \
            start_sandbox(seed=1, n_users=N_USERS) as good:
        path = tmp_path / "b.db"
        db = connect(path)
        qs = [{"name": "bad-q", "source": "bad", "kind": "topic", "value": TOPIC, "max_pages": 2},
              {"name": "bad-q2", "source": "bad", "kind": "topic", "value": "拿铁", "max_pages": 2},
              {"name": "good-q", "source": "good", "kind": "topic", "value": TOPIC, "max_pages": 2}]
        settings = settings_for(path, {"bad": bad.base_url, "good": good.base_url}, qs, page_retries=2,
                                fetch_authors=False)
        summary = run_crawl(db, settings)
        by = {r.query: r for r in summary.runs}
        assert by["bad-q"].status == "blocked" and "http_418" in by["bad-q"].error
        assert by["bad-q"].requests == 3                           # backed off twice, then paused: no tight loop
        assert by["bad-q2"].status == "paused" and by["bad-q2"].requests == 0
        assert by["good-q"].status == "ok" and by["good-q"].new_posts > 0
        assert summary.paused_sources and summary.paused_sources[0]["source"] == "bad"
        assert any("http_418" in rec.message for rec in caplog.records)
        health = {h["name"]: h for h in store.source_health(db)}
        assert health["bad"]["status"] == "paused" and health["bad"]["paused_now"]
        assert health["bad"]["pause_reason"].startswith("http_418") and health["bad"]["consecutive_blocks"] == 1
        assert health["good"]["status"] == "ok"
        before = bad.total_requests
        again = run_crawl(db, settings)
        assert {r.query: r.status for r in again.runs} == {"bad-q": "paused", "bad-q2": "paused", "good-q": "ok"}
        assert bad.total_requests == before                         # a paused source is not asked at all


def test_cool_down_doubles_with_consecutive_blocks_and_resets_on_success(db):
    store.sync_source(db, "s", "weibo", "https://m.weibo.cn")
    now = "2026-11-22T00:00:00+00:00"
    assert store.pause_source(db, "s", "http_418: x", 900, 86400, now=now) == "2026-11-22T00:15:00+00:00"
    assert store.pause_source(db, "s", "captcha: x", 900, 86400, now=now) == "2026-11-22T00:30:00+00:00"
    assert store.pause_source(db, "s", "http_429: x", 900, 86400, retry_after_s=7200, now=now) == "2026-11-22T02:00:00+00:00"
    for _ in range(10):
        until = store.pause_source(db, "s", "http_418: x", 900, 86400, now=now)
    assert until == "2026-11-23T00:00:00+00:00"                     # capped
    assert store.source_pause(db, "s", now=now)["consecutive_blocks"] == 13
    assert store.source_pause(db, "s", now="2026-11-24T00:00:00+00:00") is None   # cool-down over
    store.mark_source_ok(db, "s")
    assert store.source_pause(db, "s", now=now) is None
    assert store.source_health(db)[0]["consecutive_blocks"] == 0


def test_a_live_lock_makes_a_second_crawl_skip_the_query(sandbox, tmp_path):
    path = tmp_path / "lock.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries()[:1])
    import socket

    import subprocess

    other = subprocess.Popen(["sleep", "60"])                        # another live process holds the lock
    try:
        db.execute("INSERT INTO crawl_locks (query, run_id, pid, host, started_at) VALUES ('fit-topic', 999, ?, ?, 'x')",
                        (other.pid, socket.gethostname()))
        (run,) = run_crawl(db, settings).runs
        assert run.status == "skipped" and run.requests == 0
    finally:
        other.kill()
        other.wait()
    db.execute("UPDATE crawl_locks SET pid = 2147483646")      # a dead process: taken over
    (run,) = run_crawl(db, settings).runs
    assert run.status == "ok"


def test_a_lock_left_by_this_process_is_taken_over(sandbox, tmp_path):
    """A long-running service whose database was read-only for a while could not
    release its lock; once writable again it must not skip the query forever."""
    import socket

    path = tmp_path / "own.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries()[:1])
    db.execute("INSERT INTO crawl_locks (query, run_id, pid, host, started_at) VALUES ('fit-topic', 999, ?, ?, 'x')",
                    (os.getpid(), socket.gethostname()))
    (run,) = run_crawl(db, settings).runs
    assert run.status == "ok" and run.requests > 0
    assert db.execute("SELECT COUNT(*) FROM crawl_locks").fetchone()[0] == 0


def test_crawl_command_prints_a_summary(sandbox, tmp_path, cli):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[[sources]]
name = "sb"
platform = "sandbox"
base_url = "{sandbox.base_url}"
min_interval_s = 0.0
jitter_s = 0.0
fetch_authors = false

[[queries]]
name = "fit-topic"
source = "sb"
kind = "topic"
value = "{TOPIC}"
max_pages = 2
""", encoding="utf-8")
    code, out, err = cli("--config", cfg, "--db", tmp_path / "cli.db", "crawl")
    assert code == 0, err
    assert "fit-topic" in out and "ok" in out and "new posts" in out
    code, out, err = cli("--config", cfg, "--db", tmp_path / "cli.db", "crawl", "--query", "nope")
    assert code == 1 and "no query named nope" in err


def test_a_query_does_not_stop_early_on_posts_another_query_found(sandbox, tmp_path):
    path = tmp_path / "overlap.db"
    db = connect(path)
    qs = [{"name": "kw", "source": "sb", "kind": "keyword", "value": f"#{TOPIC}#", "max_pages": 100},
          {"name": "topic", "source": "sb", "kind": "topic", "value": TOPIC, "max_pages": 100},
          {"name": "tag-a", "source": "sb", "kind": "tag", "value": "健身", "max_pages": 100},
          {"name": "tag-b", "source": "sb", "kind": "tag", "value": "健身", "max_pages": 100}]
    settings = settings_for(path, {"sb": sandbox.base_url}, qs, fetch_authors=False)
    (kw,) = run_crawl(db, settings, ["kw"]).runs
    (topic,) = run_crawl(db, settings, ["topic"]).runs
    mids = sandbox.world.topic_mids(TOPIC)
    assert kw.new_posts > 0 and topic.new_posts == 0                # the same posts...
    assert topic.pages == kw.pages == -(-len(mids) // 10)           # ...but the topic walks its whole feed
    linked = {r[0] for r in db.execute(
        "SELECT p.pid FROM post_queries q JOIN posts p ON p.id = q.post_id WHERE q.query = 'topic'")}
    assert set(mids) <= linked
    a = run_crawl(db, settings, ["tag-a"]).runs[0]
    b = run_crawl(db, settings, ["tag-b"]).runs[0]
    assert a.pages == b.pages > 1
    assert run_crawl(db, settings, ["tag-b"]).runs[0].pages == 1    # its own second run stops at once


def test_a_repost_keeps_its_original_whatever_order_its_copies_are_stored_in(sandbox, tmp_path):
    """A repost X that is itself reposted comes twice: in its author's timeline
    (with X's own retweeted_status) and embedded in the reposter's post (which
    does not say whether X is a repost). Which author is fetched first depends
    on when each was queued (found_at has whole seconds) and, after a kill -9,
    on which run picks them up: the stored row must not depend on it (it did:
    the kill -9 fault test, now and then on a loaded machine, ended with
    repost_of None where the clean crawl had the original)."""
    w = sandbox.world
    pairs = [(x, r) for r in w.posts.values() for x in [w.posts.get(r.repost_of or "")]
             if x is not None and not r.deleted_original and x.repost_of and not x.deleted_original
             and x.repost_of in w.posts and x.uid != r.uid
             and x.mid in w.users[x.uid].mids[:10] and r.mid in w.users[r.uid].mids[:10]]
    assert pairs, "the sandbox world has no repost of a repost within the first timeline pages"
    x, r = pairs[0]
    qs = [{"name": "nothing", "source": "sb", "kind": "keyword", "value": "没有这个词", "max_pages": 1}]
    rows = []
    for first, second in ((x.uid, r.uid), (r.uid, x.uid)):
        path = tmp_path / f"{first}-{second}.db"
        db = connect(path)
        settings = settings_for(path, {"sb": sandbox.base_url}, qs)
        store.sync_query(db, "nothing", "sb", "keyword", "没有这个词")
        store.mark_authors_pending(db, "sandbox", "sb", "nothing", [first], now="2020-01-01T00:00:00+00:00")
        store.mark_authors_pending(db, "sandbox", "sb", "nothing", [second], now="2020-01-01T00:00:01+00:00")
        (run,) = run_crawl(db, settings).runs
        assert run.status == "ok" and run.authors == 2
        rows.append(db.execute("SELECT pid, repost_of, text, content_hash FROM posts WHERE pid = ?",
                                    (x.mid,)).fetchone())
        db.close()
    assert rows[0] == rows[1]
    assert rows[0][1] == x.repost_of


def test_authors_of_a_query_part_way_through_its_pass_wait_for_that_query(sandbox, tmp_path):
    """After a kill mid-way through query B's pages, query A runs first on
    resume. Were A to fetch B's queued authors, their timelines would store
    posts before B's remaining pages list them, and those posts would get no
    comment fetch, unlike in an uninterrupted crawl."""
    w = sandbox.world
    a_author, b_author = sorted(w.users)[:2]
    qs = [{"name": "a", "source": "sb", "kind": "keyword", "value": "没有这个词", "max_pages": 1},
          {"name": "b", "source": "sb", "kind": "keyword", "value": "也没有这个词", "max_pages": 1}]
    path = tmp_path / "held.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, qs)
    store.sync_query(db, "a", "sb", "keyword", "没有这个词")
    store.sync_query(db, "b", "sb", "keyword", "也没有这个词")
    with transaction(db):
        store.mark_authors_pending(db, "sandbox", "sb", "b", [b_author], now="2020-01-01T00:00:00+00:00")
        store.mark_authors_pending(db, "sandbox", "sb", "a", [a_author], now="2020-01-01T00:00:01+00:00")
        store.checkpoint_query(db, "b", "2", None, pass_done=False)      # b stopped after its first page
    (run,) = run_crawl(db, settings, ["a"]).runs
    assert run.status == "ok" and run.authors == 1
    status = dict(db.execute("SELECT uid, status FROM crawl_authors"))
    assert status == {a_author: "done", b_author: "pending"}
    # Once b's pass is complete, anyone may fetch its authors.
    with transaction(db):
        store.checkpoint_query(db, "b", None, None, pass_done=True)
    assert store.pending_authors(db, "sb", 10, hold_queries=store.queries_mid_pass(db, ["b"])) == [b_author]
    db.close()
