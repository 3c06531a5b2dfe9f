"""Import throughput: `huaxiang import` of N generated posts (issue 2: 100,000 in under 30 s).

Run: .venv/bin/python bench/bench_import.py [--posts 100000] [--users 10000]
Times the real CLI in a child process (interpreter start-up included), then a
second import of the same file (all duplicates), and prints rows per second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ["健身", "增肌", "撸铁", "咖啡", "手冲", "拿铁", "篮球", "球鞋", "护肤", "精华", "旅行", "露营",
         "数码", "相机", "耳机", "游戏", "母婴", "辅食", "今天", "真的", "推荐", "分享", "打卡", "周末"]
TOPICS = ["健身打卡", "咖啡探店", "护肤心得", "旅行日记", "数码测评", "篮球", "游戏日常", "育儿经验"]


def generate(path: Path, n_posts: int, n_users: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n_posts):
            uid = f"u{rng.randrange(n_users)}"
            text = "".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
            if rng.random() < 0.4:
                text = f"#{rng.choice(TOPICS)}# " + text
            row = {"id": f"p{i}", "user_id": uid, "user_name": f"用户{uid}", "text": text,
                   "created_at": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+08:00"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def timed_import(db: Path, src: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bot", "--db", str(db), "import", str(src)],
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, db = Path(tmp) / "posts.jsonl", Path(tmp) / "bench.db"
        generate(src, args.posts, args.users)
        size_mb = os.path.getsize(src) / 1e6
        first, out1 = timed_import(db, src)
        second, out2 = timed_import(db, src)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"posts: {args.posts:,} from {args.users:,} users ({size_mb:.1f} MB JSONL)")
        print(f"first import:  {first:6.2f} s  {args.posts / first:9,.0f} posts/s   [{out1}]")
        print(f"second import: {second:6.2f} s  {args.posts / second:9,.0f} posts/s   [{out2}]")
        print(f"database size: {os.path.getsize(db) / 1e6:.1f} MB; peak child RSS {peak_mb:.0f} MB")
        print(f"target: 100,000 posts under 30 s -> {'met' if first * 100_000 / args.posts < 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
