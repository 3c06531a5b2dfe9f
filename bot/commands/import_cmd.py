"""``huaxiang import FILE [--format F] [--strict]``"""

from __future__ import annotations

import argparse
import os

from bot.context import Context
from bot.find.imports import formats
from bot.find.importer import import_file
from bot.progress import progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import posts from a file (JSON lines or another crawler's output)",
                       description="Import posts into the database. Importing the same file twice changes nothing.")
    p.add_argument("file", help="the file to import")
    p.add_argument("--format", default="auto", choices=["auto", *sorted(formats())],
                   help="input format (default: auto, told from the file's columns or tables)")
    p.add_argument("--strict", action="store_true", help="any bad line fails the whole import and writes nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    size = os.path.getsize(args.file) if os.path.isfile(args.file) else None
    with progress_bar(ctx.console, f"importing {args.file}") as advance:
        summary = import_file(ctx.db, args.file, fmt=args.format, strict=args.strict, progress=advance)
    if args.format == "auto":
        ctx.console.print(f"format: {summary.format} (detected)", markup=False)
    for bad in summary.problems[:20]:
        ctx.err.print(f"{args.file}:{bad.line}: skipped: {bad.problem}", markup=False, highlight=False)
    if len(summary.problems) > 20:
        ctx.err.print(f"... and {len(summary.problems) - 20} more bad lines", markup=False)
    ctx.console.print(
        f"imported {summary.imported} new posts ({summary.users} new users), "
        f"updated {summary.updated}, duplicates {summary.duplicates}, skipped {summary.skipped} bad lines",
        markup=False,
    )
    del size
    return 0
