"""Drafts worth approving: the acceptance figures of issue 13, on the demo's queue.

Run: .venv/bin/python bench/bench_drafts.py [--db huaxiang.db] [--seed 0] [--show 20]

Without --db it runs `huaxiang demo` in a temporary folder (the real
pipeline against the sandbox, about 40 s) and then `huaxiang export queue`
as JSON lines; with --db it exports that database's queue. On the reply and
repost rows it prints:

- distinct: drafts with the target's name removed, unique / total (>= 0.90);
- grounded: drafts sharing a content word (a jieba word of >= 2 characters,
  not a stopword) with their post (>= 0.90);
- findable: ranking every queued post by TF-IDF cosine to a draft, its own
  post is in the top 5 (>= 0.70);
- reposts: share of reply + repost actions that are reposts (>= 0.10);
- target_relevance: the smallest stored value against min_relevance.

The reference run beside it is the same figures for the campaign's plain
template texts (what the queue held before issue 13), computed on the same
posts, so the ratio shows what reading the post buys.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.clean import clean_post  # noqa: E402
from nlp.tokenize import Tokenizer  # noqa: E402

OLD_TEMPLATES = ("说得很好，{n} 的分享很有用！", "{n} 这条很有意思，学到了～", "{n} 的训练安排很有参考价值，收藏了！")


def huaxiang(*args: str, cwd: Path, env: dict | None = None) -> str:
    exe = Path(sys.executable).with_name("huaxiang")
    done = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise SystemExit(f"huaxiang {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def queue_rows(db: Path | None, seed: int, workdir: Path, budget: int = 0) -> tuple[list[dict], Path]:
    if db is None:
        huaxiang("demo", "--seed", str(seed), cwd=workdir)
        db = workdir / "huaxiang.db"
    if budget:
        # A bigger queue than the demo's 50: plan again on a copy with a larger review-queue budget.
        copy = workdir / "bigger.db"
        shutil.copyfile(db, copy)
        config = workdir / "huaxiang.toml"
        huaxiang("init", str(workdir), cwd=workdir) if not config.exists() else None
        env = {"HUAXIANG__ENGAGEMENT__MAX_ITEMS_PER_PLAN": str(budget), "HUAXIANG__ENGAGEMENT__DAILY_CAP": "1000",
               "HUAXIANG__ENGAGEMENT__HOURLY_CAP": "1000"}
        huaxiang("--db", str(copy), "--config", str(config), "plan", cwd=workdir, env=env)
        db = copy
    out = workdir / "queue.jsonl"
    huaxiang("--db", str(db), "export", "queue", "--format", "jsonl", "-o", str(out), cwd=workdir)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("kind") in ("reply", "repost") and r.get("draft")], db


def words(tok: Tokenizer, text: str) -> set[str]:
    return {w for w in tok(clean_post(text).text) if len(w) >= 2}


def figures(rows: list[dict], drafts: list[str], tok: Tokenizer) -> dict[str, float]:
    names = [r.get("target_name") or "" for r in rows]
    stripped = [d.replace(n, "").strip() if n else d for d, n in zip(drafts, names)]
    distinct = len(set(stripped)) / len(stripped)
    grounded = sum(bool(words(tok, d) & words(tok, r["post_text"] or "")) for d, r in zip(drafts, rows)) / len(rows)
    posts = [" ".join(tok(clean_post(r["post_text"] or "").text)) for r in rows]
    vec = TfidfVectorizer(analyzer=str.split).fit(posts)
    P = vec.transform(posts)
    D = vec.transform([" ".join(tok(clean_post(d).text)) for d in stripped])
    sims = (D @ P.T).toarray()
    hits = 0
    for i in range(len(rows)):
        own = sims[i, i]
        rank = int((sims[i] > own).sum())      # ties count in the draft's favour
        hits += rank < 5 and own > 0
    return {"distinct": distinct, "grounded": grounded, "findable_top5": hits / len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="measure this database's queue instead of running the demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-relevance", type=float, default=0.2, help="the campaign's [engagement].min_relevance")
    ap.add_argument("--show", type=int, default=0, help="print this many (post -> draft) pairs")
    ap.add_argument("--budget", type=int, default=0,
                    help="also plan up to this many pending items on a copy (a bigger queue than the demo's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows, db = queue_rows(args.db.resolve() if args.db else None, args.seed, Path(tmp), args.budget)
    if not rows:
        raise SystemExit("no reply or repost rows in the queue")
    tok = Tokenizer()
    now = figures(rows, [r["draft"] for r in rows], tok)
    ref = figures(rows, [OLD_TEMPLATES[i % 3].format(n=r.get("target_name") or "") for i, r in enumerate(rows)], tok)
    reposts = sum(r["kind"] == "repost" for r in rows) / len(rows)
    rel = [r.get("target_relevance") for r in rows]
    low = min((x for x in rel if x is not None), default=float("nan"))
    print(f"queue: {len(rows)} reply/repost rows ({sum(r['kind'] == 'repost' for r in rows)} reposts)")
    print(f"{'figure':<16}{'drafts':>8}{'templates':>11}{'ratio':>8}  goal")
    goals = {"distinct": 0.90, "grounded": 0.90, "findable_top5": 0.70}
    for k, goal in goals.items():
        ratio = now[k] / ref[k] if ref[k] else float("inf")
        print(f"{k:<16}{now[k]:>8.2f}{ref[k]:>11.2f}{ratio:>8.1f}  >= {goal:.2f} {'ok' if now[k] >= goal else 'MISS'}")
    print(f"{'reposts':<16}{reposts:>8.2f}{'':>11}{'':>8}  >= 0.10 {'ok' if reposts >= 0.10 else 'MISS'}")
    missing = sum(x is None for x in rel)
    ok = missing == 0 and low >= args.min_relevance
    print(f"{'min target_rel':<16}{low:>8.2f}{'':>11}{'':>8}  >= {args.min_relevance:.2f} "
          f"({missing} rows without one) {'ok' if ok else 'MISS'}")
    for r in rows[: args.show]:
        post = " ".join((r["post_text"] or "").split())
        print(f"\n[{r['kind']}] {post}\n  -> {r['draft']}\n     ({r.get('draft_why') or ''})")


if __name__ == "__main__":
    main()
