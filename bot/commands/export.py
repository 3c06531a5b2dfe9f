"""``huaxiang export audience|memberships|prospects|queue|actions``"""

from __future__ import annotations

import argparse

from bot.argtypes import float_range, int_range
from bot.context import Context
from bot.errors import HuaxiangError
from bot.report.exports import (
    FORMATS,
    AudienceFilters,
    ExportResult,
    export_actions,
    export_audience,
    export_memberships,
    export_prospects,
    export_queue,
    parse_since,
)
from bot.report.exports.writers import is_stdout
from bot.progress import progress_bar
from storage.reporting import TIERS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write audience lists, memberships, the worklist or the audit log to a file",
                       description="Every export also writes FILE.meta.json saying what it holds, when, with which "
                                   "filters and from which analysis run.")
    kinds = p.add_subparsers(dest="export_kind", metavar="WHAT", required=True)

    a = kinds.add_parser("audience", help="one audience's members (for ad platforms and colleagues)",
                         description="Members with profile fields, tier, relevance, top keywords and profile link, "
                                     "best first. CSV is UTF-8 with BOM (opens in Excel); uids is one platform user "
                                     "id per line (custom audiences).")
    a.add_argument("audience", metavar="ID|NAME", help="audience id, or its name / auto-name")
    a.add_argument("--format", default="csv", choices=FORMATS, help="csv (default) | xlsx | jsonl | uids")
    a.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: audience-ID.EXT here; - for standard output)")
    a.add_argument("--tier", action="append", default=[], metavar="TIER",
                   help=f"only these tiers ({' | '.join(TIERS)}); repeat or comma-separate")
    a.add_argument("--min-membership-score", "--min-relevance", dest="min_relevance", type=float_range(0, 1), metavar="X",
                   help="only members whose membership score (fit to this audience, 0..1) is at least X")
    a.add_argument("--active-since", metavar="WHEN", help="only members active since: 30d, 12h, 2026-11-01, ISO time")
    a.add_argument("--limit", type=int_range(1, 10**9), metavar="N", help="at most N members (the most relevant)")
    a.add_argument("--pseudonymise", "--pseudonymize", action="store_true",
                   help="replace ids with keyed hashes and drop names, bios and profile links (for sharing outside the team)")
    a.set_defaults(func=run_audience)

    m = kinds.add_parser("memberships", help="user_id,audience_id,membership_score for every membership",
                         description="Users who fit no audience (unassigned) are in none and have no row.")
    m.add_argument("--format", default="csv", choices=("csv", "xlsx", "jsonl"))
    m.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: memberships.csv here; - for standard output)")
    m.add_argument("--pseudonymise", "--pseudonymize", action="store_true", help="keyed hashes instead of user ids")
    m.set_defaults(func=run_memberships)

    pr = kinds.add_parser("prospects", help="every user scored for one seeded target, most relevant first, with why",
                          description="Columns: rank,user_id,name,relevance,why,audience_id,audience,tier,"
                                      "membership_score,profile_url,... relevance (0..1) is relevance to the target by "
                                      "meaning; audience_id is empty for users who fit no audience.")
    pr.add_argument("target", metavar="TARGET", help="a target's name ([[audiences]] name in the config)")
    pr.add_argument("--format", default="csv", choices=("csv", "xlsx", "jsonl"))
    pr.add_argument("-o", "--output", metavar="FILE",
                    help="output file (default: prospects-TARGET.csv here; - for standard output)")
    pr.add_argument("--min-relevance", type=float_range(0, 1), metavar="X", help="only users whose relevance is at least X")
    pr.add_argument("--limit", type=int_range(1, 10**9), metavar="N", help="at most N users (the most relevant)")
    pr.set_defaults(func=run_prospects)

    q = kinds.add_parser("queue", help="the engagement queue as a worklist (post link, target, draft)")
    q.add_argument("--format", default="csv", choices=("csv", "xlsx", "jsonl"))
    q.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: queue.csv here; - for standard output)")
    q.add_argument("--status", action="append", default=[], metavar="STATUS",
                   help="only items in this status (e.g. approved); repeat or comma-separate")
    q.set_defaults(func=run_queue)

    c = kinds.add_parser("actions", help="the audit log: every approval, edit, send and outcome")
    c.add_argument("--format", default="csv", choices=("csv", "xlsx", "jsonl"))
    c.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: actions.csv here; - for standard output)")
    c.add_argument("--since", metavar="WHEN", help="only entries since: 30d, 12h, 2026-11-01, ISO time")
    c.set_defaults(func=run_actions)
    for kind in (a, m, pr, q, c):
        kind.add_argument("--raw-csv", action="store_true",
                          help="CSV cells exactly as stored; by default a cell starting with = + - @ tab or CR gets a "
                               "leading ' so spreadsheets never run it as a formula ([report].raw_csv sets the default)")


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _raw(args: argparse.Namespace, ctx: Context) -> bool:
    return bool(args.raw_csv or ctx.settings.report.raw_csv)


def _screen(args: argparse.Namespace, ctx: Context):
    """Where progress and the summary go: stderr when the data goes to stdout."""
    return ctx.err if is_stdout(args.output) else ctx.console


def _done(ctx: Context, result: ExportResult) -> int:
    if result.sidecar is None:
        ctx.err.print(f"wrote {result.rows} rows to standard output", markup=False, highlight=False)
    else:
        ctx.console.print(f"wrote {result.rows} rows to {result.path} (sidecar {result.sidecar})", markup=False,
                          highlight=False)
    for note in result.notes:
        ctx.err.print(f"note: {note}", markup=False, highlight=False)
    return 0


def run_audience(args: argparse.Namespace, ctx: Context) -> int:
    if args.min_relevance is not None and args.min_relevance != args.min_relevance:  # NaN
        raise HuaxiangError("--min-relevance must be a number")
    filters = AudienceFilters(
        tiers=_split(args.tier),
        min_relevance=args.min_relevance,
        active_since=parse_since(args.active_since) if args.active_since else None,
        limit=args.limit,
    )
    with progress_bar(_screen(args, ctx), f"exporting audience {args.audience}") as advance:
        result = export_audience(ctx.db, ctx.settings, args.audience, fmt=args.format, out=args.output,
                                 filters=filters, pseudonymise=args.pseudonymise, progress=advance, raw_csv=_raw(args, ctx))
    return _done(ctx, result)


def run_memberships(args: argparse.Namespace, ctx: Context) -> int:
    with progress_bar(_screen(args, ctx), "exporting memberships") as advance:
        result = export_memberships(ctx.db, ctx.settings, fmt=args.format, out=args.output,
                                    pseudonymise=args.pseudonymise, progress=advance, raw_csv=_raw(args, ctx))
    return _done(ctx, result)


def run_prospects(args: argparse.Namespace, ctx: Context) -> int:
    with progress_bar(_screen(args, ctx), f"exporting prospects for {args.target}") as advance:
        result = export_prospects(ctx.db, ctx.settings, args.target, fmt=args.format, out=args.output,
                                  min_relevance=args.min_relevance, limit=args.limit, progress=advance,
                                  raw_csv=_raw(args, ctx))
    return _done(ctx, result)


def run_queue(args: argparse.Namespace, ctx: Context) -> int:
    with progress_bar(_screen(args, ctx), "exporting the queue") as advance:
        result = export_queue(ctx.db, ctx.settings, fmt=args.format, out=args.output, statuses=_split(args.status),
                              progress=advance, raw_csv=_raw(args, ctx))
    return _done(ctx, result)


def run_actions(args: argparse.Namespace, ctx: Context) -> int:
    since = parse_since(args.since) if args.since else None
    with progress_bar(_screen(args, ctx), "exporting the audit log") as advance:
        result = export_actions(ctx.db, ctx.settings, fmt=args.format, out=args.output, since=since, progress=advance,
                                raw_csv=_raw(args, ctx))
    return _done(ctx, result)
