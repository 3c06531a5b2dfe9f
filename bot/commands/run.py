"""``huaxiang run [--once]``: the background service, or every job once."""

from __future__ import annotations

import argparse

from rich.cells import cell_len

from config.times import to_stored
from bot.context import Context
from bot.errors import HuaxiangError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run the scheduler in the foreground (crawl, analyze, plan, send on their schedules)",
        description="Run the scheduled jobs from the config until SIGINT/SIGTERM: each query's crawl on its own "
                    "schedule, then analyze, plan and (when sending is configured) outcomes and send. A job missed "
                    "while the service was down runs once at start. One scheduler per database. The first signal "
                    "stops after the current page; a second stops at once.",
    )
    p.add_argument("--once", action="store_true",
                   help="run every job once in dependency order (crawl, outcomes, analyze, plan, send) and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from bot.service.jobs import job_specs
    from bot.service.scheduler import Service, run_once_locked

    specs = job_specs(ctx.settings)
    if not specs:
        raise HuaxiangError(f"{ctx.settings.origin}: nothing to run: no enabled [[queries]] with a schedule and "
                            "[schedule] analyze/plan set to manual")

    def report(line: str) -> None:
        ctx.console.print(line, markup=False, highlight=False)

    if args.once:
        done = run_once_locked(ctx.db_path, ctx.settings, report=report)
        statuses = [o.status if o is not None else "skipped" for _, o in done]
        if len(done) < len(specs) or "interrupted" in statuses:
            ctx.console.print(f"stopped after {len(done)} of {len(specs)} job(s)", markup=False)
            return 130
        failed = statuses.count("failed")
        ctx.console.print(f"ran {len(done)} job(s): " + ", ".join(f"{s.id} {st}" for (s, _), st in zip(done, statuses)),
                          markup=False)
        return 1 if failed else 0

    service = Service(ctx.db_path, ctx.settings, report=report)

    def announce() -> None:
        nxt = service.next_runs()
        ctx.console.print(f"huaxiang run: scheduling {len(specs)} job(s) for {ctx.db_path} "
                          "(Ctrl-C or SIGTERM stops after the current page)", markup=False)
        for spec in specs:
            when = nxt.get(spec.id)
            pad = " " * max(1, 26 - cell_len(spec.id))  # CJK query names are two cells wide
            ctx.console.print(f"  {spec.id}{pad}{spec.schedule:<16} next {to_stored(when) if when else '-'}",
                              markup=False, highlight=False)
        if service.catch_up:
            ctx.console.print("  catching up now: " + ", ".join(s.id for s in service.catch_up), markup=False)

    code = service.serve(on_started=announce)
    ctx.console.print("huaxiang run: stopped", markup=False)
    return code
