"""The ``huaxiang`` entry point.

Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error.
Global options go before the subcommand: ``huaxiang --db x.db import posts.jsonl``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import pkgutil
import sqlite3
import sys

from config import ConfigError, load_settings
from storage.db import StorageError

import bot.commands
from bot import __version__
from bot.context import creates_data, make_context
from bot.errors import HuaxiangError
from bot.find.sources import platform_rules

log = logging.getLogger("huaxiang")


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help="SQLite database file (default: [database].path, ./huaxiang.db)")
    parser.add_argument("--config", metavar="PATH", help="campaign config (default: ./huaxiang.toml, then built-in defaults)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--version", action="version", version=f"huaxiang {__version__}")


def _command_names(argv: list[str] | None) -> list[str]:
    """The command ``argv`` names, or all of them (help, no command, a typo).

    Why: each command module imports what it needs at the top, and a run of
    ``analyze`` should not wait for the crawler's and the planner's imports.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(bot.commands.__path__))
    if argv is None:
        return names
    pre = argparse.ArgumentParser(prog="huaxiang", add_help=False, exit_on_error=False)
    _global_options(pre)
    try:
        rest = pre.parse_known_args(argv)[1]
    except argparse.ArgumentError:
        return names        # the full parser reports it
    given = [a for a in rest if not a.startswith("-")][:1]
    return given if given and given[0] in names else names


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the command it names is registered."""
    parser = argparse.ArgumentParser(
        prog="huaxiang",
        description="画像 huaxiang: find, understand and carefully engage audiences on Chinese social media.",
    )
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_names(argv):
        module = importlib.import_module(f"bot.commands.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def setup_logging(verbose: int, quiet: bool, level_name: str = "INFO") -> None:
    from bot.logs import configure_logging

    if quiet:
        level = logging.WARNING
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.getLevelName(level_name)
    configure_logging(level)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    ctx = None
    try:
        settings = load_settings(args.config, rules=platform_rules())
        setup_logging(args.verbose, args.quiet, settings.logging.level)
        if settings.logging.json_file:
            from bot.logs import add_json_file_handler, json_file_problem

            problem = json_file_problem(settings.logging.json_file)
            if problem:
                raise ConfigError(settings.origin, "logging.json_file", problem)
            add_json_file_handler(settings.logging.json_file, settings.logging.max_bytes, settings.logging.backups)
        ctx = make_context(settings, args.db, may_create=creates_data(args))
        return int(args.func(args, ctx) or 0)
    except (ConfigError, HuaxiangError, StorageError) as exc:
        print(f"huaxiang: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        if ctx is not None and "readonly" in str(exc):
            print(f"huaxiang: error: {ctx.db_path}: the database is read-only and this command writes to it "
                  "(reading commands such as status, audiences, queue list and export work)", file=sys.stderr)
        else:
            print(f"huaxiang: error: database problem: {exc}", file=sys.stderr)
        return 1
    except OverflowError:
        # A number argument beyond SQLite's 64-bit integers (an id or a limit) cannot match anything.
        print("huaxiang: error: a number given is too large (at most 9223372036854775807)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("huaxiang: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if ctx is not None:
            ctx.close()


def run() -> None:
    """The ``huaxiang`` program: ``main`` with the arguments given, then exit with its code.

    Why ``gc.freeze()`` first: on the way out Python garbage-collects every
    object still alive, and once NumPy, SciPy and scikit-learn are loaded
    that took 0.3 s of every ``analyze`` (0.36 s against 0.07 s), memory the
    system takes back anyway. Frozen objects are skipped; the output streams
    are still flushed and ``atexit`` handlers still run. Only here, never in
    ``main``: the tests call ``main`` many times in one process.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
