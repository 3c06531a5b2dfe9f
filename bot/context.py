"""What every command gets: settings, the database path, and an open database.

Why a context object instead of globals: the scheduler, the review server and
tests each run several of these side by side against different files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite3
from rich.console import Console

from config import Settings
from storage.db import StorageError, connect
from bot.errors import HuaxiangError

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    db_path: Path
    console: Console = field(default_factory=lambda: Console(highlight=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    may_create: bool = True       # False: open only an existing huaxiang database
    _db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """Opened on first use so commands that need no database never create one."""
        if self._db is None:
            self._db = self.open_db()
        return self._db

    def open_db(self) -> sqlite3.Connection:
        """A fresh connection (one per thread or process)."""
        try:
            return connect(self.db_path, busy_timeout_ms=self.settings.database.busy_timeout_ms, create=self.may_create)
        except StorageError as exc:
            raise HuaxiangError(str(exc)) from None

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# Commands that store new data and so may create the database file. Every
# other command opens an existing huaxiang database only, so `--db huaxaing.db
# audiences` (a typo) is an error rather than a new empty database.
CREATING_COMMANDS = frozenset({"import", "crawl", "run", "demo", "login", "optout add", "blocklist add", "users add"})


def creates_data(args: Any) -> bool:
    """Whether the parsed command line may create the database."""
    command = getattr(args, "command", None) or ""
    action = getattr(args, "list_command", None) or getattr(args, f"{command}_command", None)
    return command in CREATING_COMMANDS or f"{command} {action}" in CREATING_COMMANDS


def make_context(settings: Settings, db_override: str | None = None, may_create: bool = True) -> Context:
    path = Path(db_override) if db_override else Path(settings.database.path)
    return Context(settings=settings, db_path=path, may_create=may_create)
