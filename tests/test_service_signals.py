"""Signals against a real process: the first stops gracefully, a second at once, safely."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from storage import service as store
from storage.db import connect
from bot.service.lock import ServiceLock

REPO = Path(__file__).resolve().parent.parent

# A service whose crawl ignores the stop request and writes page after page
# in transactions: only the second signal can end it.
STUBBORN = textwrap.dedent("""
    import sys, time
    from config import parse_settings
    from storage.db import transaction
    from bot.service.scheduler import Service

    def crawl(ctx):
        for page in range(10_000):
            with transaction(ctx.db) as conn:
                for i in range(20):
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (f"p{page}-{i}",))
                    time.sleep(0.01)
            if page == 1:
                print("crawling", flush=True)
            time.sleep(0.05)  # the network wait between pages
        return {}

    settings = parse_settings({
        "sources": [{"name": "sb", "platform": "sandbox"}],
        "queries": [{"name": "a", "source": "sb", "kind": "topic", "value": "a", "schedule": "every 1h"}],
        "schedule": {"analyze": "manual", "plan": "manual"},
    })
    sys.exit(Service(sys.argv[1], settings, {"crawl": crawl}, heartbeat_s=0.2).serve())
""")


def test_a_second_signal_stops_at_once_without_corrupting_anything(tmp_path):
    dbp = tmp_path / "t.db"
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN, str(dbp)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "crawling"
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # the first signal waits for the job
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, proc.stderr.read()
    db = connect(dbp)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pages = {}
        for (key,) in db.execute("SELECT key FROM meta WHERE key LIKE 'p%'"):
            page = key.split("-")[0]
            pages[page] = pages.get(page, 0) + 1
        assert pages and set(pages.values()) == {20}  # whole pages only, never half of one
        (run,) = store.job_runs(db)
        assert run["status"] == "interrupted" and run["error"] == "stopped at once by a second signal"
        assert store.read_lock(db) is None and store.load_schedule(db) == {}
    finally:
        db.close()
    with ServiceLock(dbp, wait_s=0):
        pass
