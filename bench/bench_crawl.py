"""Crawler benchmark: throughput with limits off, and rate-limit accuracy.

    .venv/bin/python bench/bench_crawl.py            # defaults: full sandbox world, 40 req/s limit check

1. Limits off: every sandbox topic, super-topic and a few tags are crawled
   through the real polite client, Weibo adapter, parser and SQLite upserts
   (authors' profiles and timelines included). Reports responses parsed and
   stored per second (target 200+), and the same pipeline minus HTTP
   (recorded payloads replayed through parse + upsert) to show the headroom.
2. A limit set: ``min_interval_s`` and ``jitter_s`` configured; reports the
   achieved request rate against the configured one (target within 5%).

The sandbox runs in its own process (``huaxiang sandbox serve``) so the server
does not share the crawler's interpreter lock, as with a real platform.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bot.find.crawler import run_crawl  # noqa: E402
from bot.find.sandbox.vocab import COMMUNITIES  # noqa: E402
from bot.find.sandbox.world import group_id  # noqa: E402
from config import parse_settings  # noqa: E402
from storage.db import connect, transaction  # noqa: E402


def start_server(seed: int, users: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "serve", "--port", "0", "--seed", str(seed),
                             "--users", str(users)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if " at " not in line:
        proc.kill()
        raise SystemExit(f"sandbox did not start: {line}{proc.stderr.read()}")
    base = line.strip().rsplit(" at ", 1)[1]
    for _ in range(100):
        try:
            httpx.get(f"{base}/_sandbox/world", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc, base


def settings(db_path: Path, base: str, queries: list[dict], **src) -> object:
    raw = {"database": {"path": str(db_path)},
           "sources": [{"name": "sb", "platform": "sandbox", "base_url": base, "backoff_s": 0.0, **src}],
           "queries": queries}
    return parse_settings(raw, "<bench>")


def all_queries(pages: int) -> list[dict]:
    qs = []
    for c in COMMUNITIES:
        for t in c.topics:
            qs.append({"name": f"topic-{t}", "source": "sb", "kind": "topic", "value": t, "max_pages": pages})
        qs.append({"name": f"group-{c.name}", "source": "sb", "kind": "group", "value": group_id(c.name), "max_pages": pages})
        qs.append({"name": f"tag-{c.tags[0]}", "source": "sb", "kind": "tag", "value": c.tags[0], "max_pages": 2})
    return qs


def bench_unlimited(base: str, tmp: Path, pages: int) -> dict:
    path = tmp / "unlimited.db"
    db = connect(path)
    s = settings(path, base, all_queries(pages), min_interval_s=0.0, jitter_s=0.0, author_budget=10_000)
    t0 = time.perf_counter()
    summary = run_crawl(db, s)
    elapsed = time.perf_counter() - t0
    c = summary.as_counts()
    responses = c["requests"]
    stored_pages = c["pages"] + c["authors"] * 2          # listing pages + (profile + timeline page) per author
    posts = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    users = db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    db.close()
    return {"elapsed_s": elapsed, "requests": responses, "pages": stored_pages, "listing_pages": c["pages"],
            "authors": c["authors"], "posts": posts, "users": users, "pages_per_s": stored_pages / elapsed,
            "requests_per_s": responses / elapsed, "statuses": sorted({r.status for r in summary.runs})}


def bench_parse_store(base: str, tmp: Path, n_pages: int = 300) -> dict:
    """Parse + upsert only: recorded topic pages replayed without HTTP."""
    from bot.find.sources.sandbox import SandboxSource
    from config.schema import SourceSettings

    payloads = []
    with httpx.Client() as client:
        for c in COMMUNITIES:
            for t in c.topics:
                for p in range(1, 20):
                    r = client.get(f"{base}/api/container/getIndex",
                                   params={"containerid": f"231522type=1&t=10&q=#{t}#", "page": p})
                    body = r.json()
                    if body.get("ok") != 1:
                        break
                    payloads.append(r.content)
                    if len(payloads) >= n_pages:
                        break
                if len(payloads) >= n_pages:
                    break
            if len(payloads) >= n_pages:
                break

    class Replay:
        def __init__(self) -> None:
            self.i = 0

        def get(self, url, params=None, headers=None):
            body = payloads[self.i % len(payloads)]
            self.i += 1
            return httpx.Response(200, content=body)

    from storage.posts import upsert_posts

    src = SandboxSource(SourceSettings(name="sb", platform="sandbox", base_url=base), Replay())
    db = connect(tmp / "replay.db")
    t0 = time.perf_counter()
    for _ in payloads:
        page = src.topic_posts("x")
        with transaction(db):
            upsert_posts(db, page.posts, query="replay")
    elapsed = time.perf_counter() - t0
    db.close()
    return {"pages": len(payloads), "elapsed_s": elapsed, "pages_per_s": len(payloads) / elapsed}


def bench_limited(base: str, tmp: Path, interval: float, jitter: float, requests: int) -> dict:
    path = tmp / "limited.db"
    db = connect(path)
    qs = [{"name": f"topic-{t}", "source": "sb", "kind": "topic", "value": t, "max_pages": 100}
          for c in COMMUNITIES for t in c.topics]
    s = settings(path, base, qs, min_interval_s=interval, jitter_s=jitter, fetch_authors=False)
    starts: list[float] = []

    def clock() -> float:                               # the client asks the clock once per request...
        now = time.monotonic()
        starts.append(now)
        return now

    def sleep(seconds: float) -> None:                  # ...and, if early, waits before sending it
        time.sleep(seconds)
        starts[-1] += seconds

    import threading

    stop = threading.Event()
    count = [0]

    def progress(n: int = 1) -> None:
        count[0] += n
        if count[0] >= requests:
            stop.set()

    t0 = time.perf_counter()
    summary = run_crawl(db, s, stop=stop, progress=progress, clock=clock, sleep=sleep)
    elapsed = time.perf_counter() - t0
    n = summary.as_counts()["requests"]
    db.close()
    configured = 1.0 / (interval + jitter / 2)         # jitter is uniform in [0, jitter]
    achieved = (n - 1) / (starts[-1] - starts[0]) if n > 1 else 0.0
    wall = n / elapsed
    return {"requests": n, "elapsed_s": elapsed, "configured_per_s": configured, "achieved_per_s": achieved,
            "ratio": achieved / configured, "wall_per_s": wall, "wall_ratio": wall / configured}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2400, help="sandbox world size (default 2400, the demo's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pages", type=int, default=10, help="page budget per query in the unlimited run")
    ap.add_argument("--interval", type=float, default=0.02, help="min_interval_s for the limited run")
    ap.add_argument("--jitter", type=float, default=0.01, help="jitter_s for the limited run")
    ap.add_argument("--limited-requests", type=int, default=300, help="requests in the limited run")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    proc, base = start_server(args.seed, args.users)
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            unlimited = bench_unlimited(base, tmp, args.pages)
            replay = bench_parse_store(base, tmp)
            limited = bench_limited(base, tmp, args.interval, args.jitter, args.limited_requests)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if args.json:
        print(json.dumps({"unlimited": unlimited, "parse_store_only": replay, "limited": limited}, indent=1))
        return 0
    print(f"sandbox: {args.users} users, seed {args.seed} (separate process at {base})")
    print("1. limits off, full pipeline (HTTP + parse + SQLite upsert, authors included):")
    print(f"   {unlimited['pages']} pages ({unlimited['listing_pages']} listing pages + {unlimited['authors']} authors x "
          f"profile+timeline), {unlimited['requests']} requests in {unlimited['elapsed_s']:.2f} s")
    print(f"   -> {unlimited['pages_per_s']:.0f} pages/s parsed and stored (target 200+: "
          f"{'met' if unlimited['pages_per_s'] >= 200 else 'NOT met'}); {unlimited['posts']} posts, {unlimited['users']} users stored")
    print(f"   parse + store alone (recorded pages, no HTTP): {replay['pages_per_s']:.0f} pages/s over {replay['pages']} pages")
    print(f"2. limit set (min_interval_s={args.interval}, jitter_s={args.jitter}):")
    print(f"   configured {limited['configured_per_s']:.2f} req/s, achieved {limited['achieved_per_s']:.2f} req/s over "
          f"{limited['requests']} requests in {limited['elapsed_s']:.2f} s -> ratio {limited['ratio']:.3f} "
          f"({'within' if abs(limited['ratio'] - 1) <= 0.05 else 'NOT within'} 5%)")
    print(f"   counting setup and the last page's storing too: {limited['wall_per_s']:.2f} req/s "
          f"(ratio {limited['wall_ratio']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
