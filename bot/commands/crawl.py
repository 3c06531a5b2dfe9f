"""``huaxiang crawl [--query NAME ...]``: run the configured queries once.

Ctrl-C (or SIGTERM) finishes the page in hand, checkpoints it and stops; the
next crawl continues from there.
"""

from __future__ import annotations

import argparse
import signal
import threading

from rich import box
from rich.table import Table

from bot.context import Context
from bot.find.crawler import run_crawl
from bot.errors import HuaxiangError
from bot.progress import progress_bar
from bot.textsafe import terminal_safe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crawl", help="run the configured queries once (incremental, resumable)",
                       description="Fetch new posts and authors for each configured query. A second crawl only "
                                   "fetches what is new; an interrupted crawl resumes where it stopped.")
    p.add_argument("--query", action="append", metavar="NAME",
                   help="only this query (repeatable; default: every enabled query)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if not ctx.settings.queries:
        raise HuaxiangError(f"{ctx.settings.origin}: no [[queries]] configured; run 'huaxiang init' for an example")
    stop = threading.Event()
    restore = _install_stop_handlers(stop)
    try:
        with progress_bar(ctx.console, "crawling") as advance:
            summary = run_crawl(ctx.db, ctx.settings, args.query, stop=stop, progress=advance)
    finally:
        restore()
    counts = summary.as_counts()
    table = Table(title=f"crawl: {counts.get('requests', 0)} requests, {counts.get('new_posts', 0)} new posts, "
                        f"{counts.get('new_users', 0)} new users", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("query", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for col in ("requests", "pages", "new posts", "new users", "authors"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in summary.runs:
        table.add_row(terminal_safe(r.query), r.status, str(r.requests), str(r.pages), str(r.new_posts),
                      str(r.new_users), str(r.authors))
    ctx.console.print(table)
    for r in summary.runs:
        if r.faults:
            ctx.console.print(f"{r.query}: faults " + ", ".join(f"{k} {v}" for k, v in r.faults.items()), markup=False)
    for r in summary.runs:
        if r.error and r.error not in summary.unreachable:     # those get their one line on stderr below
            ctx.console.print(f"{r.query}: {terminal_safe(r.error, 300)}", markup=False)
    for p in summary.paused_sources:
        ctx.console.print(f"source {p['source']} is paused until {p.get('paused_until')} "
                          f"({terminal_safe(p.get('pause_reason') or '', 200)})", markup=False)
    for line in summary.unreachable:
        ctx.err.print(terminal_safe(line, 400), markup=False, highlight=False)
    if stop.is_set():
        ctx.console.print("stopped; the next crawl continues from the last stored page", markup=False)
        return 130
    if summary.unreachable:
        return 1
    return 1 if summary.runs and all(r.status == "failed" for r in summary.runs) else 0


def _install_stop_handlers(stop: threading.Event):
    """SIGINT/SIGTERM set ``stop`` (finish and checkpoint the page) instead of killing mid-write."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, frame):
        if stop.is_set():                # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore
