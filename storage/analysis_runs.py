"""Analysis runs (when, how, what they found) and the stored clustering model.

Why the model is stored: an incremental run places new users into the last
full run's audiences with that run's vocabulary, LSA and centroids, and
needs to know how much has changed since (``changed_posts``,
``incremental_runs``) to decide when everyone is re-clustered.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from storage.audiences import compact_json
from config.times import utcnow
from storage.db import dict_rows


def start_analysis_run(db: sqlite3.Connection, params: dict[str, Any]) -> int:
    cur = db.execute("INSERT INTO analysis_runs (started_at, status, params) VALUES (?, 'running', ?)",
                     (utcnow(), compact_json(params)))
    return int(cur.lastrowid)


def finish_analysis_run(db: sqlite3.Connection, run_id: int, status: str, k: int | None = None,
                        n_users: int | None = None, n_posts: int | None = None,
                        metrics: dict[str, Any] | None = None) -> None:
    db.execute(
        "UPDATE analysis_runs SET ended_at = ?, status = ?, k = COALESCE(?, k), n_users = COALESCE(?, n_users),"
        " n_posts = COALESCE(?, n_posts), metrics = ? WHERE id = ?",
        (utcnow(), status, k, n_users, n_posts, compact_json(metrics or {}), run_id),
    )


def save_model(db: sqlite3.Connection, run_id: int, k: int, k_request: str, settings_key: str,
               n_users: int, n_posts: int, blob: bytes) -> None:
    """The one stored model becomes this run's."""
    db.execute("DELETE FROM analysis_models")
    db.execute(
        "INSERT INTO analysis_models (run_id, created_at, k, k_request, settings_key, n_users, n_posts, model)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (run_id, utcnow(), k, k_request, settings_key, n_users, n_posts, blob))


def load_model(db: sqlite3.Connection) -> dict[str, Any] | None:
    rows = dict_rows(db.execute("SELECT * FROM analysis_models ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None


def note_incremental(db: sqlite3.Connection, model_id: int, changed_posts: int) -> None:
    db.execute("UPDATE analysis_models SET changed_posts = changed_posts + ?, incremental_runs = incremental_runs + 1"
               " WHERE id = ?", (changed_posts, model_id))


def drop_model(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM analysis_models")


def last_analysis_run(db: sqlite3.Connection) -> dict[str, Any] | None:
    """The newest analysis run (status, k, counts, metrics JSON): what a run in another process found."""
    rows = dict_rows(db.execute("SELECT * FROM analysis_runs ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None
