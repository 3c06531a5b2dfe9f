"""Audience quality and speed benchmark: ``python bench/bench_audiences.py [DATA_DIR]``.

DATA_DIR defaults to ../shared/data (labelled public data; never shipped).
Everything runs through the product's own pipeline (``bot.understand.run.run_analysis``
on a temporary database); labels are used only to score the result.

Prints:
- user-level ARI / NMI on THUCNews dev users (seed 0, 20% noise, k auto)
- post-level V-measure on the 10,000 THUCNews dev headlines (k=10 and auto)
- user-level ARI / NMI on NLPCC 2016 Weibo users (k auto)
- analyze throughput on 100,000 posts vs single-core jieba.cut in the same run
  (timed alternately ``--repeat`` times, best of each; ``--speed-texts headline``
  for one ~20-character sentence per post instead of two; ``--speed-texts
  thucnews --speed-users 1000 --cli`` for issue 18's measurement: THUCNews
  headlines, 100 posts per user drawn by interest, ``huaxiang analyze`` in a
  fresh process, imports included)
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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score  # noqa: E402

from bot.understand.run import run_analysis  # noqa: E402
from config import Settings  # noqa: E402
from storage.analysis_runs import last_analysis_run  # noqa: E402
from storage.db import connect, opened, transaction  # noqa: E402
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


def _user_sizes(n_posts: int, n_users: int, rng: random.Random) -> list[int]:
    """Posts per user: ``n_posts`` shared evenly by ``n_users``, or 3-15 each when ``n_users`` is 0."""
    if n_users:
        base, extra = divmod(n_posts, n_users)
        return [base + (u < extra) for u in range(n_users)]
    sizes, i = [], 0
    while i < n_posts:
        sizes.append(min(rng.randint(3, 15), n_posts - i))
        i += sizes[-1]
    return sizes


def _interest_texts(data: Path, sizes: list[int], rng: random.Random, noise: float = 0.2) -> list[str]:
    """THUCNews headlines user by user: each user has one label and draws 80%
    of its posts from it (without replacement while the label has enough), 20% from others."""
    heads, labels = load_thucnews(data)
    by: dict[int, list[str]] = {}
    for t, y in zip(heads, labels):
        by.setdefault(y, []).append(t)
    classes = sorted(by)
    texts: list[str] = []
    for n in sizes:
        y = rng.choice(classes)
        n_noise = sum(rng.random() < noise for _ in range(n))
        own = n - n_noise
        texts += rng.sample(by[y], own) if own <= len(by[y]) else [rng.choice(by[y]) for _ in range(own)]
        texts += [rng.choice(by[rng.choice([c for c in classes if c != y])]) for _ in range(n_noise)]
    return texts


def speed_corpus(data: Path, n_posts: int, kind: str,
                 n_users: int = 0) -> tuple[list[str], list[str], list[list[int]], random.Random]:
    """(posts, 1% more posts, users as lists of post indexes, the generator to
    go on with): ``pair`` joins two random sentences of the pool (~50
    characters, the figures published so far); ``headline`` is one random
    sentence per post (~20 characters, the issue's "headline-length");
    ``thucnews`` is labelled THUCNews headlines drawn by each user's interest.
    Users have 3-15 posts, or with ``n_users`` the posts are shared evenly."""
    pool = load_pool(data)
    rng = random.Random(1)
    if kind == "thucnews":
        sizes = _user_sizes(n_posts, n_users, rng)
        texts = _interest_texts(data, sizes, rng)
        extra = [rng.choice(pool) for _ in range(n_posts // 100)]
    else:
        if kind == "headline":
            texts = [rng.choice(pool) for _ in range(n_posts)]
            extra = [rng.choice(pool) for _ in range(n_posts // 100)]
        else:
            texts = [rng.choice(pool) + "，" + rng.choice(pool) for _ in range(n_posts)]
            extra = [rng.choice(pool) + "。" + rng.choice(pool) for _ in range(n_posts // 100)]
        sizes = _user_sizes(n_posts, n_users, rng)
    users, i = [], 0
    for n in sizes:
        users.append(list(range(i, i + n)))
        i += n
    return texts, extra, users, rng


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the tokenising workers, a CLI process)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one call."""
    w, c = time.perf_counter(), _cpu_seconds()
    out = fn()
    return time.perf_counter() - w, _cpu_seconds() - c, out


def _copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(dst) + suffix):
            os.remove(str(dst) + suffix)
    shutil.copyfile(src, dst)
    return dst


def _analyze_here(path: Path) -> dict:
    """run_analysis in this process (imports already paid): what the run reports."""
    db = connect(path)
    try:
        s = run_analysis(db, SETTINGS, k="auto")
    finally:
        db.close()
    return {"k": s.k, "encoder": s.encoder, "timings": s.timings, "tokenized": s.tokenized, "reused": s.reused}


def _analyze_cli(path: Path) -> dict:
    """``huaxiang --db PATH analyze`` in a fresh process, imports included (what a user waits for)."""
    cmd = [sys.executable, "-m", "bot", "--db", str(path), "-q", "analyze", "--k", "auto",
           "--encoder", SETTINGS.analysis.encoder]
    subprocess.run(cmd, cwd=path.parent, check=True, stdout=subprocess.DEVNULL)
    with opened(path) as db:
        run = last_analysis_run(db)
    m = json.loads(run["metrics"])
    return {"k": run["k"], "encoder": m["encoder"], "timings": m["timings"], "tokenized": m["tokenized"],
            "reused": m["reused"]}


def bench_speed(tmp: Path, data: Path, n_posts: int, kind: str = "pair", repeat: int = 2,
                n_users: int = 0, cli: bool = False) -> None:
    """jieba.cut and analyze timed alternately ``repeat`` times (analyze on a
    fresh copy of the same database each time), best of each compared: on a
    shared machine a burst of other work then spoils one run, not the ratio."""
    import jieba

    texts, extra, users, rng = speed_corpus(data, n_posts, kind, n_users)
    db = fresh_db(tmp, "speed_built")
    store_users(db, texts, users)
    db.close()
    jieba.setLogLevel(60)
    jieba.initialize()
    analyze = _analyze_cli if cli else _analyze_here
    cuts, runs = [], []
    for _ in range(max(1, repeat)):
        cuts.append(_timed(lambda: sum(1 for s in texts for _ in jieba.cut(s))))
        path = _copy_db(tmp / "speed_built.db", tmp / "speed.db")
        runs.append(_timed(lambda: analyze(path)))
    t_jieba, n_tok = min(c[0] for c in cuts), cuts[0][2]
    t_full, _, s = min(runs, key=lambda r: r[0])
    chars = sum(map(len, texts)) / len(texts)
    how = "`huaxiang analyze` in a fresh process, imports included" if cli else "run_analysis in this process"
    print(f"throughput on {n_posts} {kind} posts ({chars:.0f} characters each on average; {len(users)} users,"
          f" {os.cpu_count()} cores; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}):", flush=True)
    print(f"  single-core jieba.cut: best {t_jieba:.1f}s = {n_posts / t_jieba:,.0f} posts/s ({n_tok} tokens;"
          f" runs {', '.join(f'{w:.1f}s (cpu {c:.1f}s)' for w, c, _ in cuts)})")
    print(f"  huaxiang analyze end to end ({how}): best {t_full:.1f}s = {n_posts / t_full:,.0f} posts/s"
          f" (k={s['k']}; features: {s['encoder']}; {', '.join(f'{k} {v:.1f}s' for k, v in s['timings'].items())};"
          f" runs {', '.join(f'{w:.1f}s (cpu {c:.1f}s with workers)' for w, c, _ in runs)})")
    print(f"  ratio analyze / jieba.cut throughput (best vs best): {t_jieba / t_full:.2f}x (target >= 1.5x)", flush=True)
    bench_reanalysis(path, extra, users, t_full, rng, analyze)


def bench_reanalysis(path: Path, extra: list[str], users: list[list[int]], t_full: float, rng: random.Random,
                     analyze) -> None:
    """1% new posts spread over existing and new users, analysed incrementally."""
    new_users = [(rng.randrange(len(users)) if j % 2 else len(users) + j, j) for j in range(len(extra))]
    posts = [Post(platform="bench", pid=f"new-{j}", uid=f"u{u}", text=extra[j],
                  created_at="2026-11-29T12:00:00+08:00") for u, j in new_users]
    with opened(path) as db, transaction(db):
        upsert_posts(db, posts)
    t_re, _, s2 = _timed(lambda: analyze(path))
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s2["timings"].items())
    if analyze is _analyze_cli:
        # A fresh process pays its start-up and imports whatever changed: the < 10% target is for the analysis.
        print(f"  re-analysis after +{len(extra)} posts (1%), `huaxiang analyze` in a fresh process: {t_re:.1f}s"
              f" = {t_re / t_full:.0%} of the full run (the < 10% target is for the analysis itself, in-process:"
              f" run without --cli; tokenised {s2['tokenized']}, reused {s2['reused']}; {stages})", flush=True)
        return
    print(f"  re-analysis after +{len(extra)} posts (1%): {t_re:.1f}s = {t_re / t_full:.0%} of the full run"
          f" (target < 10%; tokenised {s2['tokenized']}, reused {s2['reused']}; {stages})", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--only", choices=("thuc", "posts", "nlpcc", "speed"), action="append")
    ap.add_argument("--users", type=int, default=1000, help="synthetic THUCNews users (default 1000)")
    ap.add_argument("--speed-posts", type=int, default=100_000)
    ap.add_argument("--speed-texts", choices=("pair", "headline", "thucnews"), default="pair",
                    help="speed corpus: two random sentences per post (~50 characters, default), one (~20,"
                         " headline-length), or THUCNews headlines drawn by each user's interest")
    ap.add_argument("--speed-users", type=int, default=0,
                    help="speed: share the posts evenly among this many users (default 0: 3-15 posts per user)")
    ap.add_argument("--cli", action="store_true",
                    help="speed: time `huaxiang analyze` in a fresh process (imports included) instead of in this one")
    ap.add_argument("--repeat", type=int, default=2,
                    help="speed: jieba.cut and analyze timed alternately this many times, best of each compared")
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
            bench_speed(tmp, data, args.speed_posts, args.speed_texts, args.repeat, args.speed_users, args.cli)
    print(f"peak memory (max RSS of this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
