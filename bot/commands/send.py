"""``huaxiang send``: send due approved actions, each exactly once."""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading

from bot.argtypes import LIMIT
from bot.context import Context
from bot.engage.sender import run_send
from bot.find.sources import platform_rules
from bot.textsafe import terminal_safe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("send", help="send approved actions (dry run until [engagement].send_mode is set)",
                       description="Send approved, due actions through [engagement].send_source, re-checking caps, "
                                   "quiet hours, blocklist and opt-outs at send time. An interrupted or timed-out "
                                   "send is reconciled (we look for our comment) before anything is tried again.")
    p.add_argument("--dry-run", action="store_true", help="only show what would be sent now")
    p.add_argument("--mode", choices=[*platform_rules().send_modes, "manual"],
                   help="override [engagement].send_mode for this run")
    p.add_argument("--max", type=LIMIT, dest="max_items", help="send at most this many")
    p.add_argument("--worklist-dir", help="manual mode: where to write the worklist (default [engagement].worklist_dir)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=run)
    o = sub.add_parser("outcomes", help="look for replies, likes, follow-backs and opt-outs after sends",
                       description="Check sent actions for responses: comments the crawler stored, and through "
                                   "[engagement].send_source the replies to us, likes and new followers. Replies "
                                   "like 别再@我 put their author on the opt-out list (the reply is kept as evidence).")
    o.add_argument("--json", action="store_true", help="print the counts as JSON")
    o.set_defaults(func=run_outcomes)


def run_outcomes(args: argparse.Namespace, ctx: Context) -> int:
    from bot.engage.outcomes import collect_outcomes

    counts = collect_outcomes(ctx.db, ctx.settings).as_counts()
    if args.json:
        print(json.dumps(counts, ensure_ascii=False))
    else:
        ctx.console.print("outcomes: " + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, soft_wrap=True)
    return 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    settings = ctx.settings
    if args.mode:
        settings = dataclasses.replace(settings, engagement=dataclasses.replace(settings.engagement, send_mode=args.mode))
    dry = True if args.dry_run else None
    stop = threading.Event()
    try:
        summary = run_send(ctx.db, settings, stop=stop, dry_run=dry, max_items=args.max_items,
                           worklist_dir=args.worklist_dir)
    except KeyboardInterrupt:
        stop.set()
        raise
    counts = summary.as_counts()
    if args.json:
        print(json.dumps({"mode": summary.mode, **counts, "worklist": summary.worklist,
                          "stopped": summary.stopped_reason}, ensure_ascii=False))
        return 0
    out = ctx.console.print
    if summary.mode == "dry-run":
        out(f"dry run (nothing sent; set [engagement].send_mode to send): {counts['due']} due approved item(s), "
            f"{counts['would_send']} would be sent now", markup=False, soft_wrap=True)
        if summary.stopped_reason:
            out(summary.stopped_reason, markup=False, soft_wrap=True)
        for d in summary.details[:50]:
            out(f"  #{d['id']} {d['kind']} to {terminal_safe(d['target'] or '')}: {d['verdict']}  "
                f"{terminal_safe(d['text'] or '', 60)}", markup=False, soft_wrap=True)
        return 0
    if summary.busy:
        out("another sender is running; nothing done", markup=False, soft_wrap=True)
        return 0
    shown = {k: v for k, v in counts.items() if v and k not in ("would_send",)}
    out(f"send ({summary.mode}): " + (", ".join(f"{k} {v}" for k, v in shown.items()) or "nothing due"), markup=False, soft_wrap=True)
    for item_id, why in summary.held[:50]:
        out(f"held #{item_id}: {terminal_safe(why)}", markup=False, soft_wrap=True)
    if summary.worklist:
        out(f"worklist: {summary.worklist} (post each text by hand, then `huaxiang queue resolve ID --sent --by NAME`)",
            markup=False, soft_wrap=True)
    if summary.stopped_reason:
        out(f"stopped: {summary.stopped_reason}", markup=False, soft_wrap=True)
    if counts["unknown"]:
        out("some outcomes are unknown; the next `send` looks for them on the platform before any retry", markup=False, soft_wrap=True)
    return 0
