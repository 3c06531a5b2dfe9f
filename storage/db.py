"""Opening the database: one SQLite file, WAL, busy timeout, migrations.

Why WAL and a long busy timeout: the scheduler crawls while a person reviews
the queue in the browser and runs CLI commands, all against the same file.
WAL lets readers proceed during a write; the timeout makes writers queue
instead of failing with "database is locked".
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from config.times import utcnow


log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 30_000

T = TypeVar("T")


class StorageError(Exception):
    """The database cannot be opened or written; the message says why."""


def database_path(db: sqlite3.Connection) -> str:
    """The file behind a connection ("" for an in-memory database)."""
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return file or ""
    return ""


def write_failure(db: sqlite3.Connection, exc: sqlite3.Error) -> StorageError:
    """A clear error for a write the database refused (full disk, read-only
    file, damaged file), naming the file and what to do about it."""
    try:
        where = database_path(db) or "the database"
    except sqlite3.Error:
        where = "the database"
    code = getattr(exc, "sqlite_errorcode", None)
    code = code & 0xFF if isinstance(code, int) else None      # extended codes keep the primary in the low byte
    text = str(exc)
    if code == sqlite3.SQLITE_FULL or "full" in text:
        hint = "the disk (or the database's size limit) is full; free some space and run again (what was stored is kept)"
    elif code == sqlite3.SQLITE_READONLY or "readonly" in text:
        hint = "the file is read-only; check its permissions and those of its folder"
    elif code == sqlite3.SQLITE_CORRUPT or "malformed" in text:
        hint = "the file is damaged; restore a backup (PRAGMA integrity_check says what is wrong)"
    elif code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        hint = "another program kept the database locked for longer than the busy timeout"
    else:
        hint = "database error"
    return StorageError(f"{where}: {hint} ({text})")


def migration_names() -> list[str]:
    files = resources.files("storage").joinpath("migrations")
    return sorted(p.name for p in files.iterdir() if p.name.endswith(".sql"))


def _read_migration(name: str) -> str:
    return resources.files("storage").joinpath("migrations").joinpath(name).read_text(encoding="utf-8")


# Written into the SQLite header (PRAGMA application_id) of every database we
# create, so a huaxiang file can be told from another application's.
APPLICATION_ID = 0x68786731          # "hxg1"
FIRST_MIGRATION = "0001_initial.sql"


def connect(path: str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, migrate: bool = True,
            create: bool = True) -> sqlite3.Connection:
    """Open the database and bring its schema up to date.

    ``create=False`` opens only an existing huaxiang database (read commands:
    a typo in ``--db`` must not leave an empty database behind). Never opens
    another application's SQLite file: adding our 40 tables to it would
    damage it. A file we may not write is opened read-only, so it can still
    be read. Each thread or process opens its own connection.
    """
    path = str(path)
    read_only = False
    if path != ":memory:":
        file = Path(path)
        parent = file.resolve().parent
        if not parent.is_dir():
            raise StorageError(f"{path}: folder {parent} does not exist")
        if not create and not (file.is_file() and file.stat().st_size > 0):
            raise StorageError(f"{path}: no huaxiang database here; check --db or [database].path "
                               "(import, crawl, run and demo create one)")
        read_only = file.exists() and not writable(file)
    try:
        conn = _open(path, busy_timeout_ms, read_only)
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: cannot open database ({exc})") from None
    try:
        fresh = _check_ours(conn, path, create)       # before WAL: that too would change a foreign file
        if not read_only:
            _tune(conn, path)
            if fresh:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StorageError(f"{path}: not a huaxiang database or damaged ({exc})") from None
    except StorageError:
        conn.close()
        raise
    if read_only:
        _check_current(conn, path)
    elif migrate:
        apply_migrations(conn)
    return conn


def writable(file: Path) -> bool:
    """May this process change the database file (and create its -wal beside it)?"""
    return os.access(file, os.W_OK) and os.access(file.resolve().parent, os.W_OK)


def _open(path: str, busy_timeout_ms: int, read_only: bool) -> sqlite3.Connection:
    if read_only:
        file = Path(path).resolve()
        uri = file.as_uri() + "?mode=ro"
        if not Path(f"{file}-shm").exists() and not os.access(file.parent, os.W_OK):
            # WAL readers need the -shm file; nobody can create it in a read-only
            # folder, and nobody can change the file there either.
            uri += "&immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        log.info("%s: opened read-only (the file or its folder is not writable)", path)
        return conn
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return conn


def _tune(conn: sqlite3.Connection, path: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if path != ":memory:" and mode.lower() != "wal":
        log.warning("%s: could not switch to WAL (journal_mode=%s)", path, mode)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")


def _check_ours(conn: sqlite3.Connection, path: str, create: bool) -> bool:
    """Whether the mark still has to be written: False for a marked huaxiang
    database, True for an empty file we may make ours or a huaxiang database
    made before the mark (known by its first migration). Anything else raises
    StorageError before a byte of it is changed."""
    if conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
        return False
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    if not tables:
        if not create:
            raise StorageError(f"{path}: an empty database, not a huaxiang one yet; check --db or [database].path")
        return True
    if "schema_migrations" in tables:
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (FIRST_MIGRATION,)).fetchone():
                return True      # ours from before the mark: mark it now
        except sqlite3.DatabaseError:
            pass
    shown = ", ".join(tables[:6]) + (", ..." if len(tables) > 6 else "")
    raise StorageError(f"{path}: another application's SQLite database (tables: {shown}); huaxiang keeps its data "
                       "in its own file and will not add tables to this one; choose another --db")


def _check_current(db: sqlite3.Connection, path: str) -> None:
    """A read-only database can be read only if no migration is missing."""
    done = {r[0] for r in db.execute("SELECT name FROM schema_migrations")}
    missing = [m for m in migration_names() if m not in done]
    if missing:
        raise StorageError(f"{path}: read-only, and made by an older huaxiang ({len(missing)} schema upgrade(s) "
                           "missing); make it writable once so it can be upgraded")


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply forward migrations not yet applied, each in its own transaction."""
    conn = db
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"not a huaxiang database or damaged ({exc})") from None
    applied = []
    for name in migration_names():
        if name in done:
            continue
        sql = _read_migration(name)
        try:
            with transaction(conn):
                # Another process may have migrated while we waited for the lock.
                if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                    continue
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, utcnow()))
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"migration {name} failed: {exc}") from None
        applied.append(name)
        log.debug("applied migration %s", name)
    return applied


def _split_sql(sql: str) -> list[str]:
    """Split a script into statements (executescript would commit mid-way)."""
    statements, buf = [], []
    for line in sql.splitlines(keepends=True):
        buf.append(line)
        text = "".join(buf)
        if sqlite3.complete_statement(text):
            if text.strip():
                statements.append(text)
            buf = []
    rest = "".join(buf).strip()
    if rest and not all(l.strip().startswith("--") or not l.strip() for l in rest.splitlines()):
        statements.append(rest)
    return statements


class transaction:
    """``with transaction(db):`` - all or nothing, and safe to nest.

    The outermost level is BEGIN IMMEDIATE ... COMMIT: IMMEDIATE takes the
    write lock up front, so a transaction never fails half way with
    SQLITE_BUSY when it upgrades from a read lock. Inner levels are
    SAVEPOINTs, so a function that needs atomicity can open its own
    transaction without knowing whether its caller already did; an error
    inside rolls back only that level and propagates.
    """

    def __init__(self, db: sqlite3.Connection):
        self.conn = db
        self.savepoint: str | None = None

    def __enter__(self) -> sqlite3.Connection:
        if self.conn.in_transaction:
            self.savepoint = f"sp_{id(self):x}"
            self.conn.execute(f"SAVEPOINT {self.savepoint}")
        else:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.savepoint:
            if exc_type is not None:
                self.conn.execute(f"ROLLBACK TO {self.savepoint}")
            self.conn.execute(f"RELEASE {self.savepoint}")
        elif exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def rollback_open(db: sqlite3.Connection) -> bool:
    """Roll back a transaction its owner left open (a job or run that died
    half way), so the next write on this connection does not commit the
    half-written rows with it. True if there was one to roll back."""
    if not db.in_transaction:
        return False
    db.execute("ROLLBACK")
    return True


@contextmanager
def opened(path: str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, migrate: bool = True,
           create: bool = True) -> Iterator[sqlite3.Connection]:
    """``with opened(path) as db:`` - :func:`connect`, closed on the way out.

    Threads and short-lived jobs open their own connection; this is the one
    way they do it, so no connection outlives the work it was opened for.
    """
    db = connect(path, busy_timeout_ms=busy_timeout_ms, migrate=migrate, create=create)
    try:
        yield db
    finally:
        db.close()


def iter_dict_rows(cur: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    """A query's rows as dicts keyed by column name, one at a time: exports
    stream a million rows to disk without holding them all in memory."""
    names = [d[0] for d in cur.description or ()]
    for row in cur:
        yield dict(zip(names, row))


def dict_rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    """A query's rows as dicts keyed by column name (``dict_rows(db.execute(...))``)."""
    return list(iter_dict_rows(cur))


# SQLite's default limit on host parameters in one statement is 999 (older
# builds) - ``IN (?, ?, ...)`` lists are sent in chunks below it.
CHUNK = 500


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (for IN lists and batches)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def marks(n: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` list of ``n`` parameters."""
    return ", ".join("?" * n)
