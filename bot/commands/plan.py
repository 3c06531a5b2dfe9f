"""``huaxiang plan``: propose actions for a person to review (never approves, never sends)."""

from __future__ import annotations

import argparse
import json

from bot.context import Context
from bot.engage.planner import run_plan
from storage.engagement import queue_counts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="propose replies/reposts for review (idempotent; nothing is sent)",
                       description="Score recent posts of the target audiences and groups, draft replies from the "
                                   "templates and queue them as pending for a person to approve. Running it twice "
                                   "adds nothing new.")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    summary = run_plan(ctx.db, ctx.settings)
    counts = summary.as_counts()
    queue = queue_counts(ctx.db)
    off_target = dict(summary.off_target.most_common())
    if args.json:
        print(json.dumps({"plan": counts, "queue": queue, "off_target": off_target, "queue_full": summary.queue_full},
                         ensure_ascii=False))
        return 0
    if summary.queue_full:
        ctx.console.print(f"the review queue already holds {queue.get('pending', 0)} pending item(s) "
                          f"([engagement].max_items_per_plan = {ctx.settings.engagement.max_items_per_plan}); "
                          "review some, then plan again", markup=False, soft_wrap=True)
    skipped = ", ".join(f"{k[8:]} {v}" for k, v in counts.items() if k.startswith("skipped_")) or "none"
    ctx.console.print(
        f"planned {counts['planned']} new item(s) ({counts['follow_suggestions']} follow suggestions, "
        f"{counts['reposts']} reposts with a comment) from "
        f"{counts['candidates']} candidate posts; already planned {counts['already_planned']}, "
        f"no matching template {counts['no_template']}, no free slot {counts['no_slot']}, "
        f"expired {counts['expired']}; skipped by rule: {skipped}", markup=False, soft_wrap=True)
    if off_target:
        verb = "engaged anyway (engage_off_target)" if ctx.settings.engagement.engage_off_target else "not engaged"
        ctx.console.print(f"below min_relevance {ctx.settings.engagement.min_relevance:g} to every target, {verb}: "
                          + ", ".join(f"{k} {v}" for k, v in off_target.items()), markup=False, soft_wrap=True)
    ctx.console.print("queue: " + ", ".join(f"{k} {v}" for k, v in queue.items() if v) if any(queue.values())
                      else "queue: empty", markup=False, soft_wrap=True)
    if queue.get("pending"):
        ctx.console.print("next: huaxiang queue list --status pending   or   huaxiang review", markup=False, soft_wrap=True)
    return 0
