"""``huaxiang init [DIR]``: write an annotated example campaign config.

Why a file and not a wizard: managers copy, diff and version their campaign
configs; a commented example that runs as written teaches every key.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from config import DEFAULT_FILENAME, example_text, load_file
from bot.context import Context
from bot.errors import HuaxiangError
from bot.find.sources import platform_rules


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write an annotated example campaign config (huaxiang.toml)",
                       description="Write an annotated example campaign config in Chinese and English.")
    p.add_argument("dir", nargs="?", default=".", help="folder to write huaxiang.toml into (default: here)")
    p.add_argument("--force", action="store_true", help="overwrite an existing huaxiang.toml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DEFAULT_FILENAME
    if target.exists() and not args.force:
        raise HuaxiangError(f"{target} already exists (use --force to overwrite)")
    target.write_text(example_text(), encoding="utf-8")
    load_file(target, platform_rules())  # the example must always validate
    ctx.console.print(f"wrote {target}", markup=False)
    ctx.console.print("next: huaxiang sandbox serve --port 8765   (in another terminal), then: huaxiang crawl", markup=False)
    return 0
