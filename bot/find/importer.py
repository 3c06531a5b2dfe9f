"""Drive an import: read items, upsert in batches, count, report bad lines.

Why batches in transactions: 100,000 posts in one transaction per post would
take minutes; one transaction per 2,000 keeps memory flat and lets a killed
import resume by simply running again (upserts are idempotent).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator


from config.times import utcnow
from storage.db import transaction
from storage.posts import upsert_posts, upsert_users
from storage.records import Post, User
from storage.runs import finish_import_run, start_import_run
from bot.errors import HuaxiangError
from bot.find.imports import BadLine, Item, detect_format, item_problem, reader_for

log = logging.getLogger(__name__)

BATCH = 2000
PROBLEM_CHARS = 300


@dataclass
class ImportSummary:
    file: str
    format: str
    imported: int = 0       # new posts
    updated: int = 0        # posts already stored whose content changed
    duplicates: int = 0     # posts already stored unchanged (or repeated in the file)
    skipped: int = 0        # bad lines
    users: int = 0          # new users
    problems: list[BadLine] = field(default_factory=list)


def import_file(
    db: sqlite3.Connection,
    path: str | Path,
    fmt: str = "jsonl",
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    path = Path(path)
    if not path.is_file():
        raise HuaxiangError(f"{path}: no such file")
    if fmt == "auto":
        fmt = detect_format(path)
    reader = reader_for(fmt)
    summary = ImportSummary(file=str(path), format=fmt)
    run_id = start_import_run(db, str(path), fmt)
    posts: list[Post] = []
    users: list[User] = []

    def flush() -> None:
        if users:
            uc = upsert_users(db, users, now=now)
            summary.users += uc.new
            users.clear()
        if posts:
            pc, uc = upsert_posts(db, posts, now=now)
            summary.imported += pc.new
            summary.updated += pc.updated
            summary.duplicates += pc.unchanged
            summary.users += uc.new
            if progress:
                progress(len(posts))
            posts.clear()

    now = utcnow()
    items = _screened(reader(path))
    try:
        if strict:
            # All or nothing: one transaction, abandoned at the first bad line.
            with transaction(db):
                for item in items:
                    if isinstance(item, BadLine):
                        raise HuaxiangError(f"{path}:{item.line}: {item.problem} (--strict: nothing imported)")
                    (posts if isinstance(item, Post) else users).append(item)
                    if len(posts) >= BATCH:
                        flush()
                flush()
        else:
            _import_lenient(db, path, items, posts, users, flush, summary)
    except BaseException as exc:
        # Whatever stops the import, its run is never left 'running'.
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        finish_import_run(db, run_id, summary, status=status)
        if isinstance(exc, (HuaxiangError, KeyboardInterrupt, sqlite3.Error)) or not isinstance(exc, Exception):
            raise
        log.debug("import of %s stopped", path, exc_info=True)
        raise HuaxiangError(f"{path}: import stopped ({type(exc).__name__}: {exc}); "
                            "the lines before it were stored") from None
    finish_import_run(db, run_id, summary, status="ok")
    return summary


def _screened(items: Iterable[Item]) -> Iterator[Item]:
    """Readers' items, each post or profile checked once more for values no
    database can hold (the readers check JSON records by line; this catches
    any other way in). Such an item becomes a bad line named by its id; its
    line number is not known here, so it is 0."""
    for item in items:
        if isinstance(item, BadLine):
            if len(item.problem) > PROBLEM_CHARS:      # a 5,000-digit value quoted whole helps no one
                item = BadLine(item.line, item.problem[:PROBLEM_CHARS] + "…")
            yield item
            continue
        problem = item_problem(item)
        if problem:
            key = item.pid if isinstance(item, Post) else item.uid
            yield BadLine(0, f"record {key[:40]!r}: {problem}")
            continue
        yield item


def _import_lenient(db: sqlite3.Connection, path: Path, items: Iterable[Item], posts: list[Post],
                    users: list[User], flush: Callable[[], None], summary: ImportSummary) -> None:
    """Skip and count bad lines; commit every BATCH good ones (each batch its own transaction)."""
    pending = 0
    for item in items:
        if isinstance(item, BadLine):
            summary.skipped += 1
            summary.problems.append(item)
            log.info("%s:%d: skipped: %s", path, item.line, item.problem)
            continue
        (posts if isinstance(item, Post) else users).append(item)
        pending += 1
        if pending >= BATCH:
            with transaction(db):
                flush()
            pending = 0
    with transaction(db):
        flush()
