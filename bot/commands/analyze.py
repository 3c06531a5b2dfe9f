"""``huaxiang analyze [--k auto|N]``: build audiences from everything stored."""

from __future__ import annotations

import argparse
import dataclasses

from rich.table import Table

from bot.context import Context

MAX_K = 1000          # audiences; more is a list of individuals, not audiences
from bot.errors import HuaxiangError


def _k(value: str) -> str | int:
    if value == "auto":
        return value
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a whole number from 2 to {MAX_K}, got {value[:40]!r}") from None
    if not 2 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a whole number from 2 to {MAX_K}, got {k}")
    return k


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="cluster stored users into audiences (jieba TF-IDF, sentence vectors, k-means)",
                       description="Tokenise new posts (cached), build user profiles, cluster them into audiences, "
                                   "score relevance to the configured target audiences and tier the members. "
                                   "Audience ids and edited names survive re-runs.")
    p.add_argument("--k", type=_k, default=None, metavar="auto|N",
                   help="number of audiences, or 'auto' to choose it (default: [analysis].k, 'auto')")
    p.add_argument("--full", action="store_true",
                   help="re-cluster everyone even if only a few posts changed since the last full run")
    p.add_argument("--encoder", choices=("auto", "words", "semantic"), default=None,
                   help="profile features: jieba words, or words plus sentence vectors from the bundled model"
                        " (default: [analysis].encoder, 'auto': sentence vectors while at most semantic_max_posts posts"
                        " are still to embed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    # Imported here: scikit-learn and SciPy take seconds to load, and every
    # other command (and --help) should not pay for them.
    from bot.understand.run import run_analysis

    console = ctx.console
    settings = ctx.settings
    if args.encoder:
        settings = dataclasses.replace(settings, analysis=dataclasses.replace(settings.analysis, encoder=args.encoder))
    progress_cb = None
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
        tasks: dict[str, int] = {}

        def progress_cb(stage: str, n: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            prog.advance(tasks[stage], n)

        with prog:
            summary = run_analysis(ctx.db, settings, k=args.k, progress=progress_cb, full=args.full or None)
    else:
        summary = run_analysis(ctx.db, settings, k=args.k, full=args.full or None)
    if not summary.audiences:
        raise HuaxiangError("analysis found no audiences")
    table = Table(title=f"{len(summary.audiences)} audiences from {summary.n_users} users, {summary.n_posts} posts"
                        f" (run {summary.run_id})")
    table.add_column("id", justify="right")
    table.add_column("name")
    table.add_column("size", justify="right")
    table.add_column("share", justify="right")
    table.add_column("+/-", justify="right")
    table.add_column("distinctive keywords")
    for a in summary.audiences:
        change = "new" if a.new else f"+{a.joined}/-{a.left}"
        table.add_row(str(a.id), a.name, str(a.size), f"{a.share:.0%}", change, " ".join(a.keywords))
    console.print(table)
    if summary.mode == "incremental":
        console.print(f"few posts changed since the last full clustering: {summary.placed} new or changed users were"
                      " placed into the existing audiences (keywords refresh at the next full run; `--full` forces one"
                      " now)", markup=False)
    console.print(f"k={summary.k} ({'chosen automatically' if (args.k or ctx.settings.analysis.k) == 'auto' else 'given'});"
                  f" features: {summary.encoder}{f' ({summary.embedded} texts embedded)' if summary.embedded else ''};"
                  f" tokenised {summary.tokenized} posts, reused cached tokens of {summary.reused};"
                  f" {summary.seconds:.1f}s", markup=False)
    if summary.unassigned:
        console.print(f"unassigned: {summary.unassigned} users fit no audience (they post about everything);"
                      " they are in none and never engaged as members", markup=False)
    if summary.retired:
        console.print(f"retired audiences (not found again): {', '.join(map(str, summary.retired))}", markup=False)
    console.print("more: `huaxiang audiences show ID`, `huaxiang audiences rename ID NAME`", markup=False)
    return 0
