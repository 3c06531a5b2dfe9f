"""``huaxiang queue list|show|approve|reject|edit|cancel|resolve``: review the engagement queue."""

from __future__ import annotations

import argparse
import json
from datetime import tzinfo

from rich.table import Table

from bot.engage import queue_ops
from bot.argtypes import ITEM_ID, LIMIT
from bot.context import Context
from bot.errors import HuaxiangError
from bot.engage import explain
from bot.i18n import fmt_time, language, zone
from bot.textsafe import terminal_safe
from storage import engagement as store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("queue", help="list, show, approve, reject or edit proposed actions",
                       description="The engagement queue. Nothing is sent without a named person's approval "
                                   "(--by NAME); every change is written to the audit log.")
    qs = p.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    ls = qs.add_parser("list", help="list items (grouped by audience)")
    ls.add_argument("--status", choices=store.ALL_STATUSES, help="only this status")
    ls.add_argument("--audience", help="only this audience (name or id)")
    ls.add_argument("--kind", choices=("reply", "repost", "group_reply", "follow"), help="only this kind")
    ls.add_argument("--limit", type=LIMIT, default=200, help="at most this many (default 200)")
    ls.add_argument("--json", action="store_true", help="print JSON lines")
    sh = qs.add_parser("show", help="one item in full: the post, the person, the reason, the history")
    sh.add_argument("id", type=ITEM_ID)
    sh.add_argument("--json", action="store_true")
    ap = qs.add_parser("approve", help="approve items for sending")
    ap.add_argument("ids", type=ITEM_ID, nargs="+", metavar="ID")
    ap.add_argument("--by", required=True, help="your review account; it must be an approver or admin (audit log)")
    ap.add_argument("--retry", action="store_true", help="approve failed items to try sending them again")
    rj = qs.add_parser("reject", help="reject items")
    rj.add_argument("ids", type=ITEM_ID, nargs="+", metavar="ID")
    rj.add_argument("--by", required=True, help="your name")
    rj.add_argument("--reason", default="", help="why (kept in the audit log)")
    ed = qs.add_parser("edit", help="change a draft's text (an approved item needs approving again)")
    ed.add_argument("id", type=ITEM_ID)
    ed.add_argument("--text", required=True)
    ed.add_argument("--by", required=True, help="your name")
    for action, text in (("done", "a follow suggestion you carried out by hand"),
                         ("dismiss", "a follow suggestion you decided against")):
        fo = qs.add_parser(action, help=text)
        fo.add_argument("ids", type=ITEM_ID, nargs="+", metavar="ID")
        fo.add_argument("--by", required=True, help="your name or review account")
    ca = qs.add_parser("cancel", help="withdraw a pending or approved item")
    ca.add_argument("id", type=ITEM_ID)
    ca.add_argument("--by", required=True)
    ca.add_argument("--reason", default="")
    rs = qs.add_parser("resolve", help="settle a handed-out (manual) or unknown item: was it posted?")
    rs.add_argument("id", type=ITEM_ID)
    g = rs.add_mutually_exclusive_group(required=True)
    g.add_argument("--sent", action="store_true", help="it is on the platform")
    g.add_argument("--not-sent", action="store_true", help="it is not on the platform")
    rs.add_argument("--by", required=True)
    rs.add_argument("--remote-id", help="the platform's id of the comment, if known")
    rs.add_argument("--note", default="")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    cmd = args.queue_command
    if cmd == "list":
        return _list(args, ctx)
    if cmd == "show":
        return _show(args, ctx)
    if cmd in ("approve", "reject", "done", "dismiss"):
        if cmd in ("done", "dismiss"):
            changes = queue_ops.settle_follow(ctx.db, args.ids, args.by, done=cmd == "done")
        elif cmd == "approve":
            changes = queue_ops.approve(ctx.db, args.ids, args.by, retry_failed=args.retry,
                                        second_approval=ctx.settings.review.second_approval)
        else:
            changes = queue_ops.reject(ctx.db, args.ids, args.by, args.reason)
        for c in changes:
            (ctx.console if c.ok else ctx.err).print(c.message, markup=False)
        return 0 if all(c.ok for c in changes) else 1
    if cmd == "edit":
        item = queue_ops.edit(ctx.db, args.id, args.text, args.by, ctx.settings)
        ctx.console.print(f"edited #{item.id}; it is {item.status} (approve it to send the new text)", markup=False)
        return 0
    if cmd == "cancel":
        queue_ops.cancel(ctx.db, args.id, args.by, args.reason or f"cancelled by {args.by}")
        ctx.console.print(f"cancelled #{args.id}", markup=False)
        return 0
    if cmd == "resolve":
        item = queue_ops.resolve(ctx.db, args.id, bool(args.sent), args.by, args.remote_id, args.note)
        ctx.console.print(f"#{item.id} is now {item.status}", markup=False)
        return 0
    raise HuaxiangError(f"unknown queue action {cmd!r}")


def _list(args, ctx: Context) -> int:
    rows = store.list_items(ctx.db, status=args.status, audience=args.audience, kind=args.kind, limit=args.limit)
    rows = [_rendered(r, language(ctx.settings)) for r in rows]
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False, default=str))
        return 0
    if not rows:
        ctx.console.print("the queue has no such items (run `huaxiang plan` to propose some)", markup=False)
        return 0
    current = None
    table = None
    tz = zone(ctx.settings.engagement.timezone)
    for r in rows:
        if r["audience"] != current:
            if table is not None:
                ctx.console.print(table)
            current = r["audience"]
            table = Table(title=f"{terminal_safe(current)}", title_justify="left")
            for col in ("id", "status", "kind", "tier", "user", "score", f"scheduled ({ctx.settings.engagement.timezone})",
                        "why", "draft", "their post"):
                table.add_column(col, overflow="fold")
        table.add_row(str(r["id"]), r["status"], r["kind"], r["tier"] or "", terminal_safe(r["user_name"] or r["target_uid"]),
                      f"{r['score']:.2f}" if r["score"] is not None else "", fmt_time(r["scheduled_at"], tz),
                      terminal_safe(r["reason"] or "", 40), terminal_safe(r["text"], 80), terminal_safe(r["post_text"], 60))
    ctx.console.print(table)
    return 0


def _rendered(row: dict, lang: str) -> dict:
    """The row with its reason, explanation and draft reasoning written in ``lang`` from the stored facts
    (rows planned before the facts existed keep their stored text)."""
    from bot.engage.review.cards import explanation_text, relevance_text

    return {**row, "explanation": explanation_text(row, lang),
            "reason": explain.reason(row.get("explanation_facts"), lang, row.get("reason")),
            "draft_why": explain.draft_why(row.get("draft_reason"), lang),
            "relevance_explanation": relevance_text(row, lang)}


def _show(args, ctx: Context) -> int:
    detail = store.item_detail(ctx.db, args.id)
    if detail is None:
        raise HuaxiangError(f"queue item {args.id} does not exist")
    lang = language(ctx.settings)
    detail = _rendered(detail, lang)
    audit = store.audit_for(ctx.db, args.id)
    sends = store.send_log_for(ctx.db, args.id)
    outcomes = store.outcomes_for(ctx.db, args.id)
    if args.json:
        print(json.dumps({"item": detail, "audit": audit, "send_log": sends, "outcomes": outcomes},
                         ensure_ascii=False, default=str, indent=1))
        return 0
    p = ctx.console.print
    tz = zone(ctx.settings.engagement.timezone)
    p(f"#{detail['id']} {detail['kind']} - {detail['status']} - {terminal_safe(detail['audience'])}"
      f"  (times in {ctx.settings.engagement.timezone})", markup=False)
    p(f"to:      {terminal_safe(detail['user_name'] or '')} ({detail['target_uid']}), tier {detail['tier'] or '-'}, "
      f"{detail['user_followers'] or 0} followers; {terminal_safe(detail['user_bio'] or '', 80)}", markup=False)
    p(f"post:    {terminal_safe(detail['post_text'] or '', 300)}", markup=False)
    p(f"         {fmt_time(detail['post_created_at'], tz)}  likes {detail['post_likes'] or 0}, comments {detail['post_comments'] or 0}", markup=False)
    p(f"draft:   {terminal_safe(detail['text'] or '')}", markup=False)
    p(f"why:     {terminal_safe(detail['explanation'] or '')}", markup=False)
    p(f"when:    scheduled {fmt_time(detail['scheduled_at'], tz) or '-'}, expires {fmt_time(detail['expires_at'], tz) or '-'}",
      markup=False)
    if detail["approved_by"]:
        p(f"approved by {terminal_safe(detail['approved_by'])} at {fmt_time(detail['approved_at'], tz)}", markup=False)
    if detail["last_error"]:
        p(f"note:    {terminal_safe(detail['last_error'])}", markup=False)
    _show_context(ctx, detail, tz, lang)
    p("history:", markup=False)
    for a in audit:
        change = f"{a['from_status'] or '-'} -> {a['to_status'] or '-'}"
        edit = ""
        if a["text_before"] != a["text_after"] and a["text_before"] is not None:
            edit = f"  text: {terminal_safe(a['text_before'], 60)!s} => {terminal_safe(a['text_after'], 60)!s}"
        p(f"  {fmt_time(a['at'], tz)}  {terminal_safe(a['actor'])}  {a['action']}  {change}{edit}", markup=False)
    for s in sends:
        p(f"  send attempt {s['attempt']} ({s['mode']}): {s['status']} {s['remote_id'] or ''} {terminal_safe(s['error'] or '')}", markup=False)
    for o in outcomes:
        p(f"  outcome: {o['kind']} {terminal_safe(o['text'] or '', 80)}", markup=False)
    return 0


def _show_context(ctx: Context, detail: dict, tz: tzinfo, lang: str = "zh") -> None:
    """The same context the review card shows: why this person and post, and the thread."""
    from bot.engage.review.cards import context

    c = context(ctx.db, detail, tz, lang)
    p = ctx.console.print
    why = c["why"]
    facts = [f"target {why['target']}" if why["target"] else "",
             f"relevance {why['relevance']:.2f}" if why["relevance"] is not None else "",
             f"matched {', '.join(why['phrases'])}" if why["phrases"] else ""]
    if any(facts):
        p("why:     " + terminal_safe("; ".join(f for f in facts if f)), markup=False)
    for r in c["comments"]:
        p(f"comment: {terminal_safe(r['user_name'] or r['uid'] or '')}: {terminal_safe(r['text'] or '', 80)}"
          f" (likes {r['likes'] or 0})", markup=False)
    for r in c["recent_posts"]:
        p(f"earlier: {r['at']}  {terminal_safe(r['text'] or '', 80)}", markup=False)
    if c["draft_why"]:
        p("drafted: " + terminal_safe(c["draft_why"], 160), markup=False)
