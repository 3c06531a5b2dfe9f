"""The scheduler writes while people use the CLI and the review page on the
same file: nobody sees "database is locked", and every write lands."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from conftest import APPROVER_PASSWORD, approver, make_settings
from storage import service as store
from config.times import utcnow
from storage.db import connect, transaction
from storage.posts import upsert_posts
from storage.records import Post, User
from bot.service.scheduler import Service

N_FILES, PER_FILE, N_ITEMS = 2, 300, 30


class _ReviewServer:
    def __init__(self, server, thread):
        self.server, self.thread = server, thread
        port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _sign_in(web) -> None:
    """Approving needs an approver account: sign in as the one the test created."""
    r = web.post("/login", data={"name": "王经理", "password": APPROVER_PASSWORD})
    assert r.status_code == 303, r.text


def _serve_review(dbp, settings, token) -> _ReviewServer:
    import uvicorn

    from bot.engage.review.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(dbp, settings, token), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "review server did not start"
        time.sleep(0.02)
    return _ReviewServer(server, thread)


def _write_jsonl(path, prefix):
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(PER_FILE):
            fh.write(json.dumps({"id": f"{prefix}-{i}", "user_id": f"{prefix}u{i % 40}", "text": f"今天练腿 #健身# 第{i}天",
                                 "created_at": "2026-03-01T10:00:00+08:00"}, ensure_ascii=False) + "\n")


def test_cli_and_review_writes_all_land_while_the_scheduler_crawls_and_analyses(tmp_path):
    dbp = tmp_path / "t.db"
    db = connect(dbp)
    for i in range(N_ITEMS):
        db.execute("INSERT INTO queue (kind, status, text, created_at) VALUES ('reply', 'pending', ?, ?)",
                        (f"你好 {i}", utcnow()))
    approver(db, "王经理")
    db.close()
    settings = make_settings({
        "sources": [{"name": "sb", "platform": "sandbox"}],
        "queries": [{"name": n, "source": "sb", "kind": "topic", "value": n, "schedule": "every 1s"} for n in ("a", "b")],
        "schedule": {"analyze": "every 1s", "plan": "manual"},
    })
    crawled: list[str] = []
    guard = threading.Lock()
    counter = iter(range(10**6))

    def crawl(ctx):
        # Like the crawler: one transaction per page of 50 posts.
        for _ in range(3):
            with guard:
                run = next(counter)
            posts = [Post("sandbox", f"{ctx.spec.query}-{run}-{i}", f"u{i}", text=f"page {run} post {i}",
                          author=User("sandbox", f"u{i}", name=f"用户{i}")) for i in range(50)]
            with transaction(ctx.db):
                upsert_posts(ctx.db, posts, query=ctx.spec.query)
            with guard:
                crawled.extend(p.pid for p in posts)
        return {"pages": 3}

    def analyze(ctx):
        # Like analysis: one long write transaction over every user.
        with transaction(ctx.db) as conn:
            conn.execute("UPDATE users SET posts_count = (SELECT COUNT(*) FROM posts p WHERE p.user_id = users.id)")
            conn.execute("INSERT INTO audiences (auto_name, created_at) VALUES ('健身', ?)", (utcnow(),))
            time.sleep(0.3)
        return {"users": 1}

    problems: list[str] = []

    def cli_writer():
        for n in range(N_FILES):
            f = tmp_path / f"in{n}.jsonl"
            _write_jsonl(f, f"f{n}")
            r = subprocess.run([sys.executable, "-m", "bot", "--db", str(dbp), "import", str(f)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0 or "locked" in r.stderr:
                problems.append(f"import {n}: {r.returncode} {r.stderr}")

    def reviewer():
        # The review page's API over real HTTP: a person approving items one by one.
        import httpx

        token = "review-token-for-the-concurrency-test"
        server = _serve_review(dbp, settings, token)
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as web:
                _sign_in(web)
                csrf = web.get("/api/session").json()["csrf"]
                for item_id in range(1, N_ITEMS + 1):
                    r = web.post("/api/items/approve", json={"ids": [item_id], "by": "王经理"},
                                 headers={"X-CSRF-Token": csrf})
                    if r.status_code != 200 or not r.json()[0]["ok"]:
                        problems.append(f"approve {item_id}: {r.status_code} {r.text}")
                    listing = web.get("/api/items", params={"status": "pending"})
                    if listing.status_code != 200:
                        problems.append(f"list: {listing.status_code} {listing.text}")
        finally:
            server.stop()

    svc = Service(dbp, settings, {"crawl": crawl, "analyze": analyze}, heartbeat_s=0.2, workers=4)
    svc.start()
    t0 = time.monotonic()
    try:
        threads = [threading.Thread(target=f) for f in (cli_writer, reviewer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        while time.monotonic() - t0 < 3:
            time.sleep(0.1)
    finally:
        svc.shutdown()

    assert problems == []
    db = connect(dbp)
    try:
        history = store.job_runs(db, limit=1000)
        assert {r["status"] for r in history} <= {"ok"}, [r["error"] for r in history if r["status"] != "ok"]
        kinds = [r["kind"] for r in history]
        assert kinds.count("crawl") >= 4 and kinds.count("analyze") >= 2
        stored = {r[0] for r in db.execute("SELECT pid FROM posts WHERE platform = 'sandbox'")}
        assert stored == set(crawled) and len(crawled) == kinds.count("crawl") * 150
        assert db.execute("SELECT COUNT(*) FROM posts WHERE platform = 'import'").fetchone()[0] == N_FILES * PER_FILE
        assert db.execute("SELECT COUNT(*) FROM queue WHERE status = 'approved' AND approved_by = '王经理'").fetchone()[0] == N_ITEMS
        assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'approve'").fetchone()[0] == N_ITEMS
        assert db.execute("SELECT COUNT(*) FROM audiences").fetchone()[0] == kinds.count("analyze")
        assert db.execute("SELECT COUNT(*) FROM import_runs WHERE status = 'ok'").fetchone()[0] == N_FILES
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_real_crawls_and_analyses_alongside_the_review_page_and_the_cli(tmp_path):
    """The same, with the real crawler against the sandbox and the real analysis."""
    import httpx

    from bot.find.importer import import_file
    from bot.find.sandbox import start_sandbox

    dbp = tmp_path / "t.db"
    seed_file = tmp_path / "seed.jsonl"
    _write_jsonl(seed_file, "seed")
    db = connect(dbp)
    import_file(db, seed_file)  # something to analyse from the first run on
    for i in range(N_ITEMS):
        db.execute("INSERT INTO queue (kind, status, text, created_at) VALUES ('reply', 'pending', ?, ?)",
                        (f"你好 {i}", utcnow()))
    approver(db, "王经理")
    db.close()
    problems: list[str] = []
    with start_sandbox(seed=9, n_users=500) as sandbox:
        fast = {"min_interval_s": 0.02, "jitter_s": 0, "fetch_authors": True, "author_budget": 20}
        settings = make_settings({
            "sources": [{"name": "sb", "platform": "sandbox", "base_url": sandbox.base_url, **fast}],
            "queries": [{"name": t, "source": "sb", "kind": "topic", "value": t, "schedule": "every 2s"}
                        for t in ("健身打卡", "王者荣耀")],
            "schedule": {"analyze": "every 2s", "plan": "manual"},
            "analysis": {"k": 3},
        })
        token = "review-token-for-the-concurrency-test"
        server = _serve_review(dbp, settings, token)
        svc = Service(dbp, settings, heartbeat_s=0.2)
        svc.start()
        t0 = time.monotonic()
        try:
            imp = tmp_path / "more.jsonl"
            _write_jsonl(imp, "more")
            cli = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(dbp), "import", str(imp)], cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            readers = [subprocess.Popen([sys.executable, "-m", "bot", "--db", str(dbp), *args], cwd=tmp_path,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for args in (["status", "--json"], ["search", "健身"])]
            with httpx.Client(base_url=server.base_url, timeout=60) as web:
                _sign_in(web)
                csrf = web.get("/api/session").json()["csrf"]
                for item_id in range(1, N_ITEMS + 1):
                    r = web.post("/api/items/approve", json={"ids": [item_id], "by": "王经理"},
                                 headers={"X-CSRF-Token": csrf})
                    if r.status_code != 200 or not r.json()[0]["ok"]:
                        problems.append(f"approve {item_id}: {r.status_code} {r.text}")
                    if web.get("/api/counts").status_code != 200:
                        problems.append("counts failed")
                    time.sleep(0.05)
            outputs = []
            for proc in (cli, *readers):
                out, err = proc.communicate(timeout=120)
                outputs.append(out)
                if proc.returncode != 0 or "locked" in err:
                    problems.append(f"{proc.args[4:]}: {proc.returncode} {err}")
            assert json.loads(outputs[1])["service"]["running"] is True

            def enough() -> bool:
                done = [r for r in store.job_runs(probe, limit=1000) if r["status"] == "ok"]
                return sum(r["kind"] == "analyze" for r in done) >= 2 and sum(r["kind"] == "crawl" for r in done) >= 3

            probe = connect(dbp)
            try:
                while not enough() and time.monotonic() - t0 < 90:
                    time.sleep(0.2)
            finally:
                probe.close()
        finally:
            svc.shutdown()
            server.stop()
    assert problems == []
    db = connect(dbp)
    try:
        history = [r for r in store.job_runs(db, limit=1000)]
        # A job the shutdown caught mid-way is recorded as interrupted (a crawl
        # resumes from its checkpoint next time): at most the last run of each
        # job. Anything else but "ok" is a problem.
        stopped = [r for r in history if r["status"] == "interrupted"]
        assert len({r["job"] for r in stopped}) == len(stopped), stopped
        for r in stopped:
            assert max(x["id"] for x in history if x["job"] == r["job"]) == r["id"], (r, history)
        others = {r["status"] for r in history if r not in stopped}
        assert others == {"ok"}, [(r["job"], r["status"], r["error"]) for r in history]
        kinds = [r["kind"] for r in history if r["status"] == "ok"]
        assert kinds.count("analyze") >= 2 and kinds.count("crawl") >= 3
        assert db.execute("SELECT COUNT(*) FROM posts WHERE platform = 'sandbox'").fetchone()[0] > 100
        assert db.execute("SELECT COUNT(*) FROM posts WHERE platform = 'import'").fetchone()[0] == 2 * PER_FILE
        assert db.execute("SELECT COUNT(*) FROM queue WHERE status = 'approved'").fetchone()[0] == N_ITEMS
        assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'approve'").fetchone()[0] == N_ITEMS
        assert db.execute("SELECT COUNT(*) FROM memberships").fetchone()[0] > 0
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
