"""``huaxiang report [-o report.html] [--png DIR]``"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from bot.context import Context
from bot.errors import HuaxiangError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML report with charts",
                       description="Audience map, per-audience charts, crawl and campaign figures in one HTML file "
                                   "that opens offline. Sections without data say 'no data yet'.")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE",
                   help="HTML file (default: report.html; - for standard output)")
    p.add_argument("--png", metavar="DIR", help="also write every chart as a PNG file into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    # Imported here: matplotlib takes a moment to load and other commands need none of it.
    from bot.report.exports.writers import atomic_file, is_stdout, output_target
    from bot.report import build_report, write_pngs
    from bot.report.html import render_html

    if not is_stdout(args.output):
        output_target(Path(args.output))      # refuse /dev/full or a read-only file before drawing

    with ctx.err.status("drawing the report...") if ctx.err.is_terminal else nullcontext():
        report = build_report(ctx.db, ctx.settings)
        page = render_html(report)
    try:
        with atomic_file(Path(args.output), "w", encoding="utf-8", newline="\n") as fh:
            fh.write(page)
        pngs = write_pngs(report, args.png) if args.png else []
    except BrokenPipeError:
        raise                      # `-o - | head`: the reader has all it wanted
    except OSError as exc:
        raise HuaxiangError(f"cannot write the report: {exc}") from None
    screen = ctx.err if is_stdout(args.output) else ctx.console
    where = "standard output" if is_stdout(args.output) else args.output
    screen.print(f"wrote {where} ({len(report.charts())} charts, {len(page) // 1024} KB)", markup=False, highlight=False)
    if args.png:
        ctx.console.print(f"wrote {len(pngs)} PNG files to {args.png}", markup=False, highlight=False)
    return 0
