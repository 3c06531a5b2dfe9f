"""``huaxiang optout ...`` and ``huaxiang blocklist ...``: who is never contacted.

Opt-outs come from people (a reply like 别再@我 adds one automatically, with
the reply kept as evidence); the blocklist is the campaign's own choice.
Both stop planning and sending, and adding either cancels open items.
"""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from bot.engage import outcomes, policy, queue_ops
from bot.context import Context
from bot.errors import HuaxiangError
from bot.find.sources import default_platform
from bot.textsafe import terminal_safe
from storage import engagement as store
from config.times import utcnow
from storage.db import transaction


def register(sub: argparse._SubParsersAction) -> None:
    for name, what in (("optout", "people who asked not to be contacted"), ("blocklist", "users the campaign never engages")):
        p = sub.add_parser(name, help=f"list, add or remove {what}", description=f"Manage {what}.")
        s = p.add_subparsers(dest="list_command", metavar="ACTION", required=True)
        ls = s.add_parser("list", help="show the list")
        ls.add_argument("--json", action="store_true")
        add = s.add_parser("add", help="add a user (uid or screen name); cancels their open items")
        add.add_argument("user")
        add.add_argument("--by", required=True, help="your name (audit log)")
        add.add_argument("--reason", default="", help="why / the evidence")
        add.add_argument("--platform", help=f"platform of the user (default: found from stored users, else {default_platform()})")
        rm = s.add_parser("remove", help="remove a user")
        rm.add_argument("user")
        rm.add_argument("--by", required=True)
        rm.add_argument("--platform")
        p.set_defaults(func=run, list_name=name)


def _who(ctx: Context, user: str, platform: str | None) -> tuple[str, str]:
    found = store.resolve_user(ctx.db, platform, user)
    if found:
        return found
    return platform or default_platform(), user


def run(args: argparse.Namespace, ctx: Context) -> int:
    optout = args.list_name == "optout"
    if args.list_command == "list":
        rows = store.list_optouts(ctx.db) if optout else store.list_blocks(ctx.db)
        if args.json:
            for r in rows:
                print(json.dumps(r, ensure_ascii=False))
            return 0
        if not optout and ctx.settings.engagement.blocklist:
            ctx.console.print("from config [engagement].blocklist: " + ", ".join(ctx.settings.engagement.blocklist),
                              markup=False)
        if not rows:
            ctx.console.print(f"the {args.list_name} is empty", markup=False)
            return 0
        table = Table(title=args.list_name, title_justify="left")
        cols = ("platform", "uid", "origin", "evidence", "by", "at") if optout else ("platform", "uid", "reason", "by", "at")
        for c in cols:
            table.add_column(c, overflow="fold")
        for r in rows:
            vals = [r["platform"], r["uid"]] + ([r["origin"], terminal_safe(r["evidence"], 80)] if optout
                                               else [terminal_safe(r["reason"], 80)]) + [terminal_safe(r["actor"]), r["at"]]
            table.add_row(*vals)
        ctx.console.print(table)
        return 0
    if not policy.is_named_person(args.by):
        raise HuaxiangError(f"--by needs a person's name, got {args.by!r}")
    if not args.user.strip() or any(ch.isspace() or not ch.isprintable() for ch in args.user.strip()):
        raise HuaxiangError(f"USER must be a platform user id or screen name, got {args.user!r}")
    platform, uid = _who(ctx, args.user, args.platform)
    at = utcnow()
    with transaction(ctx.db):
        if args.list_command == "add":
            if optout:
                added, n = outcomes.record_opt_out(ctx.db, platform, uid, args.reason or "added by hand", None,
                                                   args.by, "manual", at)
            else:
                added = store.add_block(ctx.db, platform, uid, args.reason, args.by, at)
                n = len(queue_ops.cancel_open_for_user(ctx.db, platform, uid, args.by, f"blocklisted: {args.reason}", at))
            store.append_audit(ctx.db, at, args.by, f"{args.list_name}_add", None, detail={
                "platform": platform, "uid": uid, "reason": args.reason, "cancelled_items": n})
            msg = f"{'added' if added else 'already listed'}: {platform}:{uid}; cancelled {n} open item(s)"
        else:
            removed = store.remove_optout(ctx.db, platform, uid) if optout else store.remove_block(ctx.db, platform, uid)
            store.append_audit(ctx.db, at, args.by, f"{args.list_name}_remove", None,
                               detail={"platform": platform, "uid": uid, "removed": removed})
            msg = f"{'removed' if removed else 'not listed'}: {platform}:{uid}"
    ctx.console.print(msg, markup=False)
    return 0
