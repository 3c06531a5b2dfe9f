"""The loop that measures and repeats: response rate and the planner's choices by round.

Run: .venv/bin/python bench/bench_learning.py [--rounds 6] [--seed 0]

The example campaign (what `huaxiang init` writes) against the sandbox: crawl
and analyse once, then each round (one virtual day) plan, approve every
reply and repost as a person would, send them through the sandbox's Open API
and collect the outcomes. The sandbox's people answer by what a comment says
(likelier when it quotes their post, more when it also asks them something,
rarely when generic, never when repeated). The campaign also carries the
kind of template a manager might write that fits any post (the example's old
"general" lines, "说得很好，{nickname} 的分享很有用！"): the learning shows as
the share of drafts from those generic variants falling round by round, and
the response rate rising with it. The reference run beside it plans every round with
the learned statistics hidden (each variant starts from nothing), in the same
process on the same world.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.engage import outcomes, queue_ops  # noqa: E402
from bot.understand.run import run_analysis  # noqa: E402
from bot.commands.demo import demo_settings  # noqa: E402
from bot.find.crawler import run_crawl  # noqa: E402
from bot.engage import accounts  # noqa: E402
from bot.engage.followers import ensure_follower_baseline  # noqa: E402
from bot.engage.planner import run_plan  # noqa: E402
from bot.find.sandbox import start_sandbox  # noqa: E402
from bot.engage.sender import make_transport, run_send  # noqa: E402
from config import parse_settings  # noqa: E402
from storage import engagement as store  # noqa: E402
from storage.db import connect  # noqa: E402

GENERIC = {"name": "general", "audience": "*", "kind": "reply",
           "variants": ["说得很好，{nickname} 的分享很有用！", "{nickname} 这条很有意思，学到了～",
                        "支持{nickname}，一起加油！", "{nickname} 太厉害了，向你学习"]}


def campaign(base_url: str, db_path: Path):
    s = demo_settings(base_url, db_path)
    raw = {"sources": [vars(x) for x in s.sources], "queries": [vars(q) for q in s.queries],
           "audiences": [vars(a) for a in s.audiences], "analysis": vars(s.analysis),
           "drafting": vars(s.drafting), "engagement": {
               **{k: v for k, v in vars(s.engagement).items() if k not in ("templates", "library")},
               "templates": [vars(t) for t in s.engagement.templates] + [GENERIC],
               "library": [vars(e) for e in s.engagement.library],
               "send_mode": "sandbox", "quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0,
               "daily_cap": 1000, "hourly_cap": 1000, "window_days": 1, "max_post_age_days": 30,
               "follow_suggestions": False, "max_items_per_plan": 60}}
    return parse_settings(raw, "<bench: example campaign>")


def one_round(db, s, transport, now: datetime, rng: random.Random, hide_stats: bool) -> dict:
    if hide_stats:
        real = store.variant_stats
        store.variant_stats = lambda _db: {}
    try:
        plan = run_plan(db, s, now, rng=rng)
    finally:
        if hide_stats:
            store.variant_stats = real
    items = store.items_with_status(db, ("pending",))
    if accounts.active_account(db, "bench-reviewer") is None:    # approving needs an approver account
        accounts.add(db, "bench-reviewer", "approver", "bench reviewer password")
    queue_ops.approve(db, [i.id for i in items], "bench-reviewer")
    run_send(db, s, now + timedelta(hours=23), platform=transport)      # every item of the day is due
    outcomes.collect_outcomes(db, s, platform=transport, now=now + timedelta(hours=23, minutes=30))
    sent = [i for i in items if (store.get_item(db, i.id).status == "sent")]
    answered = sum(1 for i in sent if any(o["kind"] in ("reply", "like", "follow_back")
                                          for o in store.outcomes_for(db, i.id)))
    generic = sum(1 for i in sent if i.template == GENERIC["name"])
    asking = sum(1 for i in sent if "？" in (i.text or "") or "?" in (i.text or ""))
    return {"planned": plan.created, "sent": len(sent), "answered": answered, "generic": generic, "asking": asking}


def prepare(seed: int, workdir: Path, now: float) -> Path:
    """Crawl and analyse once; both runs start from a copy of this database."""
    with start_sandbox(seed=seed, port=0, now=now) as sb:
        db_path = workdir / "base.db"
        s = campaign(sb.base_url, db_path)
        db = connect(db_path)
        run_crawl(db, s)
        run_analysis(db, s)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    return db_path


def run(base: Path, rounds: int, seed: int, hide_stats: bool, workdir: Path, now: float) -> list[dict]:
    """Rounds against a fresh sandbox of the same seed and clock (the same posts; nobody has heard from us yet)."""
    with start_sandbox(seed=seed, port=0, now=now) as sb:
        db_path = workdir / ("ref.db" if hide_stats else "learn.db")
        shutil.copyfile(base, db_path)
        s = campaign(sb.base_url, db_path)
        db = connect(db_path)
        transport = make_transport(s, "sandbox")
        ensure_follower_baseline(db, s, transport)
        start = datetime.now(timezone.utc).replace(microsecond=0)
        rng = random.Random(seed)
        return [one_round(db, s, transport, start + timedelta(days=r), rng, hide_stats) for r in range(rounds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HUAXIANG_SANDBOX_TOKEN", "bench-token")
    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        base = prepare(args.seed, Path(tmp), now)
        learn = run(base, args.rounds, args.seed, False, Path(tmp), now)
        ref = run(base, args.rounds, args.seed, True, Path(tmp), now)
    print(f"{'round':<7}{'sent':>6}{'answered':>10}{'rate':>7}{'asking':>8}{'generic':>9}  |  no learning:"
          f"{'sent':>6}{'rate':>7}{'asking':>8}{'generic':>9}")
    for i, (a, b) in enumerate(zip(learn, ref), 1):
        def cells(r):
            n = max(1, r["sent"])
            return f"{r['answered'] / n:>7.2f}{r['asking'] / n:>8.2f}{r['generic'] / n:>9.2f}"
        print(f"{i:<7}{a['sent']:>6}{a['answered']:>10}{cells(a)}  |  {'':>12}{b['sent']:>6}{cells(b)}")
    tail = max(1, args.rounds // 2)

    def share(runs, key):
        return sum(r[key] for r in runs[-tail:]) / max(1, sum(r["sent"] for r in runs[-tail:]))

    print(f"last {tail} rounds, learning vs not: drafts that ask a question {share(learn, 'asking'):.2f} vs "
          f"{share(ref, 'asking'):.2f}; generic drafts {share(learn, 'generic'):.2f} vs {share(ref, 'generic'):.2f}; "
          f"response rate {share(learn, 'answered'):.2f} vs {share(ref, 'answered'):.2f}")


if __name__ == "__main__":
    main()
