"""Run records: imports (crawl and analysis runs live beside their owners)."""

from __future__ import annotations

from typing import Any

import sqlite3

from config.times import utcnow


def start_import_run(db: sqlite3.Connection, file: str, fmt: str) -> int:
    cur = db.execute("INSERT INTO import_runs (file, format, started_at) VALUES (?, ?, ?)", (file, fmt, utcnow()))
    return int(cur.lastrowid)


def finish_import_run(db: sqlite3.Connection, run_id: int, summary: Any, status: str) -> None:
    db.execute(
        "UPDATE import_runs SET ended_at = ?, imported = ?, duplicates = ?, skipped = ?, status = ? WHERE id = ?",
        (utcnow(), summary.imported, summary.duplicates, summary.skipped, status, run_id),
    )
