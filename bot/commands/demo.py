"""``huaxiang demo``: the whole pipeline, offline, in about a minute.

Why through the real code paths: the demo starts the sandbox platform on a
free loopback port and points the example campaign at it, so the crawl goes
through the real Weibo adapter and polite client, and analysis, planning and
the report are the same functions a real campaign runs. Only the base URL
differs. The database stays in the current folder for exploring afterwards.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.table import Table

from config import example_text, with_environment
from bot.argtypes import SEED
from bot.context import Context
from bot.find.sources import local_platforms, platform_rules
from bot.progress import progress_bar
from bot.textsafe import terminal_safe
from storage import engagement


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline against the built-in sandbox (offline)",
                       description="Start the sandbox platform locally, crawl it, build audiences, plan "
                                   "engagement for review and write a report. Needs no network.")
    p.add_argument("--seed", type=SEED, default=0, help="sandbox world seed (default 0)")
    p.add_argument("--report", default="huaxiang-report.html", help="where to write the HTML report")
    p.set_defaults(func=run)


def demo_settings(base_url: str, db_path: Path):
    """The example campaign (what ``huaxiang init`` writes), pointed at the sandbox."""
    import tomllib

    raw = tomllib.loads(example_text())
    for src in raw["sources"]:
        if src["platform"] in local_platforms():
            src["base_url"] = base_url
    raw["database"]["path"] = str(db_path)
    return with_environment(raw, "<demo: example campaign>", rules=platform_rules())


def run(args: argparse.Namespace, ctx: Context) -> int:
    import os

    from bot.understand.run import run_analysis
    from bot.find.crawler import run_crawl
    from bot.engage.planner import run_plan
    from bot.find.sandbox import start_sandbox

    out = ctx.console
    started = time.monotonic()
    with start_sandbox(seed=args.seed, port=0) as sandbox:
        settings = demo_settings(sandbox.base_url, ctx.db_path)
        # The sandbox accepts any non-empty token; a real platform's comes from the environment.
        os.environ.setdefault("HUAXIANG_SANDBOX_TOKEN", "demo-token")
        ctx.settings = settings
        out.print(f"[bold]1. Find[/] - sandbox platform at {sandbox.base_url} (seed {args.seed}), "
                  f"{len(settings.queries)} queries by topic, keyword, group and tag")
        with progress_bar(out, "crawling") as advance:
            crawl = run_crawl(ctx.db, settings, progress=advance)
        table = Table(title_justify="left")
        for col in ("query", "kind", "status", "requests", "pages", "new posts", "new users"):
            table.add_column(col, no_wrap=col in ("query", "kind"))
        for r in crawl.runs:
            q = settings.query(r.query)
            table.add_row(r.query, f"{q.kind}: {q.value}", r.status, str(r.requests), str(r.pages),
                          str(r.new_posts), str(r.new_users))
        out.print(table)

    out.print("[bold]2. Understand[/] - jieba profiles, clustering into audiences")
    with progress_bar(out, "embedding posts (once per post)") as advance:
        analysis = run_analysis(ctx.db, settings, progress=lambda stage, n, total: advance(n) if stage == "embed" else None)
    from storage.audiences import list_audiences

    table = Table(title=f"{len(analysis.audiences)} audiences from {analysis.n_users} users, {analysis.n_posts} posts",
                  title_justify="left", caption=f"features: {analysis.encoder}", caption_justify="left")
    for col in ("id", "name", "size", "share", "distinctive keywords"):
        table.add_column(col, overflow="fold")
    for a in list_audiences(ctx.db):
        table.add_row(str(a["id"]), terminal_safe(a["display_name"]), str(a["size"]), f"{a['share']:.0%}",
                      terminal_safe("、".join(a["keywords"][:6])))
    out.print(table)

    out.print("[bold]3. Engage[/] - proposed replies and reposts wait for a person's approval (nothing is sent)")
    plan = run_plan(ctx.db, settings)
    from storage.engagement import queue_counts

    counts = queue_counts(ctx.db)
    out.print(f"planned {plan.as_counts().get('planned', 0)} actions ({plan.reposts} reposts with a comment, "
              f"{plan.follow_suggestions} follow suggestions); {sum(plan.off_target.values())} posts by people below "
              f"min_relevance to every target left alone; queue: "
              + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "empty"), markup=False)
    _show_queue_sample(ctx)

    from bot.engage.review.address import review_instructions

    out.print(review_instructions(ctx.db_path), markup=False)

    out.print("[bold]4. Report[/]")
    from bot.report import write_report

    report_path = write_report(ctx.db, settings, args.report)
    out.print(f"report written to {report_path.resolve()}", markup=False)

    elapsed = time.monotonic() - started
    db_arg = "" if str(ctx.db_path) == "huaxiang.db" else f" --db {ctx.db_path}"
    out.print(f"\ndone in {elapsed:.0f} s. The database is {ctx.db_path.resolve()}; look next at:", markup=False)
    for line in (
        f"huaxiang{db_arg} audiences                 # the audiences; 'audiences show ID' for one in full",
        f"huaxiang{db_arg} queue list                # what the planner proposes",
        f"huaxiang{db_arg} review                    # approve / edit / reject in the browser (prints the URL)",
        f"huaxiang{db_arg} search 健身               # full-text search over the posts",
        f"huaxiang{db_arg} export audience 1 --format csv -o audience1.csv",
        "huaxiang init                      # your own campaign config to edit",
    ):
        out.print("  " + line, markup=False)
    return 0


def _show_queue_sample(ctx: Context, n: int = 5) -> None:
    rows = engagement.top_pending_actions(ctx.db, n)
    if not rows:
        return
    table = Table(title="top proposed replies and reposts", title_justify="left")
    for col in ("id", "kind", "to", "draft", "score"):
        table.add_column(col, overflow="fold")
    for r in rows:
        draft = "(a suggestion to follow by hand; never sent)" if r[1] == "follow" else terminal_safe(r[3] or "", 70)
        table.add_row(str(r[0]), r[1], terminal_safe(r[2] or ""), draft, f"{r[4] or 0:.2f}")
    ctx.console.print(table)

