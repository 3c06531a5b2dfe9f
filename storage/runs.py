"""Run records: imports (crawl and analysis runs live beside their owners)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from storage.db import utcnow


def start_import_run(db: sqlite_utils.Database, file: str, fmt: str) -> int:
    cur = db.conn.execute("INSERT INTO import_runs (file, format, started_at) VALUES (?, ?, ?)", (file, fmt, utcnow()))
    return int(cur.lastrowid)


def finish_import_run(db: sqlite_utils.Database, run_id: int, summary: Any, status: str) -> None:
    db.conn.execute(
        "UPDATE import_runs SET ended_at = ?, imported = ?, duplicates = ?, skipped = ?, status = ? WHERE id = ?",
        (utcnow(), summary.imported, summary.duplicates, summary.skipped, status, run_id),
    )
