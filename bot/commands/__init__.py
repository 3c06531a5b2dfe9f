"""One module per subcommand group. Each module defines
``register(subparsers) -> None`` and sets ``func=run`` on its parser(s);
``bot.cli`` discovers them, so adding a command never edits a shared file.

``run(args, ctx) -> int`` returns the exit code; raise
``bot.errors.HuaxiangError`` (or ``config.ConfigError``) for failures the
user can act on.
"""
