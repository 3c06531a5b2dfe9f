"""Peak memory and time of ``analyze`` at scale:
``python bench/bench_audiences_scale.py [DATA_DIR] [--posts 1000000]``.

Builds a database of N posts (two random sentences from the shared data per
post, 3-15 posts per user) in a temporary folder, then runs the analysis in a
fresh child process and reports that process's peak resident memory (the
target is under 2 GB for 1M posts) and wall time.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def build(db_path: Path, data: Path, n_posts: int) -> int:
    from bench_audiences import load_pool
    from storage.db import connect, transaction
    from storage.posts import upsert_posts
    from storage.records import Post

    pool = load_pool(data)
    rng = random.Random(2)
    db = connect(db_path)
    made, u = 0, 0
    batch: list[Post] = []
    while made < n_posts:
        n = rng.randint(3, 15)
        for j in range(min(n, n_posts - made)):
            batch.append(Post(platform="bench", pid=f"{u}-{j}", uid=f"u{u}",
                              text=rng.choice(pool) + "，" + rng.choice(pool),
                              created_at=f"2026-11-{1 + j % 28:02d}T{(u + j) % 24:02d}:00:00+08:00"))
            made += 1
        u += 1
        if len(batch) >= 20000:
            with transaction(db):
                upsert_posts(db, batch)
            batch = []
    if batch:
        with transaction(db):
            upsert_posts(db, batch)
    db.close()
    return u


def child(db_path: str, targets: bool = False) -> None:
    from bot.understand.run import run_analysis
    from config import Settings
    from config.schema import AudienceSettings
    from storage.db import connect

    db = connect(db_path)
    settings = Settings()
    if targets:     # two seeded targets, as a campaign has: relevance by meaning for every user
        settings.audiences = [AudienceSettings(name="球迷", seeds=["篮球", "足球"], description="关注体育比赛和球星的球迷"),
                              AudienceSettings(name="购房者", seeds=["买房", "房价"], description="打算买房、关心楼市的人")]
    t = time.perf_counter()
    s = run_analysis(db, settings)
    print(json.dumps({"seconds": time.perf_counter() - t, "k": s.k, "users": s.n_users, "posts": s.n_posts,
                      "timings": s.timings,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--targets", action="store_true", help="configure two seeded targets (relevance for every user)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.targets)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "scale.db"
        t = time.perf_counter()
        users = build(db_path, Path(args.data), args.posts)
        print(f"built {args.posts} posts by {users} users in {time.perf_counter() - t:.0f}s", flush=True)
        cmd = [sys.executable, __file__, "--child", str(db_path)] + (["--targets"] if args.targets else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"analyze {r['posts']} posts / {r['users']} users: {r['seconds']:.0f}s, k={r['k']},"
              f" peak RSS of the analysing process {r['peak_mb']:.0f} MB (target < 2048 MB); stages: "
              + ", ".join(f"{k} {v:.0f}s" for k, v in r["timings"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
