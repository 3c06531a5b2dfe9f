"""``huaxiang search TEXT``: find stored posts by their text."""

from __future__ import annotations

import argparse

from rich.table import Table

from bot.argtypes import LIMIT
from bot.context import Context
from bot.textsafe import terminal_safe
from storage.posts import search_posts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="full-text search over stored posts",
                       description="Search post text (any substring; Chinese needs no spaces).")
    p.add_argument("text", help="what to look for")
    p.add_argument("--limit", type=LIMIT, default=20, help="at most this many posts (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    rows = search_posts(ctx.db, args.text, limit=args.limit)
    if not rows:
        ctx.console.print("no posts match", markup=False)
        return 0
    table = Table(title=f"{len(rows)} posts matching", title_justify="left")
    for col in ("platform", "post id", "user", "time", "text"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["platform"], r["pid"], terminal_safe(r["user_name"] or r["uid"]), (r["created_at"] or "")[:16],
                      terminal_safe(r["text"], 120))
    ctx.console.print(table)
    return 0
