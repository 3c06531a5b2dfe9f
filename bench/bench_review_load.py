"""Review API under concurrent load while a crawl writes to the same database.

Run: .venv/bin/python bench/bench_review_load.py [--clients 50] [--seconds 60]

Three processes besides this one, all on loopback: the sandbox platform, the
review page (`huaxiang review`), and a writer that keeps crawling the sandbox
into the same SQLite file (`huaxiang crawl` over a few dozen topics, groups
and tags, run again and again). This process is the second process the issue
asks for: N concurrent clients reading the queue, opening items and approving,
rejecting and editing with the CSRF token. Prints requests per second, p50/p99
latency, errors, "database is locked" occurrences (in any process), and checks
that every accepted write is in the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOPICS = ["健身打卡", "增肌减脂", "跑步日记", "居家健身", "篮球", "NBA", "野球场", "CBA", "护肤心得", "敏感肌", "防晒",
          "美妆分享", "育儿日常", "辅食", "宝宝成长记", "母婴好物", "咖啡探店", "手冲咖啡", "拿铁", "咖啡日常", "王者荣耀",
          "原神", "游戏日常", "主机游戏", "旅行日记", "周末去哪儿", "自驾游", "旅行攻略", "数码评测", "手机摄影", "新机开箱", "科技生活"]
GROUPS = ["健身超话", "篮球超话", "护肤超话", "母婴超话", "咖啡超话", "游戏超话", "旅行超话", "数码超话"]
TAGS = ["撸铁", "马拉松", "瑜伽", "美妆", "宝妈", "探店", "电竞", "摄影", "露营", "手机"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(path: Path, db: Path, base_url: str, queries: list[tuple[str, str, int]]) -> Path:
    lines = [f'[database]\npath = "{db}"\n',
             f'[[sources]]\nname = "sandbox"\nplatform = "sandbox"\nbase_url = "{base_url}"\n'
             'min_interval_s = 0.0\njitter_s = 0.0\nfetch_authors = true\n',
             '[engagement]\nquiet_hours = ""\nmin_spacing_s = 0.0\nspacing_jitter_s = 0.0\nmax_items_per_plan = 400\n']
    for i, (kind, value, pages) in enumerate(queries):
        lines.append(f'[[queries]]\nname = "q{i}-{kind}"\nsource = "sandbox"\nkind = "{kind}"\nvalue = "{value}"\n'
                     f'max_pages = {pages}\n')
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"huaxiang {' '.join(args)} failed: {proc.stderr.strip()[-400:]}")
    return proc


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


class Writer(threading.Thread):
    """Crawls again and again until stopped; records each run's outcome."""

    def __init__(self, cfg: Path, db: Path):
        super().__init__(daemon=True)
        self.cfg, self.db = cfg, db
        self.stop = threading.Event()
        self.runs: list[tuple[int, str]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            proc = cli("--db", str(self.db), "--config", str(self.cfg), "crawl", check=False)
            self.runs.append((proc.returncode, proc.stderr))


async def load(base: str, token: str, clients: int, seconds: float, ids: list[int], seed: int = 0) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30,
                                 limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients)) as client:
        csrf = (await client.get("/api/session")).json()["csrf"]
        lat: list[float] = []
        codes: dict[int, int] = {}
        errors: list[str] = []
        accepted_writes = 0
        deadline = time.monotonic() + seconds

        async def one(rng: random.Random) -> None:
            nonlocal accepted_writes
            while time.monotonic() < deadline:
                r = rng.random()
                item = rng.choice(ids)
                start = time.perf_counter()
                try:
                    if r < 0.35:
                        resp = await client.get("/api/items", params={"status": "pending", "limit": 100})
                    elif r < 0.60:
                        resp = await client.get("/api/counts")
                    elif r < 0.85:
                        resp = await client.get(f"/api/items/{item}")
                    elif r < 0.93:
                        resp = await client.post(f"/api/items/{item}/edit", headers={"X-CSRF-Token": csrf},
                                                 json={"text": f"压测编辑 {rng.random():.6f}", "by": "bench"})
                    elif r < 0.97:
                        resp = await client.post("/api/items/approve", headers={"X-CSRF-Token": csrf},
                                                 json={"ids": [item], "by": "bench"})
                    else:
                        resp = await client.post("/api/items/reject", headers={"X-CSRF-Token": csrf},
                                                 json={"ids": [item], "by": "bench", "reason": "load test"})
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                lat.append(time.perf_counter() - start)
                codes[resp.status_code] = codes.get(resp.status_code, 0) + 1
                if resp.status_code >= 500:
                    errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
                elif resp.request.method == "POST" and resp.status_code == 200:
                    body = resp.json()
                    changes = body if isinstance(body, list) else [{"ok": True}]
                    accepted_writes += sum(1 for c in changes if c.get("ok"))

        started = time.perf_counter()
        await asyncio.gather(*(one(random.Random(seed + i)) for i in range(clients)))
        elapsed = time.perf_counter() - started
    lat.sort()
    return {"requests": len(lat), "elapsed": elapsed, "codes": codes, "errors": errors, "accepted_writes": accepted_writes,
            "p50": statistics.median(lat) if lat else 0, "p99": lat[int(len(lat) * 0.99) - 1] if lat else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hx-load-"))
    db = tmp / "load.db"
    sp, rp = free_port(), free_port()
    procs = []
    try:
        sandbox = subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "serve", "--port", str(sp), "--seed", "0"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(sandbox)
        base_url = f"http://127.0.0.1:{sp}"
        wait_http(base_url + "/_sandbox/actions")
        seed_cfg = config(tmp / "seed.toml", db, base_url, [("topic", t, 3) for t in TOPICS[:8]])
        for step in ("crawl", "analyze", "plan"):
            cli("--db", str(db), "--config", str(seed_cfg), step)
        listing = cli("--db", str(db), "--config", str(seed_cfg), "queue", "list", "--json").stdout
        ids = [json.loads(line)["id"] for line in listing.splitlines() if line.strip()]
        if not ids:
            raise SystemExit("the plan produced no queue items to review")
        review_log = open(tmp / "review.log", "w")
        review = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db), "--config", str(seed_cfg), "review",
                                   "--port", str(rp)], stdout=review_log, stderr=subprocess.STDOUT, text=True)
        procs.append(review)
        base = f"http://127.0.0.1:{rp}"
        wait_http(base + "/api/counts")
        token = Path(f"{db}.review-token").read_text(encoding="utf-8").strip()
        write_cfg = config(tmp / "write.toml", db, base_url,
                           [("topic", t, 5) for t in TOPICS[8:]] + [("group", g, 5) for g in GROUPS] + [("tag", t, 3) for t in TAGS])
        import sqlite3

        conn = sqlite3.connect(db)
        posts0 = conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        audit0 = conn.execute("SELECT COUNT(*) FROM audit_log WHERE actor = 'bench'").fetchone()[0]
        writer = Writer(write_cfg, db)
        writer.start()
        time.sleep(1.0)  # let the first crawl get going
        print(f"{args.clients} clients for {args.seconds:.0f} s against {base} while `huaxiang crawl` writes; "
              f"{len(ids)} queue items, {posts0} posts before", flush=True)
        result = asyncio.run(load(base, token, args.clients, args.seconds, ids))
        writer.stop.set()
        writer.join(timeout=300)
        posts1 = conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        audit1 = conn.execute("SELECT COUNT(*) FROM audit_log WHERE actor = 'bench'").fetchone()[0]
        conn.close()
        review.terminate()
        review.wait(timeout=30)
        review_log.close()
        logs = (tmp / "review.log").read_text(encoding="utf-8") + "".join(err for _, err in writer.runs)
        locked = logs.count("database is locked")
        failed_crawls = [rc for rc, _ in writer.runs if rc not in (0,)]
        rps = result["requests"] / result["elapsed"]
        print(f"requests: {result['requests']:,} in {result['elapsed']:.1f} s = {rps:,.0f} req/s")
        print(f"latency: p50 {result['p50'] * 1000:.1f} ms, p99 {result['p99'] * 1000:.1f} ms")
        print(f"status codes: {dict(sorted(result['codes'].items()))}")
        print(f"errors (5xx or transport): {len(result['errors'])}" + (f" e.g. {result['errors'][0]}" if result["errors"] else ""))
        print(f'"database is locked" in any log: {locked}')
        print(f"crawl runs during the load: {len(writer.runs)} (non-zero exits: {len(failed_crawls)}), "
              f"posts {posts0:,} -> {posts1:,} (+{posts1 - posts0:,})")
        print(f"accepted review writes: {result['accepted_writes']:,}; bench rows in audit log: {audit1 - audit0:,}")
        ok = not result["errors"] and locked == 0 and not failed_crawls and audit1 - audit0 >= result["accepted_writes"]
        print("verdict: " + ("zero errors, zero locks, every accepted write landed" if ok else "PROBLEMS (see above)"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    os.environ.setdefault("HUAXIANG_SANDBOX_TOKEN", "bench")
    main()
