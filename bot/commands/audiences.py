"""``huaxiang audiences [show ID | rename ID NAME]``"""

from __future__ import annotations

import argparse

from rich.table import Table

from bot.argtypes import ITEM_ID
from bot.context import Context
from bot.errors import HuaxiangError
from bot.report.exports.exporters import account_type
from storage import audiences as store
from storage import user_results
from storage.reporting import loads, user_details


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audiences", help="list audiences, show one in full, or rename one",
                       description="Without arguments: list audiences (id, size, name, top keywords).")
    p.add_argument("--all", action="store_true", help="include retired audiences")
    p.set_defaults(func=run_list)
    s = p.add_subparsers(dest="action", metavar="ACTION")
    show = s.add_parser("show", help="one audience in full: keywords, topics, influencers, sample posts, tiers")
    show.add_argument("id", type=ITEM_ID)
    show.set_defaults(func=run_show)
    ren = s.add_parser("rename", help="give an audience your own name (kept across re-runs); '' restores the auto-name")
    ren.add_argument("id", type=ITEM_ID)
    ren.add_argument("name")
    ren.set_defaults(func=run_rename)


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = store.list_audiences(ctx.db, include_retired=args.all)
    if not rows:
        ctx.console.print("no audiences yet: run `huaxiang analyze` first", markup=False)
        return 0
    table = Table()
    for col, just in (("id", "right"), ("size", "right"), ("share", "right"), ("name", "left"),
                      ("auto-name", "left"), ("top keywords", "left")):
        table.add_column(col, justify=just)
    for a in rows:
        name = a["name"] or a["auto_name"]
        if a["status"] != "active":
            name += " (retired)"
        elif a.get("mixed"):
            name += " (mixed: members barely hang together)"
        table.add_row(str(a["id"]), str(a["size"]), f"{a['share']:.0%}", name,
                      a["auto_name"] if a["name"] else "", " ".join(a["keywords"][:8]))
    ctx.console.print(table)
    una = user_results.unassigned_count(ctx.db)
    if una:
        ctx.console.print(f"unassigned: {una} analysed users fit no audience (in none, never engaged as members;"
                          " see `huaxiang export prospects TARGET` for the relevant ones)", markup=False)
    return 0


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    a = store.get_audience(ctx.db, args.id)
    if a is None:
        raise HuaxiangError(f"no audience with id {args.id} (see `huaxiang audiences`)")
    out = ctx.console
    title = a["display_name"] + (f"  (auto-name: {a['auto_name']})" if a["name"] else "")
    out.print(f"audience {a['id']}: {title}", markup=False)
    out.print(f"status {a['status']}; {a['size']} members ({a['share']:.1%} of analysed users);"
              f" updated by run {a['updated_run']}", markup=False)
    tc = a["tier_counts"] or {}
    out.print(f"tiers: leaders {tc.get('leader', 0)}, engaged {tc.get('engaged', 0)}, potential {tc.get('potential', 0)}",
              markup=False)
    if a.get("mixed"):
        out.print(f"mixed: its members barely stand out from everyone else (cohesion {a.get('cohesion') or 0:.2f},"
                  " 1 = typical); read its keywords as several interests, not one", markup=False)
    if a.get("target"):
        out.print(f"closest target audience: {a['target']} (mean relevance {a['target_score']:.2f})", markup=False)
    out.print("keywords: " + " ".join(a["keywords"]), markup=False)
    if a["topics"]:
        out.print("topics: " + ", ".join(f"#{t['name']}# ({t['users']})" for t in a["topics"]), markup=False)
    if a["mentions"]:
        out.print("mentions: " + ", ".join(f"@{m['name']} ({m['users']})" for m in a["mentions"]), markup=False)
    hours = a["active_hours"] or []
    if hours and sum(hours):
        top = sorted(range(24), key=lambda h: -hours[h])[:3]
        out.print("most active hours: " + ", ".join(f"{h:02d}:00" for h in top), markup=False)
    if a["influencers"]:
        # Account type and IP属地 (issue 14): a brand or media account is not a prospect.
        details = user_details(ctx.db, [i.get("uid") for i in a["influencers"]])
        t = Table(title="influencers")
        for col in ("user", "name", "account", "followers", "IP属地", "engagement/post"):
            t.add_column(col)
        for i in a["influencers"]:
            d = details.get(str(i.get("uid")), {})
            floor = "+" if "followers" in (loads(d.get("counts_floor"), []) if d.get("counts_floor") else []) else ""
            t.add_row(str(i.get("uid")), str(i.get("name") or ""),
                      account_type(d.get("verified_type"), d.get("verified"), d.get("is_bot")),
                      f"{_or_blank(i.get('followers', d.get('followers')))}{floor}",
                      str(d.get("ip_location") or d.get("location") or ""),
                      str(i.get("engagement_per_post")))
        out.print(t)
    if a["sample_posts"]:
        out.print("sample posts:", markup=False)
        for p in a["sample_posts"]:
            who = p.get("user_name") or p.get("uid")
            out.print(f"  - {who}: {p['text']}", markup=False)
    hist = store.audience_history(ctx.db, a["id"])
    if len(hist) > 1:
        out.print("size by run: " + ", ".join(f"run {h['run_id']}: {h['size']} (+{h['joined']}/-{h['left']})"
                                                for h in hist[-8:]), markup=False)
    return 0


def _or_blank(value) -> str:
    return "" if value is None else str(value)


def run_rename(args: argparse.Namespace, ctx: Context) -> int:
    name = args.name.strip()
    if len(name) > 60:
        raise HuaxiangError("audience names are at most 60 characters")
    if not store.rename_audience(ctx.db, args.id, name or None):
        raise HuaxiangError(f"no audience with id {args.id} (see `huaxiang audiences`)")
    ctx.console.print(f"audience {args.id} is now called {name!r}" if name else
                      f"audience {args.id} uses its auto-name again", markup=False)
    return 0
