"""Audience quality and speed benchmark: ``python bench/bench_audiences.py [DATA_DIR]``.

DATA_DIR defaults to ../shared/data (labelled public data; never shipped).
Everything runs through the product's own pipeline (``bot.understand.run.run_analysis``
on a temporary database); labels are used only to score the result.

Prints:
- user-level ARI / NMI on THUCNews dev users (seed 0, 20% noise, k auto)
- post-level V-measure on the 10,000 THUCNews dev headlines (k=10 and auto)
- user-level ARI / NMI on NLPCC 2016 Weibo users (k auto)
- analyze throughput on 100,000 posts vs single-core jieba.cut in the same run
- re-analysis time after adding 1% new posts, as a share of the full run

Users are built as in the data README: each user has one interest label and
3-15 posts drawn without replacement, 80% from its label and 20% from random
other labels.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score  # noqa: E402

from bot.understand.run import run_analysis  # noqa: E402
from config import Settings  # noqa: E402
from storage.db import connect, transaction  # noqa: E402
from storage.posts import upsert_posts  # noqa: E402
from storage.records import Post  # noqa: E402


SETTINGS = Settings()        # [analysis].encoder from --encoder (default "auto", as a user gets it)


def load_thucnews(data: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for line in (data / "thucnews" / "dev.txt").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            t, y = line.rsplit("\t", 1)
            texts.append(t)
            labels.append(int(y))
    return texts, labels


def load_nlpcc(data: Path) -> tuple[list[str], list[int]]:
    with open(data / "nlpcc2016" / "taskA_train.tsv", encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if len(r) >= 3][1:]
    targets = sorted({r[1] for r in rows})
    return [r[2] for r in rows], [targets.index(r[1]) for r in rows]


def load_pool(data: Path) -> list[str]:
    """All distinct sentences available, for the throughput corpus."""
    pool = load_thucnews(data)[0] + load_nlpcc(data)[0]
    for name in ("unlabeled.json", "train_few_all.json", "dev_few_all.json", "test_public.json"):
        p = data / "tnews" / name
        if p.exists():
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    pool.append(json.loads(line)["sentence"])
    return list(dict.fromkeys(pool))


def synthetic_users(labels: list[int], n_users: int, seed: int = 0, noise: float = 0.2) -> tuple[list[list[int]], list[int]]:
    rng = random.Random(seed)
    by: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by.setdefault(y, []).append(i)
    classes = sorted(by)
    users, truth = [], []
    for _ in range(n_users):
        y = rng.choice(classes)
        n = rng.randint(3, 15)
        n_noise = sum(rng.random() < noise for _ in range(n))
        posts = rng.sample(by[y], n - n_noise)
        others = [c for c in classes if c != y]
        for _ in range(n_noise):
            posts.append(rng.choice(by[rng.choice(others)]))
        users.append(posts)
        truth.append(y)
    return users, truth


def fresh_db(tmp: Path, name: str):
    path = tmp / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    return connect(path)


def store_users(db, texts: list[str], users: list[list[int]], prefix: str = "") -> None:
    posts = []
    for u, idxs in enumerate(users):
        for j, i in enumerate(idxs):
            posts.append(Post(platform="bench", pid=f"{prefix}{u}-{j}", uid=f"{prefix}u{u}", text=texts[i],
                              created_at=f"2026-11-{1 + j % 28:02d}T{(u + j) % 24:02d}:00:00+08:00"))
    for i in range(0, len(posts), 5000):
        with transaction(db):
            upsert_posts(db, posts[i:i + 5000])


def predicted(db) -> dict[str, int]:
    return {uid: aid for uid, aid in db.execute(
        "SELECT u.uid, m.audience_id FROM memberships m JOIN users u ON u.id = m.user_id")}


def bench_users(tmp: Path, name: str, texts: list[str], labels: list[int], n_users: int) -> tuple[float, float, int]:
    users, truth = synthetic_users(labels, n_users, seed=0, noise=0.2)
    db = fresh_db(tmp, name)
    store_users(db, texts, users)
    t = time.perf_counter()
    s = run_analysis(db, SETTINGS, k="auto")
    secs = time.perf_counter() - t
    got = predicted(db)
    y = [truth[u] for u in range(n_users)]
    p = [got.get(f"u{u}", -1) for u in range(n_users)]
    ari, nmi = adjusted_rand_score(y, p), normalized_mutual_info_score(y, p)
    print(f"{name} users: {n_users} users, {s.n_posts} posts, k auto -> {s.k} (true {len(set(labels))}):"
          f" ARI {ari:.3f}  NMI {nmi:.3f}  ({secs:.1f}s; features: {s.encoder})", flush=True)
    db.close()
    return ari, nmi, s.k


def bench_posts(tmp: Path, texts: list[str], labels: list[int]) -> None:
    db = fresh_db(tmp, "thuc_posts")
    store_users(db, texts, [[i] for i in range(len(texts))])
    for k in (10, "auto"):
        t = time.perf_counter()
        s = run_analysis(db, SETTINGS, k=k)
        secs = time.perf_counter() - t
        got = predicted(db)
        p = [got.get(f"u{i}", -1) for i in range(len(texts))]
        print(f"THUCNews headlines (posts): k={k} -> {s.k}: V-measure {v_measure_score(labels, p):.3f}"
              f"  ({secs:.1f}s; features: {s.encoder})", flush=True)
    db.close()


def bench_speed(tmp: Path, data: Path, n_posts: int) -> None:
    import jieba

    pool = load_pool(data)
    rng = random.Random(1)
    texts = [rng.choice(pool) + "，" + rng.choice(pool) for _ in range(n_posts)]
    extra = [rng.choice(pool) + "。" + rng.choice(pool) for _ in range(n_posts // 100)]
    # users with 3-15 posts
    users, i = [], 0
    while i < n_posts:
        n = rng.randint(3, 15)
        users.append(list(range(i, min(i + n, n_posts))))
        i += n
    db = fresh_db(tmp, "speed")
    store_users(db, texts, users)
    jieba.setLogLevel(60)
    jieba.initialize()
    t = time.perf_counter()
    n_tok = sum(1 for s in texts for _ in jieba.cut(s))
    t_jieba = time.perf_counter() - t
    t = time.perf_counter()
    s = run_analysis(db, SETTINGS, k="auto")
    t_full = time.perf_counter() - t
    print(f"throughput on {n_posts} posts ({len(users)} users, {os.cpu_count()} cores):", flush=True)
    print(f"  single-core jieba.cut: {t_jieba:.1f}s = {n_posts / t_jieba:,.0f} posts/s ({n_tok} tokens)")
    print(f"  huaxiang analyze end to end: {t_full:.1f}s = {n_posts / t_full:,.0f} posts/s"
          f" (k={s.k}; features: {s.encoder}; {', '.join(f'{k} {v:.1f}s' for k, v in s.timings.items())})")
    print(f"  ratio analyze / jieba.cut throughput: {t_jieba / t_full:.2f}x (target >= 1.5x)", flush=True)
    # 1% new posts spread over existing and new users
    new_users = []
    for j in range(len(extra)):
        new_users.append((rng.randrange(len(users)) if j % 2 else len(users) + j, j))
    posts = [Post(platform="bench", pid=f"new-{j}", uid=f"u{u}", text=extra[j],
                  created_at="2026-11-29T12:00:00+08:00") for u, j in new_users]
    with transaction(db):
        upsert_posts(db, posts)
    t = time.perf_counter()
    s2 = run_analysis(db, SETTINGS, k="auto")
    t_re = time.perf_counter() - t
    print(f"  re-analysis after +{len(extra)} posts (1%): {t_re:.1f}s = {t_re / t_full:.0%} of the full run"
          f" (target < 10%; tokenised {s2.tokenized}, reused {s2.reused};"
          f" {', '.join(f'{k} {v:.1f}s' for k, v in s2.timings.items())})", flush=True)
    db.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--only", choices=("thuc", "posts", "nlpcc", "speed"), action="append")
    ap.add_argument("--users", type=int, default=1000, help="synthetic THUCNews users (default 1000)")
    ap.add_argument("--speed-posts", type=int, default=100_000)
    ap.add_argument("--encoder", choices=("auto", "words", "semantic"), default="auto",
                    help="[analysis].encoder for every run (default auto: sentence vectors up to 20,000 posts)")
    args = ap.parse_args(argv)
    SETTINGS.analysis.encoder = args.encoder
    data = Path(args.data)
    if not (data / "thucnews" / "dev.txt").exists():
        print(f"{data}: no thucnews/dev.txt (pass the shared data folder)", file=sys.stderr)
        return 1
    only = set(args.only or ("thuc", "posts", "nlpcc", "speed"))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if "thuc" in only:
            texts, labels = load_thucnews(data)
            bench_users(tmp, "THUCNews", texts, labels, args.users)
        if "nlpcc" in only:
            texts, labels = load_nlpcc(data)
            bench_users(tmp, "NLPCC2016", texts, labels, 500)
        if "posts" in only:
            texts, labels = load_thucnews(data)
            bench_posts(tmp, texts, labels)
        if "speed" in only:
            bench_speed(tmp, data, args.speed_posts)
    print(f"peak memory (max RSS of this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
